// The web page: pick two images and a method, run Painterly on WebGPU, download a PNG. Gatys et al.: watch the
// preview and the loss fall. WCT / AdaIN (feed-forward): the result in one pass, an α slider that re-decodes without
// re-encoding the style, and a webcam mode. State for tests and curious users is mirrored on <body data-state> and on
// window.painterlyPage.
import {
  createPainterly, blobSource, decodeImage, fitLongestSide, fromRgba, sniffFormat, toRgba, webgpuUnavailableReason,
  FeedForwardSession, FF_MODELS, fetchModelFiles, IdbStore, loadModelFromFiles, matchColorHistogram, MemoryStore,
  modelFromPickedFiles, transferLuminance,
  type EvaluationRecord, type FeedForwardModelSpec, type ModelFiles, type Painterly, type PainterlyResult, type ProgressInfo,
  type RgbImage, type SessionCounters, type WeightStore,
} from '../src/browser.ts';
import { noiseImage } from '../src/style/engine.ts';
import { DEFAULT_ALPHA, DEFAULT_LR, type OptimizerName } from '../src/style/options.ts';
import { DEFAULT_SMOOTH_EPS, DEFAULT_SMOOTH_RADIUS, PHOTOREAL_MATTING_PER_TV, smoothImage } from '../src/style/photoreal.ts';

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

type State = 'loading' | 'unsupported' | 'ready' | 'running' | 'done' | 'stopped' | 'error' | 'webcam';
type FFMethod = 'wct' | 'adain';

/** What the page knows, readable from devtools and tests. */
const page = {
  state: 'loading' as State,
  images: {} as Partial<Record<'content' | 'style', RgbImage>>,
  /** Semantic masks (Gatys), chosen with the two mask pickers. */
  masks: {} as Partial<Record<'content' | 'style', RgbImage>>,
  evaluations: [] as EvaluationRecord[],
  progress: undefined as ProgressInfo | undefined,
  result: undefined as PainterlyResult | undefined,
  previews: 0,
  error: undefined as string | undefined,
  /** Bumped whenever an image is (re)chosen: part of the feed-forward caches' keys. */
  imageVersion: { content: 0, style: 0 },
  /** Feed-forward runs: what the last one did, and the session's counters (styles encoded, encoder/decoder passes). */
  ff: {
    method: undefined as FFMethod | undefined,
    levels: [] as number[],
    model: undefined as string | undefined,
    /** Milliseconds of the last run (style encoding included when it happened) and of its style encoding. */
    ms: 0,
    styleMs: 0,
    alpha: NaN,
    /** Slider moves that re-decoded the shown result. */
    alphaRuns: 0,
    /** 'cached features' (one level: only transform + decode) or 'chain' (every level, style reused). */
    alphaMode: undefined as 'cached features' | 'chain' | undefined,
    counters: { styleEncodes: 0, contentEncodes: 0, decodes: 0 } as SessionCounters,
    webcamFrames: 0,
    webcamFps: 0,
    modelRequests: 0,
  },
};
(window as unknown as { painterlyPage: typeof page }).painterlyPage = page;

let painterly: Painterly | undefined;
let controller: AbortController | undefined;
const weightFiles = new Map<string, ReturnType<typeof blobSource>>();
let weightsProgress: ((bytes: number, total: number) => void) | undefined;

function setState(s: State): void {
  page.state = s;
  document.body.dataset.state = s;
  const busy = s === 'running' || s === 'webcam';
  const images = !!painterly && !!page.images.content && !!page.images.style;
  $<HTMLButtonElement>('start').disabled = busy || !images;
  $<HTMLButtonElement>('stop').disabled = !busy;
  $<HTMLButtonElement>('download').disabled = busy || !page.result;
  const cam = $<HTMLButtonElement>('webcam');
  cam.disabled = s === 'running' || !painterly || !page.images.style;
  cam.textContent = s === 'webcam' ? 'Stop webcam' : 'Start webcam';
}

const method = () => val('method') as 'gatys' | FFMethod;

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
    page.imageVersion[role]++;
    draw($<HTMLCanvasElement>(`${role}-thumb`), fitLongestSide(img, Math.min(360, Math.max(img.width, img.height))));
    $(`${role}-meta`).textContent = `${name}: ${img.width}×${img.height}`;
  } catch (e) {
    $(`${role}-meta`).textContent = `${name}: ${(e as Error).message}`;
    log(`${role}: ${(e as Error).message}`);
  }
  setState(page.state === 'running' || page.state === 'webcam' ? page.state : painterly ? 'ready' : page.state);
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

// ---- photorealistic options --------------------------------------------------------------------------------

/** Smoothing (any method): undefined when off. */
function smoothing(): { radius: number; eps: number } | undefined {
  if (!$<HTMLInputElement>('smooth').checked) return undefined;
  return { radius: num('smooth-radius'), eps: num('smooth-eps') };
}

/** The Gatys run's photorealism options, as the library names them (it checks the values). */
function photorealOptions(): Record<string, unknown> {
  const s = smoothing();
  const o: Record<string, unknown> = s ? { smooth: true, smoothRadius: s.radius, smoothEps: s.eps } : {};
  if ($<HTMLInputElement>('photorealistic').checked) o.photorealistic = true;
  const mw = val('matting-weight').trim();
  if (mw) o.mattingWeight = Number(mw);
  if (page.masks.content || page.masks.style) Object.assign(o, { contentMask: page.masks.content, styleMask: page.masks.style });
  return o;
}

/** With smoothing on, a feed-forward result through the guided filter guided by the content (as the library does). */
async function smoothFF(out: RgbImage, content: RgbImage): Promise<RgbImage> {
  const s = smoothing();
  return s ? smoothImage(painterly!.gpu, content, out, s.radius, s.eps) : out;
}

function wirePhotoreal(): void {
  $<HTMLInputElement>('smooth-radius').value = String(DEFAULT_SMOOTH_RADIUS);
  $<HTMLInputElement>('smooth-eps').value = String(DEFAULT_SMOOTH_EPS);
  $<HTMLInputElement>('matting-weight').placeholder = `default: ${PHOTOREAL_MATTING_PER_TV} × the default TV weight with the regulariser on, else 0`;
  // The regulariser starts from the content (the library's default with it on; the page passes init explicitly).
  $<HTMLInputElement>('photorealistic').onchange = (e) => { if ((e.target as HTMLInputElement).checked) $<HTMLSelectElement>('init').value = 'content'; };
  const meta = () => {
    const { content, style } = page.masks;
    $('mask-meta').textContent = !content && !style ? 'No masks: one style for the whole image.' :
      `content mask ${content ? `${content.width}×${content.height}` : 'missing'}, style mask ${style ? `${style.width}×${style.height}` : 'missing'}` +
      (!content || !style ? ' (both are needed)' : ': each colour of the content gets the style of the same colour');
  };
  for (const role of ['content', 'style'] as const) {
    const input = $<HTMLInputElement>(`${role}-mask-file`);
    input.onchange = async () => {
      const f = input.files?.[0];
      if (!f) { delete page.masks[role]; meta(); return; }
      try {
        page.masks[role] = await decodeBlob(f, f.name);
      } catch (e) {
        delete page.masks[role];
        log(`${role} mask: ${(e as Error).message}`);
      }
      meta();
    };
  }
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
  const m = method();
  if (m !== 'gatys') return startFeedForward(m);
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
      init, seed, weights, saveEvery: previewEvery, ...photorealOptions(),
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

// ---- feed-forward methods (WCT, AdaIN) ---------------------------------------------------------------------

/** Downloaded model files live next to the VGG19 weights (IndexedDB), named <model>/<path>. */
let modelStore: WeightStore | undefined;
/** Models on the GPU with their sessions, by model choice (a table name, or the picked folder's identity). */
const sessions = new Map<string, Promise<FeedForwardSession>>();
let picked: { spec: FeedForwardModelSpec; files: ModelFiles; folder: string; key: string } | undefined;
/** The shown feed-forward result, which the α slider re-decodes. */
let shown: { session: FeedForwardSession; content: RgbImage; contentKey: string; method: FFMethod; levels: number[]; luminance: boolean } | undefined;
let webcam: { stop: boolean } | undefined;

function modelChoice(): string {
  return (document.querySelector('input[name=ff-model]:checked') as HTMLInputElement).value;
}

/** The session of the chosen model, loading the model (and downloading it once) the first time. */
function ffSession(): Promise<FeedForwardSession> {
  const choice = modelChoice();
  const gpu = painterly!.gpu;
  let key: string;
  let load: () => Promise<FeedForwardSession>;
  if (choice === 'folder') {
    const p = picked;
    if (!p) return Promise.reject(new Error('choose a model folder (laid out like upstream\'s), or another model'));
    key = p.key;
    load = async () => new FeedForwardSession(gpu, await loadModelFromFiles(gpu, p.spec, p.files, `${p.spec.name} from the folder ${p.folder}`));
  } else {
    key = choice;
    load = async () => {
      // ?model-url=URL: a mirror of the model folders (URL/<model>/<path>); the table's sha256s still apply.
      const mirror = new URLSearchParams(location.search).get('model-url');
      const store = modelStore!;
      const files = await fetchModelFiles(choice, {
        store, baseUrl: mirror ? `${mirror.replace(/\/$/, '')}/${choice}/` : undefined, onMessage: log,
        fetch: (input, init) => { page.ff.modelRequests++; return fetch(input, init); },
        onProgress: (p) => showStats(undefined, `Downloading ${choice}: ${p.file} (${(p.bytes / 1e6).toFixed(1)} of ${(p.total / 1e6).toFixed(1)} MB)`),
      });
      return new FeedForwardSession(gpu, await loadModelFromFiles(gpu, FF_MODELS[choice], files, `${choice} (${store instanceof IdbStore ? 'cached in IndexedDB' : 'in memory'})`));
    };
  }
  let s = sessions.get(key);
  if (!s) {
    s = load();
    sessions.set(key, s);
    s.catch(() => sessions.delete(key));
  }
  return s;
}

function parseLevels(spec: FeedForwardModelSpec, m: FFMethod): number[] {
  const text = val('levels').trim();
  if (!text) return spec.defaultLevels[m];
  const levels = text.split(/[\s,]+/).map(Number);
  const bad = levels.find((k) => !spec.levels.includes(k));
  if (bad !== undefined || levels.some((k, i) => levels.indexOf(k) !== i)) {
    throw new Error(`levels "${text}": expected distinct levels of ${spec.name}, from ${spec.levels.join(', ')}`);
  }
  return levels;
}

const alphaValue = () => num('alpha');

/**
 * Clamped (and, with "luminance only", the content's luminance put back; with smoothing, through the guided filter),
 * drawn, and kept for Download.
 */
async function showFeedForward(out: RgbImage, content: RgbImage, luminance: boolean, source: string, seconds: number): Promise<void> {
  if (luminance) out = transferLuminance(out, content);
  const data = out.data.map((v) => Math.min(1, Math.max(0, v)));
  const img = await smoothFF({ width: out.width, height: out.height, data }, content);
  draw($<HTMLCanvasElement>('preview'), img);
  page.result = {
    image: img, terms: undefined, iterations: 0, stopped: 'done', seconds,
    rgba: toRgba(img), width: img.width, height: img.height, weights: source,
  };
}

function ffStats(text: string): void {
  const el = $('stats');
  el.dataset.ms = String(page.ff.ms);
  el.textContent = text;
}

const NAMES: Record<FFMethod, string> = { wct: 'WCT', adain: 'AdaIN' };

/** One feed-forward pass: the style encoded once (kept for the slider, other contents and the webcam), then the content. */
async function startFeedForward(m: FFMethod): Promise<void> {
  const { content, style } = page.images;
  if (!painterly || !content || !style) return;
  const size = num('size');
  const pc = val('preserve-colors');
  page.error = undefined;
  setState('running');
  showStats(undefined, 'Loading the model…');
  try {
    const session = await ffSession();
    const levels = parseLevels(session.model.spec, m);
    const c = fitLongestSide(content, size);
    let s = fitLongestSide(style, size);
    // "match histogram": the style's colours moved to the content's before encoding (so the style depends on the content).
    if (pc === 'histogram') s = matchColorHistogram(s, c);
    const styleKey = `style ${page.imageVersion.style} at ${size}${pc === 'histogram' ? ` matched to content ${page.imageVersion.content}` : ''}`;
    const contentKey = `content ${page.imageVersion.content} at ${size}`;
    page.ff.counters = session.counters;
    const t0 = performance.now();
    const encodes = session.counters.styleEncodes;
    await session.useStyle(styleKey, m, [s], [1], levels);
    const t1 = performance.now();
    const alpha = alphaValue();
    const out = await session.stylize(c, alpha, contentKey);
    shown = { session, content: c, contentKey, method: m, levels, luminance: pc === 'luminance' };
    await showFeedForward(out, c, pc === 'luminance', session.model.source, (performance.now() - t0) / 1000);
    const secs = (performance.now() - t0) / 1000;
    Object.assign(page.ff, {
      method: m, levels, model: session.model.source, ms: secs * 1000, styleMs: t1 - t0, alpha,
      alphaMode: levels.length === 1 ? 'cached features' : 'chain',
    });
    const styleNote = session.counters.styleEncodes > encodes ? `style encoded in ${((t1 - t0) / 1000).toFixed(2)} s` : 'style reused';
    const line = `${NAMES[m]}, levels ${levels.join(',')} at ${c.width}×${c.height}: ${secs.toFixed(2)} s (${styleNote}) · α ${alpha.toFixed(2)} · ${session.model.source}`;
    ffStats(`${line}. Move α to re-decode (${levels.length === 1 ? 'from the cached content features' : 'every level again, same encoded style'}).`);
    log(line);
    setState('done');
  } catch (e) {
    page.error = (e as Error).message;
    log(`error: ${page.error}`);
    showStats(undefined, `Error: ${page.error}`);
    setState('error');
  }
}

let alphaPending: number | undefined;
let alphaBusy = false;

/** The α slider: re-decodes the shown result (no style encoding; with one level no encoding at all). */
async function onAlpha(): Promise<void> {
  $('alpha-value').textContent = alphaValue().toFixed(2);
  if (!shown || page.state !== 'done' && !alphaBusy) return;
  alphaPending = alphaValue();
  if (alphaBusy) return;
  alphaBusy = true;
  setState('running');
  try {
    while (alphaPending !== undefined) {
      const a = alphaPending;
      alphaPending = undefined;
      const t0 = performance.now();
      const out = await shown.session.stylize(shown.content, a, shown.contentKey);
      await showFeedForward(out, shown.content, shown.luminance, shown.session.model.source, (performance.now() - t0) / 1000);
      const secs = (performance.now() - t0) / 1000;
      page.ff.alpha = a;
      page.ff.ms = secs * 1000;
      page.ff.alphaRuns++;
      ffStats(`${NAMES[shown.method]}, levels ${shown.levels.join(',')}: α ${a.toFixed(2)} re-decoded in ${secs.toFixed(2)} s ` +
        `(${shown.levels.length === 1 ? 'from the cached content features' : 'every level again, same encoded style'}).`);
    }
    setState('done');
  } catch (e) {
    page.error = (e as Error).message;
    log(`error: ${page.error}`);
    setState('error');
  } finally {
    alphaBusy = false;
  }
}

const nextFrame = () => new Promise<void>((r) => requestAnimationFrame(() => r()));

/** Webcam: frames drawn to a canvas at a modest size, stylised with the style encoded once, shown live. */
async function startWebcam(): Promise<void> {
  const style = page.images.style;
  if (!painterly || !style) return;
  const m = method();
  if (m === 'gatys') { log('the webcam needs a feed-forward method (WCT or AdaIN)'); return; }
  if (!navigator.mediaDevices?.getUserMedia) { log('this browser gives this page no camera (navigator.mediaDevices is missing; https needed?)'); return; }
  const cam = { stop: false };
  webcam = cam;
  page.ff.webcamFrames = 0;
  page.ff.webcamFps = 0;
  page.error = undefined;
  setState('webcam');
  const video = $<HTMLVideoElement>('webcam-video');
  let stream: MediaStream | undefined;
  try {
    showStats(undefined, 'Loading the model…');
    const session = await ffSession();
    page.ff.counters = session.counters;
    const levels = parseLevels(session.model.spec, m);
    const size = num('size');
    await session.useStyle(`style ${page.imageVersion.style} at ${size}`, m, [fitLongestSide(style, size)], [1], levels);
    showStats(undefined, 'Asking for the camera…');
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
    video.srcObject = stream;
    video.hidden = false;
    await video.play();
    const grab = document.createElement('canvas');
    const ctx = grab.getContext('2d', { willReadFrequently: true })!;
    const t0 = performance.now();
    while (!cam.stop) {
      if (!video.videoWidth) { await nextFrame(); continue; }
      const side = Math.max(16, Math.floor(num('webcam-size')) || 160);
      const k = side / Math.max(video.videoWidth, video.videoHeight);
      const w = Math.max(16, Math.round(video.videoWidth * k)), h = Math.max(16, Math.round(video.videoHeight * k));
      if (grab.width !== w || grab.height !== h) { grab.width = w; grab.height = h; }
      ctx.drawImage(video, 0, 0, w, h);
      const frame = fromRgba(ctx.getImageData(0, 0, w, h).data, w, h);
      const out = await session.stylize(frame, alphaValue());
      if (cam.stop) break;
      await showFeedForward(out, frame, val('preserve-colors') === 'luminance', session.model.source, 0);
      page.ff.webcamFrames++;
      page.ff.webcamFps = page.ff.webcamFrames / ((performance.now() - t0) / 1000);
      showStats(undefined, `Webcam: ${NAMES[m]}, levels ${levels.join(',')} at ${w}×${h}, ${page.ff.webcamFps.toFixed(1)} frames/s ` +
        `(${page.ff.webcamFrames} frames; style encoded once)`);
      await nextFrame();
    }
    log(`webcam stopped after ${page.ff.webcamFrames} frames (${page.ff.webcamFps.toFixed(1)} frames/s)`);
    setState(page.result ? 'done' : 'ready');
  } catch (e) {
    const err = e as Error;
    page.error = err.name === 'NotAllowedError' ? 'the camera was not allowed' : err.name === 'NotFoundError' ? 'no camera found' : err.message;
    log(`webcam: ${page.error}`);
    showStats(undefined, `Webcam: ${page.error}`);
    setState('error');
  } finally {
    for (const t of stream?.getTracks() ?? []) t.stop();
    video.srcObject = null;
    video.hidden = true;
    shown = undefined; // the preview now shows a frame: the slider has nothing to re-decode
    webcam = undefined;
  }
}

async function pickFolder(input: HTMLInputElement): Promise<void> {
  const files = Array.from(input.files ?? []);
  const meta = $('ff-meta');
  try {
    const found = modelFromPickedFiles(files.map((f) => {
      const path = (f as File & { webkitRelativePath?: string }).webkitRelativePath || f.name;
      return { path, source: blobSource(f, path) };
    }));
    const key = `folder ${found.folder}: ${files.map((f) => `${f.name}:${f.size}:${f.lastModified}`).join('|')}`;
    picked = { ...found, key };
    (document.querySelector('input[name=ff-model][value=folder]') as HTMLInputElement).checked = true;
    meta.textContent = `${found.spec.name} in the folder ${found.folder} (${found.files.size} files)`;
  } catch (e) {
    picked = undefined;
    meta.textContent = (e as Error).message;
    log((e as Error).message);
  }
}

function wireFeedForward(): void {
  const sel = $<HTMLSelectElement>('method');
  const apply = () => {
    document.body.dataset.method = sel.value;
    if (sel.value !== 'gatys') {
      $<HTMLInputElement>('alpha').value = String(DEFAULT_ALPHA[sel.value as FFMethod]);
      $('alpha-value').textContent = alphaValue().toFixed(2);
    }
  };
  sel.onchange = apply;
  apply();
  $<HTMLInputElement>('alpha').oninput = () => void onAlpha();
  $<HTMLInputElement>('ff-folder').onchange = (e) => void pickFolder(e.target as HTMLInputElement);
  $('webcam').onclick = () => { if (webcam) webcam.stop = true; else void startWebcam(); };
  modelStore = IdbStore.available() ? new IdbStore() : new MemoryStore();
}

// ---- start-up -----------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  wireImage('content', 'tubingen.jpg');
  wireImage('style', 'starry_night.jpg');
  $('start').onclick = () => void start();
  $('stop').onclick = () => {
    if (webcam) { webcam.stop = true; return; }
    controller?.abort();
    log('stopping after the current iteration…');
  };
  wireFeedForward();
  wirePhotoreal();
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
