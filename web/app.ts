// The web page: pick two images and options, run Painterly on WebGPU, watch the preview and loss, download a PNG.
// State for tests and curious users is mirrored on <body data-state> and on window.painterlyPage.
import {
  createPainterly, blobSource, decodeImage, fitLongestSide, fromRgba, sniffFormat, toRgba, webgpuUnavailableReason,
  type EvaluationRecord, type Painterly, type PainterlyResult, type ProgressInfo, type RgbImage,
} from '../src/browser.ts';
import { noiseImage } from '../src/style/engine.ts';
import { DEFAULT_LR, type OptimizerName } from '../src/style/options.ts';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const num = (id: string) => Number($<HTMLInputElement>(id).value);
const val = (id: string) => $<HTMLInputElement | HTMLSelectElement>(id).value;

const PRESETS = [
  { file: 'tubingen.jpg', title: 'Tübingen (photo: Andreas Praefcke, CC BY 3.0)' },
  { file: 'starry_night.jpg', title: 'The Starry Night (van Gogh)' },
  { file: 'the_scream.jpg', title: 'The Scream (Munch)' },
  { file: 'shipwreck.jpg', title: 'The Shipwreck (Turner)' },
  { file: 'woman-with-hat-matisse.jpg', title: 'Woman with a Hat (Matisse)' },
];

type State = 'loading' | 'unsupported' | 'ready' | 'running' | 'done' | 'stopped' | 'error';

/** What the page knows, readable from devtools and tests. */
const page = {
  state: 'loading' as State,
  images: {} as Partial<Record<'content' | 'style', RgbImage>>,
  evaluations: [] as EvaluationRecord[],
  progress: undefined as ProgressInfo | undefined,
  result: undefined as PainterlyResult | undefined,
  previews: 0,
  error: undefined as string | undefined,
};
(window as unknown as { painterlyPage: typeof page }).painterlyPage = page;

let painterly: Painterly | undefined;
let controller: AbortController | undefined;
const weightFiles = new Map<string, ReturnType<typeof blobSource>>();
let weightsProgress: ((bytes: number, total: number) => void) | undefined;

function setState(s: State): void {
  page.state = s;
  document.body.dataset.state = s;
  const running = s === 'running';
  $<HTMLButtonElement>('start').disabled = running || !painterly || !page.images.content || !page.images.style;
  $<HTMLButtonElement>('stop').disabled = !running;
  $<HTMLButtonElement>('download').disabled = running || !page.result;
}

function log(m: string): void {
  const el = $('log');
  el.textContent += `${new Date().toLocaleTimeString()}  ${m}\n`;
  el.scrollTop = el.scrollHeight;
}

function gpuStatus(text: string, bad = false): void {
  const el = $('gpu-status');
  el.textContent = text;
  el.classList.toggle('bad', bad);
}

// ---- images -------------------------------------------------------------------------------------------------

/**
 * JPEG through the library's decoder (bit-identical to Node's, so the page's numbers match the CLI's); PNG and the
 * rest through the browser (pngjs does not run in browsers; opaque 8-bit PNGs decode to the same bytes either way).
 */
async function decodeBlob(blob: Blob, name: string): Promise<RgbImage> {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  if (sniffFormat(bytes) === 'jpeg') return decodeImage(bytes, name);
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(blob);
  } catch {
    throw new Error(`${name}: this browser cannot decode it as an image`);
  }
  const c = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = c.getContext('2d')!;
  ctx.drawImage(bitmap, 0, 0);
  const d = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
  return fromRgba(d.data, d.width, d.height);
}

function draw(canvas: HTMLCanvasElement, img: RgbImage): void {
  canvas.width = img.width;
  canvas.height = img.height;
  canvas.getContext('2d')!.putImageData(new ImageData(toRgba(img) as Uint8ClampedArray<ArrayBuffer>, img.width, img.height), 0, 0);
}

async function setImage(role: 'content' | 'style', blob: Blob, name: string): Promise<void> {
  try {
    const img = await decodeBlob(blob, name);
    page.images[role] = img;
    draw($<HTMLCanvasElement>(`${role}-thumb`), fitLongestSide(img, Math.min(360, Math.max(img.width, img.height))));
    $(`${role}-meta`).textContent = `${name}: ${img.width}×${img.height}`;
  } catch (e) {
    $(`${role}-meta`).textContent = `${name}: ${(e as Error).message}`;
    log(`${role}: ${(e as Error).message}`);
  }
  setState(page.state === 'running' ? 'running' : painterly ? 'ready' : page.state);
}

async function loadPreset(role: 'content' | 'style', file: string): Promise<void> {
  const res = await fetch(`examples/${file}`);
  if (!res.ok) { log(`examples/${file}: HTTP ${res.status}`); return; }
  await setImage(role, await res.blob(), file);
}

function wireImage(role: 'content' | 'style', preset: string): void {
  const sel = $<HTMLSelectElement>(`${role}-preset`);
  sel.add(new Option('(choose)', ''));
  for (const p of PRESETS) sel.add(new Option(p.title, p.file));
  sel.value = preset;
  sel.onchange = () => { if (sel.value) void loadPreset(role, sel.value); };
  const input = $<HTMLInputElement>(`${role}-file`);
  input.onchange = () => {
    const f = input.files?.[0];
    if (f) { sel.value = ''; void setImage(role, f, f.name); }
  };
  const zone = $(`${role}-drop`);
  zone.ondragover = (e) => { e.preventDefault(); zone.classList.add('over'); };
  zone.ondragleave = () => zone.classList.remove('over');
  zone.ondrop = (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    const f = e.dataTransfer?.files?.[0];
    if (f) { sel.value = ''; void setImage(role, f, f.name); }
  };
  void loadPreset(role, preset);
}

// ---- weights ------------------------------------------------------------------------------------------------

function weightSpec(): string {
  const kind = (document.querySelector('input[name=weights]:checked') as HTMLInputElement).value;
  if (kind === 'random') return `random:${num('seed')}`;
  if (kind === 'file') {
    const f = $<HTMLInputElement>('weights-file').files?.[0];
    if (!f) throw new Error('choose a .safetensors file for the weights, or another weights option');
    // Unique per chosen file, so Painterly's network cache never mixes two files of the same name.
    const spec = `${f.name} (${f.size} bytes, ${f.lastModified})`;
    if (!weightFiles.has(spec)) weightFiles.set(spec, blobSource(f, f.name));
    return spec;
  }
  return 'pretrained';
}

// ---- the loss plot ------------------------------------------------------------------------------------------

const losses: number[] = [];
function plotLoss(total: number): void {
  if (!(total > 0) || !Number.isFinite(total)) return;
  losses.push(Math.log10(total));
  const lo = Math.min(...losses), hi = Math.max(...losses);
  const span = hi - lo || 1;
  const n = Math.max(losses.length - 1, 1);
  $('loss-line').setAttribute('points', losses.map((l, i) => `${(i / n) * 320},${4 + (1 - (l - lo) / span) * 112}`).join(' '));
  $('loss-max').textContent = (10 ** hi).toExponential(2);
  $('loss-min').textContent = (10 ** lo).toExponential(2);
}

// ---- a run --------------------------------------------------------------------------------------------------

const fmtTime = (s: number) => (!Number.isFinite(s) ? '–' : s < 90 ? `${s.toFixed(0)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`);

function showStats(p: ProgressInfo | undefined, extra = ''): void {
  const el = $('stats');
  const first = page.evaluations[0]?.total;
  if (first !== undefined) el.dataset.initialLoss = String(first);
  if (!p) { el.textContent = extra; return; }
  el.dataset.iter = String(p.iter);
  el.dataset.loss = String(p.terms.total);
  const scale = p.scales > 1 ? `scale ${p.scale + 1}/${p.scales}, ` : '';
  el.textContent = `${scale}iteration ${p.iter}/${p.iters} at ${p.width}×${p.height} · loss ${p.terms.total.toExponential(4)}` +
    ` (content ${p.terms.content.toExponential(2)}, style ${p.terms.style.toExponential(2)})` +
    ` · ${p.itPerSec.toFixed(2)} it/s · ETA ${fmtTime(p.etaSeconds)}${extra}`;
}

async function start(): Promise<void> {
  const { content, style } = page.images;
  if (!painterly || !content || !style) return;
  let weights: string;
  try {
    weights = weightSpec();
  } catch (e) {
    log((e as Error).message);
    return;
  }
  const size = num('size');
  const optimizer = val('optimizer') as OptimizerName;
  const lrText = val('lr');
  const init = val('init') as 'noise' | 'content' | 'style';
  const seed = num('seed');
  const previewEvery = Math.max(1, Math.floor(num('preview-every')));
  // The first conv's activations are the largest binding: 64 channels x H x W float32.
  const need = 64 * 4 * size * size;
  if (need > painterly.gpu.maxBindingBytes) {
    log(`this GPU adapter is too small for ${size} px: it allows ${(painterly.gpu.maxBindingBytes / 2 ** 20).toFixed(0)} MB per buffer, ` +
      `${(need / 2 ** 20).toFixed(0)} MB are needed; try at most ${Math.floor(Math.sqrt(painterly.gpu.maxBindingBytes / 256))} px`);
    return;
  }

  page.evaluations = [];
  page.result = undefined;
  page.progress = undefined;
  page.previews = 0;
  page.error = undefined;
  losses.length = 0;
  plotLoss(NaN);
  $('loss-line').setAttribute('points', '');
  delete $('stats').dataset.initialLoss;
  delete $('stats').dataset.loss;
  delete $('stats').dataset.iter;

  // Show the starting image, so the preview visibly changes from it.
  const c = fitLongestSide(content, size);
  draw($<HTMLCanvasElement>('preview'), init === 'noise' ? noiseImage(c.width, c.height, seed) : init === 'content' ? c :
    fitLongestSide(style, size));
  controller = new AbortController();
  setState('running');
  showStats(undefined, weights === 'pretrained' ? 'Loading the network…' : 'Starting…');
  weightsProgress = (bytes, total) => showStats(undefined, `Downloading VGG19 weights: ${(bytes / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB`);
  const t0 = performance.now();
  try {
    const r = await painterly.stylize({
      content, style, size, iters: num('iters'), optimizer, ...(lrText ? { lr: Number(lrText) } : { lr: DEFAULT_LR[optimizer] }),
      styleWeight: num('style-weight'), contentWeight: num('content-weight'), tvWeight: num('tv-weight'),
      pooling: val('pooling') as 'avg' | 'max', preserveColors: val('preserve-colors') as 'none' | 'luminance' | 'histogram',
      init, seed, weights, saveEvery: previewEvery,
      signal: controller.signal,
      onMessage: log,
      onEvaluation: (e) => {
        page.evaluations.push(e);
        if (page.evaluations.length === 1) { plotLoss(e.total); showStats(page.progress, ''); }
      },
      onProgress: (p) => { page.progress = p; plotLoss(p.terms.total); showStats(p); },
      onImage: (img) => { draw($<HTMLCanvasElement>('preview'), img); page.previews++; },
    });
    page.result = r;
    draw($<HTMLCanvasElement>('preview'), r.image);
    const secs = (performance.now() - t0) / 1000;
    const why = r.stopped === 'aborted' ? `stopped after ${r.iterations} iterations` : r.stopped === 'converged' ? `converged after ${r.iterations} iterations` :
      r.stopped === 'non-finite' ? (r.message ?? 'the loss became non-finite') : `done: ${r.iterations} iterations`;
    log(`${why} in ${secs.toFixed(1)} s; final loss ${r.terms?.total.toExponential(4)}`);
    showStats(page.progress, ` · ${why}`);
    setState(r.stopped === 'aborted' ? 'stopped' : 'done');
  } catch (e) {
    page.error = (e as Error).message;
    log(`error: ${page.error}`);
    showStats(undefined, `Error: ${page.error}`);
    setState('error');
  } finally {
    weightsProgress = undefined;
    controller = undefined;
  }
}

function download(): void {
  const r = page.result;
  if (!r) return;
  const c = document.createElement('canvas');
  c.width = r.width;
  c.height = r.height;
  c.getContext('2d')!.putImageData(new ImageData(r.rgba as Uint8ClampedArray<ArrayBuffer>, r.width, r.height), 0, 0);
  c.toBlob((blob) => {
    if (!blob) return;
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `painterly-${r.width}x${r.height}.png`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  }, 'image/png');
}

// ---- start-up -----------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  wireImage('content', 'tubingen.jpg');
  wireImage('style', 'starry_night.jpg');
  $('start').onclick = () => void start();
  $('stop').onclick = () => { controller?.abort(); log('stopping after the current iteration…'); };
  $('download').onclick = download;
  $<HTMLInputElement>('weights-file').onchange = () => {
    (document.querySelector('input[name=weights][value=file]') as HTMLInputElement).checked = true;
  };
  const optSel = $<HTMLSelectElement>('optimizer');
  const lrInput = $<HTMLInputElement>('lr');
  const showLr = () => { lrInput.placeholder = `default ${DEFAULT_LR[optSel.value as OptimizerName]}`; };
  optSel.onchange = showLr;
  showLr();

  const why = webgpuUnavailableReason();
  if (why) {
    gpuStatus(`WebGPU is not available: ${why}`, true);
    setState('unsupported');
    return;
  }
  try {
    painterly = await createPainterly({
      onError: (m) => log(`GPU error: ${m}`),
      weights: {
        // ?weights-url=URL: a mirror of the safetensors file (any server that answers HTTP range requests).
        url: new URLSearchParams(location.search).get('weights-url') ?? undefined,
        files: weightFiles,
        onProgress: (p) => weightsProgress?.(p.bytes, p.total),
        onMessage: log,
      },
    });
  } catch (e) {
    gpuStatus(`WebGPU is not usable here: ${(e as Error).message}`, true);
    setState('unsupported');
    return;
  }
  const g = painterly.gpu;
  const desc = g.describe().trim();
  gpuStatus(`WebGPU ready${desc ? `: ${desc}` : ''} (up to ${(g.maxBindingBytes / 2 ** 20).toFixed(0)} MB per buffer, so at most ` +
    `${Math.floor(Math.sqrt(g.maxBindingBytes / 256))} px).`);
  if (navigator.storage?.persist) void navigator.storage.persist().catch(() => false);
  setState('ready');
}

void main();
