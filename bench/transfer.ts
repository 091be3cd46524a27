// npm run bench:transfer — milliseconds per image of feed-forward style transfer with the wct-16x networks: WCT
// (levels 5..1, α 0.6) and AdaIN (the model's default levels, α 1) on the content photograph resized to exactly
// N×N, the style encoded once beforehand (its time reported apart). The same networks and transforms run in PyTorch
// on the CPU side by side (bench/torch_transfer.py, 2 threads), on exactly the same input pixels, and the two results
// at --psnr-size are compared (PSNR over [0,1]-clamped images): an end-to-end check against an independent
// implementation.
// Flags: --model DIR  --sizes 512,1024  --runs 3  --content FILE  --style FILE  --style-size 512  --psnr-size 512
//        --openblas DIR (also run the reference with that OpenBLAS: LD_LIBRARY_PATH=DIR and OPENBLAS_NUM_THREADS for
//        that process only; the folder is the unpacked libopenblas0-pthread's usr/lib/x86_64-linux-gnu/openblas-pthread)
//        --also-reference-blas (with --openblas: run the reference on Debian's default BLAS too)
//        --torch-threads 2  --no-torch  --json FILE  --keep (keep the raw inputs and outputs in the temp folder)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { openDawnGpu } from '../src/gpu/dawn.ts';
import type { RgbImage } from '../src/image/image.ts';
import { readImage } from '../src/image/node-io.ts';
import { fitLongestSide, resize } from '../src/image/resize.ts';
import { encodeStyle, stylizeFeedForward, type FeedForwardMethod } from '../src/style/feedforward.ts';
import { loadFeedForwardModel } from '../src/style/ff-load.ts';
import { DEFAULT_ALPHA } from '../src/style/options.ts';
import { table } from './harness.ts';

const args = process.argv.slice(2);
const flag = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : def;
};
const modelDir = flag('model', '../shared/models/wct-16x');
const sizes = flag('sizes', '512,1024').split(',').map(Number);
const runs = Number(flag('runs', '3'));
const contentPath = flag('content', 'examples/tubingen.jpg');
const stylePath = flag('style', 'examples/starry_night.jpg');
const styleSize = Number(flag('style-size', '512'));
const psnrSize = Number(flag('psnr-size', String(sizes.includes(512) ? 512 : sizes[0])));
const openblas = args.includes('--openblas') ? resolve(flag('openblas', '')) : undefined;
const jsonPath = flag('json', 'bench/results/transfer.json');
const withTorch = !args.includes('--no-torch');
const torchThreads = Number(flag('torch-threads', '2'));
if (sizes.some((s) => !Number.isInteger(s) || s < 16) || !(runs >= 1)) throw new Error('--sizes: integers >= 16; --runs: >= 1');
if (openblas && !existsSync(join(openblas, 'libblas.so.3'))) {
  throw new Error(`--openblas ${openblas}: no libblas.so.3 there (expected the unpacked libopenblas0-pthread's usr/lib/x86_64-linux-gnu/openblas-pthread)`);
}

const METHODS: FeedForwardMethod[] = ['wct', 'adain'];

/** Raw float32 planar [3,H,W], what the python side reads. */
const writeRaw = (path: string, img: RgbImage) => writeFileSync(path, Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength));
const clamp01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);

/** PSNR (dB, peak 1) and the largest difference between two images after clamping to [0, 1]. */
function compare(a: Float32Array, b: Float32Array): { psnr: number; maxAbs: number } {
  if (a.length !== b.length) throw new Error(`compare: ${a.length} vs ${b.length} values`);
  let se = 0;
  let maxAbs = 0;
  for (let i = 0; i < a.length; i++) {
    const d = clamp01(a[i]) - clamp01(b[i]);
    se += d * d;
    maxAbs = Math.max(maxAbs, Math.abs(d));
  }
  const mse = se / a.length;
  return { psnr: mse > 0 ? 10 * Math.log10(1 / mse) : Infinity, maxAbs };
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];

// Same pixels on both sides: decode and resize here, hand the python process raw float32.
const work = mkdtempSync(join(tmpdir(), 'painterly-bench-transfer-'));
const contentFull = await readImage(contentPath);
const contents = new Map(sizes.map((s) => [s, resize(contentFull, s, s)] as const));
const style = fitLongestSide(await readImage(stylePath), styleSize);
for (const [s, img] of contents) writeRaw(join(work, `content_${s}.f32`), img);
writeRaw(join(work, 'style.f32'), style);
writeFileSync(join(work, 'meta.json'), JSON.stringify({ style: [style.height, style.width] }));

interface TorchRun { blas: string; blasLibs: string[]; threads: number; ms: Map<string, number>; styleMs: Record<string, number>; out: string }

/** Runs the reference once (before the GPU work, so the two never share the cores). */
function torchRun(label: string, env: NodeJS.ProcessEnv): TorchRun | undefined {
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3'; // Debian's python3-torch lives there
  const out = join(work, label);
  console.log(`running the PyTorch reference (${label}) ...`);
  mkdirSync(out, { recursive: true });
  const r = spawnSync(python, ['bench/torch_transfer.py', '--model', modelDir, '--inputs', work, '--out', out, '--sizes', sizes.join(','),
    '--runs', String(runs), '--threads', String(torchThreads), '--alpha-wct', String(DEFAULT_ALPHA.wct), '--alpha-adain', String(DEFAULT_ALPHA.adain),
    '--save-size', String(psnrSize)], { encoding: 'utf8', env, maxBuffer: 1 << 24 });
  if (r.status !== 0) {
    console.error(`(PyTorch reference, ${label}, skipped: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()})`);
    return undefined;
  }
  const run: TorchRun = { blas: '?', blasLibs: [], threads: 0, ms: new Map(), styleMs: {}, out };
  for (const line of r.stdout.trim().split('\n')) {
    const m = JSON.parse(line);
    if (m.styleMs) { run.styleMs = m.styleMs; continue; }
    run.ms.set(`${m.method}|${m.size}`, m.ms);
    run.blas = m.blas;
    run.blasLibs = m.blasLibs;
    run.threads = m.threads;
  }
  return run;
}

const torchRuns: TorchRun[] = [];
if (withTorch) {
  // With --openblas the reference runs on OpenBLAS only (Debian's default reference BLAS makes torch several times
  // slower: minutes per 1024² image on 2 shared cores); --also-reference-blas adds a run on the default BLAS.
  if (!openblas || args.includes('--also-reference-blas')) {
    const plain = torchRun('default-blas', { ...process.env });
    if (plain) torchRuns.push(plain);
  }
  if (openblas) {
    const ob = torchRun('openblas', { ...process.env, LD_LIBRARY_PATH: [openblas, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'), OPENBLAS_NUM_THREADS: String(torchThreads) });
    if (ob) torchRuns.push(ob);
  }
  for (const t of torchRuns) {
    console.log(`PyTorch reference: ${t.blas} (${t.blasLibs.join(', ') || 'no BLAS library mapped'}), ${t.threads} threads: ` +
      [...t.ms].map(([k, ms]) => `${k.replace('|', ' ')} ${ms.toFixed(0)} ms`).join(', ') + `; style encoding ${JSON.stringify(t.styleMs)}`);
  }
}

const gpu = await openDawnGpu();
console.log(`adapter: ${gpu.describe()}; storage binding limit ${(gpu.maxBindingBytes / 2 ** 20).toFixed(0)} MiB`);
let model = await loadFeedForwardModel(gpu, modelDir);
let plannedSize: number | undefined;
const rows: (string | number)[][] = [];
const results: Record<string, unknown>[] = [];
const styleRows: (string | number)[][] = [];
const agreement: Record<string, unknown>[] = [];
for (const method of METHODS) {
  const levels = method === 'wct' ? [5, 4, 3, 2, 1] : model.spec.defaultLevels.adain;
  const alpha = DEFAULT_ALPHA[method];
  await encodeStyle(gpu, model, method, [style], [1], levels); // warm-up: pipeline compilation
  const styleTimes: number[] = [];
  let encoded = await encodeStyle(gpu, model, method, [style], [1], levels);
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    encoded = await encodeStyle(gpu, model, method, [style], [1], levels);
    styleTimes.push(performance.now() - t0);
  }
  styleRows.push([method, `${style.width}x${style.height}`, median(styleTimes).toFixed(0), ...torchRuns.map((t) => (t.styleMs[method] ?? NaN).toFixed(0))]);
  for (const size of sizes) {
    // The model caches a plan (every activation buffer) per network and size: drop the previous size's before this
    // one (the 1024² plans of all ten networks take gigabytes), by reloading the model (its files are small).
    if (plannedSize !== undefined && plannedSize !== size) { model.destroy(); model = await loadFeedForwardModel(gpu, modelDir); }
    plannedSize = size;
    const content = contents.get(size)!;
    let out: RgbImage;
    try {
      out = await stylizeFeedForward(gpu, model, content, encoded, { alpha }); // warm-up: lavapipe compiles at first dispatch
    } catch (e) {
      console.log(`${method} ${size}: skipped (${(e as Error).message})`);
      continue;
    }
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      out = await stylizeFeedForward(gpu, model, content, encoded, { alpha });
      times.push(performance.now() - t0);
    }
    const ms = median(times);
    console.log(`Painterly ${method} ${size}: ${ms.toFixed(0)} ms (runs ${times.map((t) => t.toFixed(0)).join(', ')})`);
    const ref = torchRuns.map((t) => t.ms.get(`${method}|${size}`));
    rows.push([method, `${levels.join(',')}`, alpha, size, ms.toFixed(0), ...ref.flatMap((r) => [r ? r.toFixed(0) : '-', r ? (r / ms).toFixed(2) : '-'])]);
    results.push({ method, levels, alpha, size, ms, runs, torch: torchRuns.map((t, i) => ({ blas: t.blas, threads: t.threads, ms: ref[i], ratio: ref[i] ? ref[i]! / ms : undefined })) });
    if (size === psnrSize) {
      writeRaw(join(work, `painterly_${method}_${size}.f32`), out);
      for (const t of torchRuns) {
        const f = join(t.out, `torch_${method}_${size}.f32`);
        if (!existsSync(f)) continue;
        const theirs = new Float32Array(new Uint8Array(readFileSync(f)).buffer);
        const c = compare(out.data, theirs);
        agreement.push({ method, size, blas: t.blas, ...c });
      }
    }
  }
}

const torchHeader = torchRuns.flatMap((t) => [`torch ms (${t.blas})`, 'torch/ours']);
console.log('');
console.log(table(['method', 'levels', 'alpha', 'size', 'Painterly ms', ...torchHeader], rows));
console.log('ms per image, median of ' + runs + ' runs after a warm-up, style encoded beforehand; torch/ours > 1 means Painterly is faster.');
console.log(`PyTorch on the CPU with ${torchRuns[0]?.threads ?? torchThreads} threads; WCT's statistics and eigen-decompositions in float64 on the CPU on both sides.`);
console.log('');
console.log(table(['style encoding', 'style size', 'Painterly ms', ...torchRuns.map((t) => `torch ms (${t.blas})`)], styleRows));
for (const a of agreement) {
  console.log(`agreement with PyTorch (${a.blas}) at ${a.size}x${a.size}, ${a.method}: PSNR ${(a.psnr as number).toFixed(1)} dB, ` +
    `largest difference ${(a.maxAbs as number).toFixed(4)} (images clamped to [0,1])`);
}
mkdirSync(dirname(jsonPath), { recursive: true });
writeFileSync(jsonPath, JSON.stringify({
  adapter: gpu.describe(), date: new Date().toISOString(), model: modelDir, style: [style.width, style.height], results,
  styleEncodingMs: Object.fromEntries(styleRows.map((r) => [r[0], { painterly: Number(r[2]), torch: r.slice(3).map(Number) }])),
  torch: torchRuns.map((t) => ({ blas: t.blas, libs: t.blasLibs, threads: t.threads })), agreement,
}, null, 1));
console.log(`wrote ${jsonPath}`);
if (!args.includes('--keep')) rmSync(work, { recursive: true, force: true });
else console.log(`inputs and outputs kept in ${work}`);
model.destroy();
gpu.destroy();
process.exit(0);
