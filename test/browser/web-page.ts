// End-to-end test of the web page in Debian's Chromium (WebGPU on SwiftShader), driven by playwright-core.
// Builds the page, serves it on 127.0.0.1 (random port), runs the page the way a user would, and checks its numbers
// against the library running in this Node process (Dawn). Run: npm run test:browser [-- --update-screenshot]
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

interface Served { server: Server; url: string; weightsOnline: boolean; rangeRequests: number; weightRequests: number }

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
  const s: Served = { server: undefined as unknown as Server, url: '', weightsOnline: true, rangeRequests: 0, weightRequests: 0 };
  s.server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
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
  ok(v.evaluations[0].total === online, `same initial loss from the cache: ${v.evaluations[0].total} vs ${online}`);
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

// ---- main ---------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const t0 = performance.now();
  await buildWeb(webDir);
  for (const [k, f] of [['content', contentFile], ['style', styleFile]]) images[k] = decodeImage(new Uint8Array(await readFile(f)), f);
  served = await serve(weightsBytes);
  browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true,
    // WebGPU on SwiftShader's Vulkan in headless Chromium, no GPU needed.
    args: ['--enable-unsafe-webgpu', '--use-angle=swiftshader', '--enable-features=Vulkan', '--use-vulkan=swiftshader', '--no-sandbox'],
  });
  const ctx = await browser.newContext({ acceptDownloads: true, viewport: { width: 1200, height: 900 } });
  page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  await page.goto(served.url);
  let passed = 0, failed = 0;
  for (const t of tests) {
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
  console.log(`\n  Total:     ${tests.length}\n  Duration:  ${((performance.now() - t0) / 1000).toFixed(1)}s`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  console.log('0 passed, 1 failed');
  process.exit(1);
});
