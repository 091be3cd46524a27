// End-to-end test of the web page in Debian's Chromium (WebGPU on SwiftShader), driven by playwright-core.
// Builds the page, serves it on 127.0.0.1 (random port), runs the page the way a user would, and checks its numbers
// against the library running in this Node process (Dawn); the feed-forward methods (WCT, AdaIN) run the real
// wct-16x networks from ../shared/models, served to the page as a mirror of the model table. Run: npm run test:browser [-- --update-screenshot] [-- --only=REGEX]
// (wrap in `flock /tmp/painterly-gpu.lock` on shared machines). Prints "N passed, N failed" last.
// Not a *.test.ts: the Node suite (npm test) does not pick it up.
import { createServer, type Server } from 'node:http';
import { readFile, mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createPainterly } from '../../src/node.ts';
import { decodeImage, encodeImage } from '../../src/image/codec.ts';
import { toRgba } from '../../src/image/image.ts';
import { fitLongestSide } from '../../src/image/resize.ts';
import type { RgbImage } from '../../src/image/image.ts';
import { randomConvs } from '../../src/weights/random.ts';
import { convsUpTo } from '../../src/weights/layout.ts';
import { VGG19_CONVS } from '../../src/weights/layout.ts';
import { writeSafetensors, type RawTensor } from '../../src/weights/safetensors.ts';
// @ts-expect-error: a plain .mjs module without type declarations
import { buildWeb } from '../../scripts/build.mjs';

const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const webDir = join(root, 'dist', 'web');
const outDir = join(root, 'dist', 'test-browser');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const updateScreenshot = process.argv.includes('--update-screenshot');
/** Relative tolerance of the initial loss, page (SwiftShader) against Node (Dawn on lavapipe): float32 sums. */
const LOSS_RTOL = 1e-4;
/** The real feed-forward networks (../shared/models/wct-16x), served to the page and run in Node for comparison. */
const sharedModels = resolve(root, '..', 'shared', 'models');
const WCT16X = join(sharedModels, 'wct-16x');
/** Mean |page − Node| over RGBA bytes of a feed-forward result (SwiftShader against lavapipe: float32 rounding). */
const FF_MEAN_TOL = 1.5;
const SEED = 3;

// ---- a minimal runner with uvu's closing line ---------------------------------------------------------------

const tests: { name: string; fn: () => Promise<void> }[] = [];
const test = (name: string, fn: () => Promise<void>) => tests.push({ name, fn });
function ok(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

// ---- the server: the built page, plus a VGG19-shaped weights file that can be taken offline --------------------

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.map': 'application/json',
  '.jpg': 'image/jpeg', '.png': 'image/png', '.md': 'text/markdown; charset=utf-8',
};

interface Served {
  server: Server; url: string; weightsOnline: boolean; rangeRequests: number; weightRequests: number;
  /** /models/<model>/<path>: a mirror of ../shared/models for the page's ?model-url= (the table's sha256s apply). */
  modelsOnline: boolean; modelRequests: number;
}

/** A VGG19-named safetensors file (conv1_1..conv5_1) of seeded He-initialised weights, stored as BF16 (half the bytes). */
function weightsFile(seed: number): Uint8Array {
  const tensors: RawTensor[] = [];
  const convs = randomConvs(seed, convsUpTo('conv5_1'));
  const bf16 = (a: Float32Array) => {
    const u32 = new Uint32Array(a.buffer, a.byteOffset, a.length);
    const out = new Uint16Array(a.length);
    for (let i = 0; i < a.length; i++) out[i] = u32[i] >>> 16; // truncation: exact, the same bits everywhere
    return new Uint8Array(out.buffer);
  };
  convs.forEach((c, i) => {
    const idx = VGG19_CONVS[i].index;
    tensors.push({ name: `features.${idx}.weight`, dtype: 'BF16', shape: [c.cout, c.cin, 3, 3], data: bf16(c.weight) });
    tensors.push({ name: `features.${idx}.bias`, dtype: 'BF16', shape: [c.cout], data: bf16(c.bias) });
  });
  return writeSafetensors(tensors);
}

async function serve(weights: Uint8Array): Promise<Served> {
  const s: Served = { server: undefined as unknown as Server, url: '', weightsOnline: true, rangeRequests: 0, weightRequests: 0, modelsOnline: true, modelRequests: 0 };
  s.server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    if (path.startsWith('/models/')) {
      s.modelRequests++;
      if (!s.modelsOnline) { res.writeHead(503).end('offline'); return; }
      const file = normalize(join(sharedModels, path.slice('/models/'.length)));
      if (!file.startsWith(sharedModels) || !existsSync(file)) { res.writeHead(404).end('not found'); return; }
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(await readFile(file));
      return;
    }
    if (path === '/weights/vgg19.safetensors') {
      s.weightRequests++;
      if (!s.weightsOnline) { res.writeHead(503).end('offline'); return; }
      const m = /^bytes=(\d+)-(\d+)?$/.exec(req.headers.range ?? '');
      if (!m) { res.writeHead(200, { 'content-length': weights.length }).end(weights); return; }
      s.rangeRequests++;
      const b = Number(m[1]), e = Math.min(m[2] ? Number(m[2]) : weights.length - 1, weights.length - 1);
      res.writeHead(206, { 'content-range': `bytes ${b}-${e}/${weights.length}`, 'content-length': e - b + 1, etag: '"w1"' });
      res.end(weights.subarray(b, e + 1));
      return;
    }
    const file = normalize(join(webDir, path.endsWith('/') ? `${path}index.html` : path));
    if (!file.startsWith(webDir) || !existsSync(file)) { res.writeHead(404).end('not found'); return; }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(await readFile(file));
  });
  await new Promise<void>((r) => s.server.listen(0, '127.0.0.1', r));
  const addr = s.server.address();
  s.url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/`;
  return s;
}

// ---- page helpers -------------------------------------------------------------------------------------------

interface PageView { state: string; error?: string; evaluations: { total: number }[]; previews: number; progress?: { iter: number } }
const view = (p: Page) => p.evaluate(() => {
  const pg = (window as unknown as { painterlyPage: PageView }).painterlyPage;
  return { state: pg.state, error: pg.error, evaluations: pg.evaluations.map((e) => ({ total: e.total })), previews: pg.previews, iter: pg.progress?.iter ?? 0 };
});

async function waitState(p: Page, states: string[], timeoutMs: number): Promise<string> {
  await p.waitForFunction((s) => s.includes(document.body.dataset.state ?? ''), states, { timeout: timeoutMs, polling: 100 });
  return (await p.evaluate(() => document.body.dataset.state))!;
}

async function previewPixels(p: Page): Promise<{ w: number; h: number; px: number[] }> {
  return p.evaluate(() => {
    const c = document.getElementById('preview') as HTMLCanvasElement;
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height);
    return { w: c.width, h: c.height, px: Array.from(d.data) };
  });
}

async function setOptions(p: Page, o: Record<string, string>, weights: 'random' | 'pretrained' | 'file'): Promise<void> {
  for (const [id, v] of Object.entries(o)) {
    const tag = await p.$eval(`#${id}`, (e) => e.tagName);
    if (tag === 'SELECT') await p.selectOption(`#${id}`, v);
    else await p.fill(`#${id}`, v);
  }
  await p.check(`input[name=weights][value=${weights}]`);
}

const RUN_OPTIONS = {
  size: '64', iters: '6', 'preview-every': '2', seed: String(SEED), optimizer: 'lbfgs', pooling: 'avg',
  'style-weight': '1000', 'content-weight': '1', 'tv-weight': '0.001', init: 'noise', 'preserve-colors': 'none',
};

/** The initial loss (first evaluation) of the same run in Node, on Dawn. */
async function nodeInitialLoss(content: RgbImage, style: RgbImage, weights: string, files?: Map<string, { name: string; size: number; read(b: number, e: number): Promise<Uint8Array> }>): Promise<number> {
  const p = await createPainterly({ weights: { files, onMessage: () => {} } });
  try {
    let first: number | undefined;
    await p.stylize({
      content, style, size: 64, iters: 1, optimizer: 'lbfgs', pooling: 'avg', styleWeight: 1000, contentWeight: 1, tvWeight: 0.001,
      init: 'noise', seed: SEED, preserveColors: 'none', weights,
      onEvaluation: (e) => { first ??= e.total; },
    });
    return first!;
  } finally {
    p.destroy();
  }
}

// ---- the tests ----------------------------------------------------------------------------------------------

let browser: Browser;
let page: Page;
let served: Served;
const consoleErrors: string[] = [];
const images: Record<string, RgbImage> = {};
const contentFile = join(root, 'examples', 'tubingen.jpg');
const styleFile = join(root, 'examples', 'starry_night.jpg');
const weightsBytes = weightsFile(11);

test('the page finds WebGPU and loads the example images', async () => {
  const state = await waitState(page, ['ready', 'unsupported', 'error'], 60_000);
  ok(state === 'ready', `page state ${state}: ${await page.textContent('#gpu-status')}`);
  ok(/WebGPU ready/.test((await page.textContent('#gpu-status')) ?? ''), 'status line says WebGPU is ready');
});

test('a run with random weights at 64 px: loss falls, preview changes, numbers match Node', async () => {
  await page.setInputFiles('#content-file', contentFile);
  await page.setInputFiles('#style-file', styleFile);
  await page.waitForFunction(() => /tubingen\.jpg: 512×384/.test(document.getElementById('content-meta')!.textContent ?? '') &&
    /starry_night\.jpg: 512×320/.test(document.getElementById('style-meta')!.textContent ?? ''));
  await setOptions(page, RUN_OPTIONS, 'random');
  await page.click('#start');
  await waitState(page, ['running', 'done', 'error'], 10_000);
  const initial = await previewPixels(page);
  const state = await waitState(page, ['done', 'stopped', 'error'], 300_000);
  const v = await view(page);
  ok(state === 'done', `run ended in state ${state}: ${v.error ?? ''}`);
  const stats = await page.$eval("#stats", (e) => ({ ...(e as HTMLElement).dataset, text: e.textContent })) as Record<string, string | undefined>;
  const first = Number(stats.initialLoss), last = Number(stats.loss);
  ok(Number.isFinite(first) && Number.isFinite(last) && last < first, `shown loss should fall: initial ${first}, last ${last}`);
  ok(/it\/s/.test(stats.text ?? '') && /ETA/.test(stats.text ?? ''), `stats show it/s and ETA: ${stats.text}`);
  ok(Number(stats.iter) === 6, `6 iterations shown, got ${stats.iter}`);
  ok(v.previews >= 2, `preview redrawn every 2 iterations: ${v.previews} redraws`);
  const points = (await page.getAttribute('#loss-line', 'points'))?.trim().split(/\s+/) ?? [];
  ok(points.length >= 7, `loss plot has the initial point and one per iteration: ${points.length}`);
  const final = await previewPixels(page);
  ok(final.w === 64 && final.h === 48, `preview is 64x48, got ${final.w}x${final.h}`);
  ok(initial.w === final.w && initial.h === final.h, 'initial preview has the output size');
  let diff = 0;
  for (let i = 0; i < final.px.length; i++) diff += Math.abs(final.px[i] - initial.px[i]);
  ok(diff / final.px.length > 1, `preview differs from the initial image (mean |diff| ${(diff / final.px.length).toFixed(2)})`);

  const want = await nodeInitialLoss(images.content, images.style, `random:${SEED}`);
  const rel = Math.abs(v.evaluations[0].total - want) / Math.abs(want);
  console.log(`    initial loss: page ${v.evaluations[0].total}, node ${want}, relative difference ${rel.toExponential(2)}`);
  ok(rel <= LOSS_RTOL, `initial loss in the page ${v.evaluations[0].total} vs Node ${want}: relative ${rel.toExponential(2)} > ${LOSS_RTOL}`);
  await mkdir(outDir, { recursive: true });
  await page.screenshot({ path: join(outDir, 'screenshot-web.png'), fullPage: true });
  if (updateScreenshot) await page.screenshot({ path: join(root, 'docs', 'screenshot-web.png'), fullPage: true });
});

test('Download PNG saves the result', async () => {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  ok(/^painterly-64x48\.png$/.test(dl.suggestedFilename()), `file name ${dl.suggestedFilename()}`);
  const img = decodeImage(new Uint8Array(await readFile((await dl.path())!)), 'download');
  ok(img.width === 64 && img.height === 48, `downloaded PNG is ${img.width}x${img.height}`);
});

test('Stop stops a long run', async () => {
  await setOptions(page, { ...RUN_OPTIONS, iters: '1000' }, 'random');
  await page.click('#start');
  await page.waitForFunction(() => Number(document.getElementById('stats')!.dataset.iter ?? 0) >= 2, undefined, { timeout: 120_000, polling: 100 });
  await page.click('#stop');
  const state = await waitState(page, ['done', 'stopped', 'error'], 60_000);
  ok(state === 'stopped', `state after Stop: ${state}`);
  const iter = Number(await page.$eval('#stats', (e) => (e as HTMLElement).dataset.iter));
  ok(iter >= 2 && iter < 1000, `stopped at iteration ${iter}`);
  await new Promise((r) => setTimeout(r, 1500));
  const later = Number(await page.$eval('#stats', (e) => (e as HTMLElement).dataset.iter));
  ok(later === iter, `no iterations after Stop (${iter} then ${later})`);
  ok(!(await page.isDisabled('#start')) && (await page.isDisabled('#stop')), 'Start enabled, Stop disabled again');
});

test('photorealistic Gatys: semantic masks and smoothing from the page\'s controls; loss and result as in Node', async () => {
  const contentMask = join(root, 'docs', 'photoreal', 'tubingen-mask.png'), styleMask = join(root, 'docs', 'photoreal', 'rocket-mask.png');
  await setOptions(page, { ...RUN_OPTIONS, iters: '2' }, 'random');
  await page.setInputFiles('#content-mask-file', contentMask);
  await page.setInputFiles('#style-mask-file', styleMask);
  await page.waitForFunction(() => /content mask 512×384, style mask 512×342: each colour/.test(document.getElementById('mask-meta')!.textContent ?? ''), undefined, { timeout: 10_000 });
  await page.check('#smooth');
  await page.fill('#smooth-radius', '8');
  await page.click('#start');
  const state = await waitState(page, ['done', 'stopped', 'error'], 300_000);
  const v = await view(page);
  ok(state === 'done', `masked, smoothed run: ${state} ${v.error ?? ''}`);
  const got = await previewPixels(page);
  const masks = { contentMask: decodeImage(new Uint8Array(await readFile(contentMask)), 'cm'), styleMask: decodeImage(new Uint8Array(await readFile(styleMask)), 'sm') };
  const node = await createPainterly({ weights: { onMessage: () => {} } });
  try {
    const run = (o: Record<string, unknown>) => {
      let first: number | undefined;
      return node.stylize({
        content: images.content, style: images.style, size: 64, iters: 2, optimizer: 'lbfgs', pooling: 'avg', styleWeight: 1000, contentWeight: 1,
        tvWeight: 0.001, init: 'noise', seed: SEED, preserveColors: 'none', weights: `random:${SEED}`, onEvaluation: (e) => { first ??= e.total; }, ...o,
      }).then((r) => ({ r, first: first! }));
    };
    const want = await run({ ...masks, smooth: true, smoothRadius: 8 });
    const plain = await run({ ...masks });
    const unmasked = await run({});
    const rel = Math.abs(v.evaluations[0].total - want.first) / Math.abs(want.first);
    console.log(`    masked initial loss: page ${v.evaluations[0].total}, node ${want.first} (unmasked ${unmasked.first}), relative ${rel.toExponential(2)}`);
    ok(rel <= LOSS_RTOL, `masked initial loss, page ${v.evaluations[0].total} vs Node ${want.first}: relative ${rel.toExponential(2)} > ${LOSS_RTOL}`);
    ok(Math.abs(unmasked.first - want.first) > 1e-3 * Math.abs(want.first), `the masks change the loss (${unmasked.first} vs ${want.first})`);
    const d = meanDiff(got.px, want.r.rgba), dPlain = meanDiff(got.px, plain.r.rgba);
    console.log(`    masked + smoothed Gatys at 64 px: page vs Node mean |diff| ${d.toFixed(3)} of 255; vs Node unsmoothed ${dPlain.toFixed(2)}`);
    ok(d < FF_MEAN_TOL, `page vs Node (smoothed): mean |diff| ${d.toFixed(3)} > ${FF_MEAN_TOL}`);
    ok(dPlain > 2 * FF_MEAN_TOL, `smoothing changes the result (mean |diff| to the unsmoothed one ${dPlain.toFixed(2)})`);
  } finally {
    node.destroy();
  }
  await page.setInputFiles('#content-mask-file', []);
  await page.setInputFiles('#style-mask-file', []);
  await page.uncheck('#smooth');
});

test('pretrained path: range-request download into IndexedDB, then offline from the cache; matches Node', async () => {
  const url = `${served.url}weights/vgg19.safetensors`;
  await page.goto(`${served.url}?weights-url=${encodeURIComponent(url)}`);
  await waitState(page, ['ready'], 60_000);
  await page.setInputFiles('#content-file', contentFile);
  await page.setInputFiles('#style-file', styleFile);
  await page.waitForFunction(() => /tubingen/.test(document.getElementById('content-meta')!.textContent ?? '') &&
    /starry_night/.test(document.getElementById('style-meta')!.textContent ?? ''));
  await setOptions(page, { ...RUN_OPTIONS, iters: '2' }, 'pretrained');
  await page.click('#start');
  let state = await waitState(page, ['done', 'stopped', 'error'], 300_000);
  let v = await view(page);
  ok(state === 'done', `online run: ${state} ${v.error ?? ''}`);
  ok(served.rangeRequests >= 3, `weights fetched with range requests (${served.rangeRequests})`);
  const online = v.evaluations[0].total;
  const files = new Map([[join(outDir, 'w.safetensors'), { name: 'w', size: weightsBytes.length, read: async (b: number, e: number) => weightsBytes.subarray(b, e) }]]);
  const want = await nodeInitialLoss(images.content, images.style, [...files.keys()][0], files);
  const rel = Math.abs(online - want) / Math.abs(want);
  ok(rel <= LOSS_RTOL, `initial loss with the downloaded weights ${online} vs Node ${want}: relative ${rel.toExponential(2)}`);

  served.weightsOnline = false;
  const before = served.weightRequests;
  await page.reload();
  await waitState(page, ['ready'], 60_000);
  await page.waitForFunction(() => /tubingen/.test(document.getElementById('content-meta')!.textContent ?? '') &&
    /starry_night/.test(document.getElementById('style-meta')!.textContent ?? ''));
  await setOptions(page, { ...RUN_OPTIONS, iters: '2' }, 'pretrained');
  await page.click('#start');
  state = await waitState(page, ['done', 'stopped', 'error'], 300_000);
  v = await view(page);
  ok(state === 'done', `offline run from the IndexedDB cache: ${state} ${v.error ?? ''}`);
  ok(served.weightRequests === before, `no weight requests while offline (${served.weightRequests - before})`);
  // Same weights, same loss: within float32 summation order only (kernel variants tuned during the first visit may
  // already serve shapes that ran on the defaults then, e.g. the targets); a wrong or partial weight file moves the
  // loss by orders of magnitude more.
  const relCache = Math.abs(v.evaluations[0].total - online) / Math.abs(online);
  ok(relCache <= 1e-6, `same initial loss from the cache: ${v.evaluations[0].total} vs ${online} (relative ${relCache.toExponential(2)})`);
});

test('a local .safetensors file can be chosen as the weights', async () => {
  await mkdir(outDir, { recursive: true });
  const path = join(outDir, 'vgg19-test.safetensors');
  await writeFile(path, weightsBytes);
  await setOptions(page, { ...RUN_OPTIONS, iters: '1' }, 'file');
  await page.setInputFiles('#weights-file', path);
  await page.click('#start');
  const state = await waitState(page, ['done', 'stopped', 'error'], 300_000);
  const v = await view(page);
  ok(state === 'done', `run with a chosen file: ${state} ${v.error ?? ''}`);
  const cached = await page.evaluate(() => (window as unknown as { painterlyPage: PageView }).painterlyPage.evaluations[0].total);
  ok(Number.isFinite(cached), 'a finite loss');
  const log = (await page.textContent('#log')) ?? '';
  ok(!/error/i.test(log.split('\n').filter((l) => !/GPU error: .*deprecat/i.test(l)).join('\n')), `no errors logged: ${log}`);
});

test('PNG files (decoded by the browser) give the same pixels as decodeImage in Node', async () => {
  const png = join(outDir, 'small.png');
  const img = fitLongestSide(images.content, 40);
  await writeFile(png, encodeImage(img, 'png'));
  await page.setInputFiles('#content-file', png);
  await page.waitForFunction(() => /small\.png: 40×30/.test(document.getElementById('content-meta')!.textContent ?? ''), undefined, { timeout: 10_000 });
  const got = await page.evaluate(() => Array.from((window as unknown as { painterlyPage: { images: { content: { data: Float32Array } } } }).painterlyPage.images.content.data));
  const want = decodeImage(new Uint8Array(await readFile(png)), png).data;
  ok(got.length === want.length && got.every((x, i) => x === want[i]), 'same pixels as decodeImage in Node');
});

test('without WebGPU the page says so plainly', async () => {
  const ctx = await browser.newContext();
  const p2 = await ctx.newPage();
  await p2.addInitScript(() => { Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined }); });
  await p2.goto(served.url);
  const state = await waitState(p2, ['unsupported', 'ready', 'error'], 30_000);
  const text = (await p2.textContent('#gpu-status')) ?? '';
  ok(state === 'unsupported', `state ${state}`);
  ok(/does not have WebGPU/.test(text) && /Chrome/.test(text) && /Firefox/.test(text) && /Safari/.test(text), `message: ${text}`);
  ok(await p2.isDisabled('#start'), 'Start is disabled');
  await ctx.close();
});

// ---- feed-forward methods (WCT, AdaIN) with the real wct-16x networks ---------------------------------------

interface FFView {
  state: string; error?: string; method?: string; levels: number[]; model?: string; ms: number; alphaRuns: number; alpha: number;
  alphaMode?: string; counters: { styleEncodes: number; contentEncodes: number; decodes: number }; webcamFrames: number; webcamFps: number; modelRequests: number;
}
const ffView = (p: Page): Promise<FFView> => p.evaluate(() => {
  const pg = (window as unknown as { painterlyPage: { state: string; error?: string; ff: FFView } }).painterlyPage;
  return JSON.parse(JSON.stringify({ ...pg.ff, state: pg.state, error: pg.error })) as FFView;
});

const meanDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let d = 0;
  for (let i = 0; i < a.length; i++) d += Math.abs(a[i] - b[i]);
  return d / a.length;
};

async function ffRun(p: Page, o: { method: 'wct' | 'adain'; size: string; levels?: string; alpha?: string }): Promise<FFView> {
  await p.selectOption('#method', o.method);
  await p.fill('#size', o.size);
  await p.fill('#levels', o.levels ?? '');
  if (o.alpha !== undefined) await setAlpha(p, o.alpha, false);
  await p.click('#start');
  const state = await waitState(p, ['done', 'error'], 300_000);
  const v = await ffView(p);
  ok(state === 'done', `${o.method} run ended in state ${state}: ${v.error ?? ''}`);
  return v;
}

/** Moves the α slider the way a user does (an input event); with `wait`, until the re-decode is shown. */
async function setAlpha(p: Page, alpha: string, wait = true): Promise<void> {
  const before = (await ffView(p)).alphaRuns;
  await p.$eval('#alpha', (e, a) => { (e as HTMLInputElement).value = a; e.dispatchEvent(new Event('input', { bubbles: true })); }, alpha);
  if (!wait) return;
  await p.waitForFunction((n) => {
    const pg = (window as unknown as { painterlyPage: { state: string; ff: { alphaRuns: number } } }).painterlyPage;
    return pg.ff.alphaRuns > n && pg.state !== 'running';
  }, before, { timeout: 120_000, polling: 100 });
}

let wctPixels: number[] = [];
const ffTimes: string[] = [];

test('WCT, wct-16x downloaded once into IndexedDB: the result in one pass at 128 px, as in Node', async () => {
  served.modelRequests = 0;
  await page.goto(`${served.url}?model-url=${encodeURIComponent(`${served.url}models`)}`);
  await waitState(page, ['ready'], 60_000);
  await page.waitForFunction(() => /tubingen/.test(document.getElementById('content-meta')!.textContent ?? '') &&
    /starry_night/.test(document.getElementById('style-meta')!.textContent ?? ''));
  ok(await page.isVisible('#iters') && await page.isHidden('#alpha'), 'Gatys: its fields shown, no α slider');
  const v = await ffRun(page, { method: 'wct', size: '128' });
  ffTimes.push(`WCT 5 levels at 128 px with the download: ${v.ms.toFixed(0)} ms`);
  ok(await page.isHidden('#iters') && await page.isVisible('#alpha'), 'Gatys fields hidden, the α slider shown');
  ok(v.method === 'wct' && v.levels.join(',') === '5,4,3,2,1', `WCT over levels ${v.levels}`);
  ok(v.alpha === 0.6, `WCT's default α 0.6, got ${v.alpha}`);
  ok(v.counters.styleEncodes === 1 && v.counters.contentEncodes === 5 && v.counters.decodes === 5, `one style, five levels: ${JSON.stringify(v.counters)}`);
  ok(served.modelRequests === 10 && v.modelRequests === 10, `the ten model files downloaded once (${served.modelRequests} requests)`);
  const got = await previewPixels(page);
  ok(got.w === 128 && got.h === 96, `result 128x96, got ${got.w}x${got.h}`);
  const content = fitLongestSide(images.content, 128);
  const toContent = meanDiff(got.px, toRgba(content));
  ok(toContent > 15, `the result is not the content (mean |diff| ${toContent.toFixed(1)})`);
  const node = await createPainterly({});
  try {
    const r = await node.stylize({ content: images.content, style: images.style, method: 'wct', model: WCT16X, size: 128, alpha: 0.6 });
    const d = meanDiff(got.px, r.rgba);
    console.log(`    WCT at 128 px: page vs Node mean |diff| ${d.toFixed(3)} of 255; vs the content ${toContent.toFixed(1)}`);
    ok(d < FF_MEAN_TOL, `page's WCT vs Node's: mean |diff| ${d.toFixed(3)} > ${FF_MEAN_TOL}`);
  } finally {
    node.destroy();
  }
  wctPixels = got.px;
  await mkdir(outDir, { recursive: true });
  await page.screenshot({ path: join(outDir, 'screenshot-web-wct.png'), fullPage: true });
});

test('α slider, five levels: the chain runs again with the same encoded style', async () => {
  const before = await ffView(page);
  await setAlpha(page, '1');
  const v = await ffView(page);
  ffTimes.push(`α re-run of 5 levels at 128 px: ${v.ms.toFixed(0)} ms`);
  ok(v.state === 'done' && v.alpha === 1 && v.alphaMode === 'chain', `state ${v.state}, α ${v.alpha}, mode ${v.alphaMode}`);
  ok(v.counters.styleEncodes === before.counters.styleEncodes, `no style encoding: ${JSON.stringify(v.counters)}`);
  ok(v.counters.contentEncodes === before.counters.contentEncodes + 5, 'each level encoded again (α changes every level\'s input)');
  const d = meanDiff((await previewPixels(page)).px, wctPixels);
  ok(d > 1, `the image changed with α (mean |diff| ${d.toFixed(2)})`);
});

test('α slider, one level: re-decodes from the cached content features, nothing encoded', async () => {
  await ffRun(page, { method: 'wct', size: '128', levels: '4', alpha: '0.8' });
  const first = await previewPixels(page);
  const before = await ffView(page);
  ok(before.alphaMode === 'cached features', `mode ${before.alphaMode}`);
  await setAlpha(page, '0.3');
  const v = await ffView(page);
  ffTimes.push(`α re-decode of level 4 at 128 px: ${v.ms.toFixed(0)} ms (the first run: ${before.ms.toFixed(0)} ms)`);
  ok(v.counters.styleEncodes === before.counters.styleEncodes && v.counters.contentEncodes === before.counters.contentEncodes,
    `nothing encoded: ${JSON.stringify(before.counters)} -> ${JSON.stringify(v.counters)}`);
  ok(v.counters.decodes === before.counters.decodes + 1, 'one decode');
  const d = meanDiff((await previewPixels(page)).px, first.px);
  ok(d > 1, `the image changed with α (mean |diff| ${d.toFixed(2)})`);
});

test('AdaIN with the model from a picked folder (webkitdirectory)', async () => {
  const requests = served.modelRequests;
  await page.check('input[name=ff-model][value=folder]');
  await page.setInputFiles('#ff-folder', WCT16X);
  await page.waitForFunction(() => /wct-16x in the folder/.test(document.getElementById('ff-meta')!.textContent ?? ''), undefined, { timeout: 10_000 });
  const v = await ffRun(page, { method: 'adain', size: '128' });
  ffTimes.push(`AdaIN 5 levels at 128 px (model from the folder): ${v.ms.toFixed(0)} ms`);
  ok(/folder/.test(v.model ?? '') && v.method === 'adain' && v.alpha === 1, `AdaIN from the folder: ${v.model}, α ${v.alpha}`);
  ok(served.modelRequests === requests, 'nothing downloaded');
  const got = await previewPixels(page);
  ok(got.w === 128 && got.h === 96, `result 128x96, got ${got.w}x${got.h}`);
  const toContent = meanDiff(got.px, toRgba(fitLongestSide(images.content, 128)));
  const toWct = meanDiff(got.px, wctPixels);
  ok(toContent > 15 && toWct > 3, `AdaIN differs from the content (${toContent.toFixed(1)}) and from WCT (${toWct.toFixed(1)})`);
  const node = await createPainterly({});
  try {
    const r = await node.stylize({ content: images.content, style: images.style, method: 'adain', model: WCT16X, size: 128 });
    const d = meanDiff(got.px, r.rgba);
    console.log(`    AdaIN at 128 px: page vs Node mean |diff| ${d.toFixed(3)} of 255`);
    ok(d < FF_MEAN_TOL, `page's AdaIN vs Node's: mean |diff| ${d.toFixed(3)} > ${FF_MEAN_TOL}`);
  } finally {
    node.destroy();
  }
});

test('webcam (Chromium\'s fake camera): frames stylised live with the style encoded once; Stop stops', async () => {
  await page.fill('#webcam-size', '64');
  await page.fill('#levels', '');
  await page.click('#webcam');
  await page.waitForFunction(() => (window as unknown as { painterlyPage: { ff: { webcamFrames: number }; state: string } }).painterlyPage.ff.webcamFrames >= 1 ||
    document.body.dataset.state === 'error', undefined, { timeout: 120_000, polling: 100 });
  const one = await ffView(page);
  ok(one.state === 'webcam', `webcam running: ${one.state} ${one.error ?? ''}`);
  await page.waitForFunction(() => (window as unknown as { painterlyPage: { ff: { webcamFrames: number } } }).painterlyPage.ff.webcamFrames >= 4,
    undefined, { timeout: 120_000, polling: 100 });
  const four = await ffView(page);
  ok(four.counters.styleEncodes === one.counters.styleEncodes, `no style encoding between frames: ${one.counters.styleEncodes} -> ${four.counters.styleEncodes}`);
  ok(four.counters.contentEncodes >= one.counters.contentEncodes + 15, `every frame encoded at 5 levels: ${one.counters.contentEncodes} -> ${four.counters.contentEncodes}`);
  const frame = await previewPixels(page);
  ok(frame.w === 64 && frame.h === 48, `frames at 64 px: ${frame.w}x${frame.h}`);
  ffTimes.push(`webcam, AdaIN 5 levels at 64x48: ${four.webcamFps.toFixed(2)} frames/s`);
  await page.click('#webcam');
  const state = await waitState(page, ['done', 'ready', 'error'], 60_000);
  ok(state === 'done', `after Stop webcam: ${state}`);
  const n = (await ffView(page)).webcamFrames;
  await new Promise((r) => setTimeout(r, 1000));
  ok((await ffView(page)).webcamFrames === n, 'no frames after Stop');
  ok(await page.isHidden('#webcam-video'), 'the camera view is hidden again');
});

test('WCT with smoothing: the guided filter changes the result, as in Node', async () => {
  await ffRun(page, { method: 'wct', size: '128', levels: '', alpha: '0.6' });
  const plain = await previewPixels(page);
  await page.check('#smooth');
  const v = await ffRun(page, { method: 'wct', size: '128', levels: '' });
  const got = await previewPixels(page);
  ok(got.w === 128 && got.h === 96, `result 128x96, got ${got.w}x${got.h}`);
  const toPlain = meanDiff(got.px, plain.px);
  ok(toPlain > 2 * FF_MEAN_TOL, `smoothing changes the result (mean |diff| ${toPlain.toFixed(2)})`);
  const node = await createPainterly({});
  try {
    const r = await node.stylize({ content: images.content, style: images.style, method: 'wct', model: WCT16X, size: 128, alpha: 0.6, smooth: true });
    const d = meanDiff(got.px, r.rgba);
    console.log(`    WCT + smoothing at 128 px: page vs Node mean |diff| ${d.toFixed(3)} of 255; vs unsmoothed ${toPlain.toFixed(2)} (${v.ms.toFixed(0)} ms)`);
    ok(d < FF_MEAN_TOL, `page's smoothed WCT vs Node's: mean |diff| ${d.toFixed(3)} > ${FF_MEAN_TOL}`);
  } finally {
    node.destroy();
    await page.uncheck('#smooth');
  }
});

test('second visit offline: wct-16x from IndexedDB (hashes checked), no requests', async () => {
  served.modelsOnline = false;
  const before = served.modelRequests;
  await page.reload();
  await waitState(page, ['ready'], 60_000);
  await page.waitForFunction(() => /tubingen/.test(document.getElementById('content-meta')!.textContent ?? '') &&
    /starry_night/.test(document.getElementById('style-meta')!.textContent ?? ''));
  const v = await ffRun(page, { method: 'wct', size: '96', levels: '5' });
  ok(served.modelRequests === before && v.modelRequests === 0, `no model requests while offline (${served.modelRequests - before})`);
  ok(/IndexedDB/.test(v.model ?? ''), `model from ${v.model}`);
  served.modelsOnline = true;
  console.log(`    ${ffTimes.join('\n    ')}`);
  if (updateScreenshot) {
    // The README's picture: WCT over five levels at 256 px (only when updating: it is slow on SwiftShader).
    await ffRun(page, { method: 'wct', size: '256', levels: '' });
    await page.screenshot({ path: join(root, 'docs', 'screenshot-web-wct.png'), fullPage: true });
  }
});

// ---- main ---------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const t0 = performance.now();
  await buildWeb(webDir);
  for (const [k, f] of [['content', contentFile], ['style', styleFile]]) images[k] = decodeImage(new Uint8Array(await readFile(f)), f);
  served = await serve(weightsBytes);
  browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true,
    // WebGPU on SwiftShader's Vulkan in headless Chromium, no GPU needed.
    args: ['--enable-unsafe-webgpu', '--use-angle=swiftshader', '--enable-features=Vulkan', '--use-vulkan=swiftshader', '--no-sandbox',
      // A fake camera (a moving test pattern) that needs no permission prompt, for the webcam mode.
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'],
  });
  const ctx = await browser.newContext({ acceptDownloads: true, viewport: { width: 1200, height: 900 } });
  page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  await page.goto(served.url);
  let passed = 0, failed = 0;
  // --only=REGEX: the first test (the page starts) and those whose names match (for development).
  const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
  for (const t of tests.filter((t, i) => !only || i === 0 || new RegExp(only).test(t.name))) {
    const s = performance.now();
    try {
      await t.fn();
      passed++;
      console.log(`  ✔ ${t.name} (${((performance.now() - s) / 1000).toFixed(1)} s)`);
    } catch (e) {
      failed++;
      console.log(`  ✘ ${t.name}\n      ${String((e as Error)?.message ?? e).split('\n').join('\n      ')}`);
    }
  }
  if (consoleErrors.length) console.log(`  browser console errors:\n    ${consoleErrors.join('\n    ')}`);
  await browser.close();
  served.server.close();
  console.log(`\n  Total:     ${passed + failed}\n  Duration:  ${((performance.now() - t0) / 1000).toFixed(1)}s`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  console.log('0 passed, 1 failed');
  process.exit(1);
});
