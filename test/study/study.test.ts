// A tiny study end to end (random weights, 32 px, 2 iterations, two experiments): every run's files, the plots'
// curves, the page's references, resumability, determinism on this adapter, and the page in headless Chromium.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Gpu } from '../../src/gpu/device.ts';
import { decodeImage } from '../../src/image/codec.ts';
import { readImage, writeImage } from '../../src/image/node-io.ts';
import { Painterly } from '../../src/painterly.ts';
import { parseExperimentList } from '../../src/study/experiments.ts';
import { EXPERIMENT_FILES, RUN_DONE, RUN_IMAGE, RUN_LOG, runStudy, type RunRecord, type StudyInput } from '../../src/study/run.ts';
import { nextSeed, rng, testGpu } from '../helpers.ts';

const test = suite('study');
const dir = mkdtempSync(join(tmpdir(), 'painterly-study-'));
const out = join(dir, 'study');
let painterly: Painterly;
let input: StudyInput;

function randomImage(w: number, h: number, seed: number) {
  const r = rng(seed);
  const img = { width: w, height: h, data: new Float32Array(3 * w * h) };
  // Smooth blobs plus noise, so the VGG features are not all alike.
  for (let c = 0; c < 3; c++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    img.data[(c * h + y) * w + x] = 0.5 + 0.3 * Math.sin((x + 7 * c) / (3 + c)) * Math.cos(y / 4) + 0.2 * (r() - 0.5);
  }
  return img;
}

test.before(async () => {
  const shared = await testGpu();
  // A Gpu that does not own the test device, so painterly.destroy() frees the network but leaves the device.
  painterly = new Painterly(await Gpu.open(undefined, null, { device: shared.device }), { readImage });
  await writeImage(join(dir, 'content.png'), randomImage(45, 37, nextSeed()));
  await writeImage(join(dir, 'style.png'), randomImage(40, 40, nextSeed()));
  const base = { size: 32, iters: 2, weights: 'random:1', seed: nextSeed() % 1000 };
  input = { content: join(dir, 'content.png'), style: [join(dir, 'style.png')], out, base, experiments: parseExperimentList('optimizer,pooling', base) };
});

test.after(() => {
  painterly?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

const runDirs = () => input.experiments.flatMap((e) => e.runs.map((r) => join(out, e.name, r.id)));

test('runs every experiment: images, logs, records; plots with one curve per run; a page that references it all', async () => {
  const lines: string[] = [];
  const s = await runStudy(painterly, input, { onProgress: (p) => lines.push(`${p.index}/${p.total} ${p.experiment}/${p.run} ${p.state}`) });
  // pooling/avg has the base settings, as optimizer/lbfgs does: it is copied, not run again.
  assert.equal([s.ran, s.shared, s.skipped], [4, 1, 0]);
  assert.ok(lines.includes('5/5 pooling/avg shared'), lines.join('\n'));
  assert.is(JSON.parse(readFileSync(join(out, 'pooling', 'avg', RUN_DONE), 'utf8')).sameAs, 'optimizer/lbfgs');
  assert.ok(lines.includes('1/5 optimizer/lbfgs start') && lines.includes('4/5 pooling/max done'), lines.join('\n'));
  assert.ok(lines.some((l) => l.endsWith('progress')));
  for (const d of runDirs()) {
    const img = decodeImage(readFileSync(join(d, RUN_IMAGE)), d);
    assert.equal([img.width, img.height], [32, 26], d);
    const rec = JSON.parse(readFileSync(join(d, RUN_DONE), 'utf8')) as RunRecord;
    assert.match(rec.weights, /random/);
    assert.is(rec.adapter, painterly.gpu.describe());
    assert.is(rec.iterations, 2);
    assert.ok(Number.isFinite(rec.terms!.total) && rec.seconds > 0 && rec.wallSeconds >= rec.seconds);
    const log = readFileSync(join(d, RUN_LOG), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(log.length >= 3, `${d}: ${log.length} evaluations`);
    assert.is(log[log.length - 1].total, rec.terms!.total);
  }
  // The runs differ where their settings do (the optimiser, the pooling).
  const bytes = (e: string, r: string) => readFileSync(join(out, e, r, RUN_IMAGE)).toString('base64');
  assert.not.equal(bytes('optimizer', 'lbfgs'), bytes('optimizer', 'adam'));
  assert.not.equal(bytes('pooling', 'max'), bytes('pooling', 'avg'));
  for (const e of input.experiments) {
    for (const f of [EXPERIMENT_FILES.iterSvg, EXPERIMENT_FILES.timeSvg]) {
      const svg = readFileSync(join(out, e.name, f), 'utf8');
      const curves = [...svg.matchAll(/<polyline\b[^>]*points="([^"]+)"/g)];
      assert.is(curves.length, e.runs.length, `${e.name}/${f}: curves`);
      // iterations 0, 1, 2: three points per curve
      for (const c of curves) assert.is(c[1].trim().split(/\s+/).length, 3, `${e.name}/${f}: points per curve`);
    }
    for (const f of [EXPERIMENT_FILES.sheet, EXPERIMENT_FILES.iterPng, EXPERIMENT_FILES.timePng]) decodeImage(readFileSync(join(out, e.name, f)), f);
    const sheet = decodeImage(readFileSync(join(out, e.name, EXPERIMENT_FILES.sheet)), 'sheet');
    assert.is(sheet.width, 8 + (e.runs.length + 2) * (64 + 8), `${e.name}: content, style and one cell per run in a row`);
  }
  const html = readFileSync(join(out, 'index.html'), 'utf8');
  const refs = new Set([...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => decodeURIComponent(m[1])));
  for (const d of runDirs()) assert.ok(refs.has(d.slice(out.length + 1) + '/' + RUN_IMAGE), `page misses ${d}`);
  for (const e of input.experiments) for (const f of Object.values(EXPERIMENT_FILES)) assert.ok(refs.has(`${e.name}/${f}`), `page misses ${e.name}/${f}`);
  for (const r of refs) {
    assert.not.match(r, /^(https?:|\/\/|\/)/, `${r}: the page must open offline from its folder`);
    assert.ok(existsSync(join(out, r)), `the page links ${r}, which does not exist`);
  }
  assert.match(html, /NOT pretrained/);
  assert.ok(html.includes(painterly.gpu.describe().replace(/&/g, '&amp;')), 'the page names the adapter');
});

test('a second run does no work; a run whose settings changed runs again, and gives the same image (deterministic)', async () => {
  const stamp = runDirs().map((d) => statSync(join(d, RUN_DONE)).mtimeMs);
  const again = await runStudy(painterly, input);
  assert.equal([again.ran, again.shared, again.skipped], [0, 0, 5]);
  assert.equal(runDirs().map((d) => statSync(join(d, RUN_DONE)).mtimeMs), stamp, 'no record rewritten');
  // Make one record stale: it must run again, and same settings + seed on this adapter give the same pixels and losses.
  const d = join(out, 'optimizer', 'adam');
  const image = readFileSync(join(d, RUN_IMAGE));
  const losses = (p: string) => readFileSync(p, 'utf8').trim().split('\n').map((l) => JSON.parse(l).total);
  const before = losses(join(d, RUN_LOG));
  const rec = JSON.parse(readFileSync(join(d, RUN_DONE), 'utf8'));
  writeFileSync(join(d, RUN_DONE), JSON.stringify({ ...rec, key: 'stale' }));
  const messages: string[] = [];
  const third = await runStudy(painterly, input, { onMessage: (m) => messages.push(m) });
  assert.is(third.ran, 1);
  assert.ok(messages.some((m) => /optimizer\/adam: settings changed/.test(m)), messages.join('\n'));
  assert.ok(readFileSync(join(d, RUN_IMAGE)).equals(image), 'same image bytes');
  assert.equal(losses(join(d, RUN_LOG)), before, 'same losses');
  // A run without its image is not finished either.
  rmSync(join(out, 'pooling', 'max', RUN_IMAGE));
  assert.is((await runStudy(painterly, input)).ran, 1);
});

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

test('the page renders in headless Chromium (screenshot)', () => {
  if (!existsSync(CHROMIUM)) {
    console.warn(`study: ${CHROMIUM} not found; skipping the rendering check (set CHROMIUM)`);
    return;
  }
  const shot = join(dir, 'screenshot.png');
  const r = spawnSync(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', `--screenshot=${shot}`,
    '--window-size=1100,1400', pathToFileURL(resolve(out, 'index.html')).href], { encoding: 'utf8', timeout: 60_000 });
  assert.ok(existsSync(shot), `no screenshot: ${r.status} ${r.stderr?.slice(-400)}`);
  const img = decodeImage(readFileSync(shot), 'screenshot.png');
  assert.equal([img.width, img.height], [1100, 1400]);
  // Not blank: the page's images and text give many distinct colours.
  const n = img.width * img.height, colours = new Set<number>();
  for (let i = 0; i < n; i += 7) colours.add(Math.round(img.data[i] * 255) << 16 | Math.round(img.data[n + i] * 255) << 8 | Math.round(img.data[2 * n + i] * 255));
  assert.ok(colours.size > 200, `${colours.size} colours: is the page blank?`);
  if (process.env.PAINTERLY_STUDY_SCREENSHOT) writeFileSync(process.env.PAINTERLY_STUDY_SCREENSHOT, readFileSync(shot));
});

test.run();
