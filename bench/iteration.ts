// npm run bench:iteration — seconds per loss+gradient evaluation of the Gatys objective (full VGG19 up to relu5_1,
// default layers), split into forward, losses and backward, at several image sizes; with the same evaluation in
// PyTorch on the CPU measured side by side (bench/torch_iteration.py) when python3-torch is installed.
// Flags: --sizes 64,128,256,512  --runs N  --no-torch  --json FILE  --backbone vgg19|vgg19-16x (the PyTorch reference is VGG19's)
//        --openblas DIR (the reference on that OpenBLAS; see bench/transfer.ts)  --tune (kernel variants measured first)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { openDawnGpu } from '../src/gpu/dawn.ts';
import { configureTuning } from '../src/gpu/tune.ts';
import { createTensor, readTensor, uploadTensor, writeTensor } from '../src/gpu/tensor.ts';
import { createLbfgs } from '../src/optim/lbfgs.ts';
import { createNetwork, layerShapes, layersUpTo } from '../src/nets/executor.ts';
import { getBackbone } from '../src/nets/backbones.ts';
import { loadBackboneWeights } from '../src/weights/backbone-weights.ts';
import { GatysObjective, type LossConfig } from '../src/style/objective.ts';
import { contentTargets, styleTargets } from '../src/style/targets.ts';
import { table, timeSteps } from './harness.ts';

const args = process.argv.slice(2);
const flag = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const sizes = flag('sizes', '64,128,256,512').split(',').map(Number);
const runs = Number(flag('runs', '3'));
const jsonPath = flag('json', 'bench/results/iteration.json');
const backbone = getBackbone(flag('backbone', 'vgg19'));
const pooling = backbone.defaults.pooling;
const withTorch = !args.includes('--no-torch') && backbone.name === 'vgg19';
const openblas = args.includes('--openblas') ? resolve(flag('openblas', '')) : undefined;
if (openblas && !existsSync(join(openblas, 'libblas.so.3'))) throw new Error(`--openblas ${openblas}: no libblas.so.3 there (the unpacked libopenblas0-pthread's usr/lib/x86_64-linux-gnu/openblas-pthread)`);

const cfg: LossConfig = {
  contentLayers: ['relu4_2'], styleLayers: ['relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1'],
  styleLayerWeights: [0.2, 0.2, 0.2, 0.2, 0.2], contentWeight: 1, styleWeight: 1e3, tvWeight: 1, normalization: 'paper',
};

/** 2·Cin·Cout·k²·H·W summed over the convolutions up to relu5_1. */
function forwardConvFlops(h: number, w: number): number {
  const shapes = layerShapes(backbone.desc, h, w, 'relu5_1');
  let flops = 0;
  let cin = 3;
  for (const l of layersUpTo(backbone.desc, 'relu5_1')) {
    if (l.op !== 'conv') continue;
    const [c, H, W] = shapes.get(l.name)!;
    flops += 2 * cin * c * l.k * l.k * H * W;
    cin = c;
  }
  return flops;
}

function torchTimes(): Map<number, number> {
  const out = new Map<number, number>();
  if (!withTorch) return out;
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3'; // Debian's python3-torch lives there
  // --openblas DIR: the reference on that OpenBLAS (LD_LIBRARY_PATH and OPENBLAS_NUM_THREADS for its process only).
  const env = openblas ? { ...process.env, LD_LIBRARY_PATH: openblas, OPENBLAS_NUM_THREADS: String(cpus().length) } : process.env;
  console.log(`PyTorch reference BLAS: ${openblas ? `OpenBLAS from ${openblas}` : "Debian's default (the reference BLAS: slow; give --openblas DIR for a fair comparison)"}`);
  const r = spawnSync(python, ['bench/torch_iteration.py', '--sizes', sizes.join(','), '--runs', String(runs)], { encoding: 'utf8', env });
  if (r.status !== 0) {
    console.error(`(PyTorch reference skipped: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()})`);
    return out;
  }
  for (const line of r.stdout.trim().split('\n')) {
    const m = JSON.parse(line) as { size: number; seconds: number; threads: number };
    out.set(m.size, m.seconds);
  }
  return out;
}

const gpu = await openDawnGpu();
console.log(`adapter: ${gpu.describe()}; storage binding limit ${(gpu.maxBindingBytes / 2 ** 20).toFixed(0)} MiB`);
// --tune: kernel variants measured on this adapter first (as the CLI does; this process only), else the defaults.
const tune = args.includes('--tune');
if (tune) await configureTuning(gpu, { mode: 'on' });
console.log(`kernel variants: ${tune ? 'tuned on this adapter (painterly tune)' : 'defaults (tuning off; --tune to measure)'}`);
console.log(`backbone: ${backbone.name} (random weights: the timing does not depend on them), ${pooling} pooling`);
const net = createNetwork(gpu, backbone.desc, await loadBackboneWeights(backbone.name, 'random:1', { upTo: 'relu5_1', onMessage: () => {} }));
const rows: (string | number)[][] = [];
const results: Record<string, unknown>[] = [];
let lbfgsOverhead: Record<string, unknown> | undefined;
const torch = torchTimes(); // before the GPU work, so the two never share the cores
for (const size of sizes) {
  const img = () => uploadTensor(gpu, Float32Array.from({ length: 3 * size * size }, () => Math.random()), [3, size, size], 'img');
  let obj: GatysObjective;
  try {
    const content = img();
    const style = img();
    const P = contentTargets(gpu, net, content, cfg.contentLayers, pooling);
    const A = await styleTargets(gpu, net, [style], [1], cfg.styleLayers, pooling, size, size);
    obj = new GatysObjective(gpu, net, size, size, pooling, cfg, { content: P, style: A });
  } catch (e) {
    console.log(`${size}: skipped (${(e as Error).message})`);
    continue;
  }
  const x = img();
  const grad = createTensor(gpu, x.shape, 'grad');
  if (tune) await obj.evaluate(x, grad); // builds the program and settles its kernels' variants
  const st = obj.stages(x, grad);
  const fwd = await timeSteps(gpu, st.forward, { runs, minSeconds: 0 });
  const fl = await timeSteps(gpu, [...st.forward, ...st.losses], { runs, minSeconds: 0 });
  const all = await timeSteps(gpu, st.all, { runs, minSeconds: 0 });
  const flops = 2 * forwardConvFlops(size, size);
  const t = all.median;
  const ref = torch.get(size);
  const row = {
    size, seconds: t, forward: fwd.median, losses: Math.max(0, fl.median - fwd.median), backward: Math.max(0, t - fl.median),
    gflops: flops / t / 1e9, torchSeconds: ref, speedupVsTorch: ref ? ref / t : undefined,
  };
  results.push(row);
  rows.push([size, t.toFixed(3), row.forward.toFixed(3), row.losses.toFixed(3), row.backward.toFixed(3), row.gflops.toFixed(1),
    ref ? ref.toFixed(3) : '-', ref ? (ref / t).toFixed(2) : '-', st.all.length]);
  obj.destroy();
}
// L-BFGS's own work per step (two-loop recursion over a full history, on the GPU) at the largest size measured,
// against an objective whose time is excluded: f = 1/2 sum d_i x_i^2 with d in [1, 1e6], evaluated on the CPU.
const lbfgsSize = results.length ? (results[results.length - 1].size as number) : sizes[0];
const history = Number(flag('lbfgs-history', '100'));
{
  const n = 3 * lbfgsSize * lbfgsSize;
  // Condition number 1e6, so L-BFGS is still far from converged when its history is full.
  const d = Float64Array.from({ length: n }, (_, i) => 10 ** (6 * (((i * 2654435761) % 1000) / 1000)));
  let objSeconds = 0;
  const objective = {
    n,
    evaluate: async (x: import('../src/gpu/tensor.ts').Tensor, g: import('../src/gpu/tensor.ts').Tensor) => {
      const t = performance.now();
      const xv = await readTensor(gpu, x);
      const gv = new Float32Array(n);
      let f = 0;
      for (let i = 0; i < n; i++) { gv[i] = d[i] * xv[i]; f += 0.5 * d[i] * xv[i] * xv[i]; }
      writeTensor(gpu, g, gv);
      objSeconds += (performance.now() - t) / 1000;
      return f;
    },
  };
  const x = uploadTensor(gpu, Float32Array.from({ length: n }, () => Math.random() + 0.5), [n], 'x');
  const opt = createLbfgs(gpu, objective, x, { history, onMessage: (m) => console.log(m) });
  const steps = history + 10;
  let timed = 0;
  let timedObj = 0;
  let timedSteps = 0;
  for (let k = 0; k < steps; k++) {
    const o0 = objSeconds;
    const t = performance.now();
    const r = await opt.step();
    if (k >= history) { timed += (performance.now() - t) / 1000; timedObj += objSeconds - o0; timedSteps++; }
    if (r.done) { console.log(`(L-BFGS stopped at step ${k}: ${r.reason})`); break; }
  }
  const perStep = timedSteps ? (timed - timedObj) / timedSteps : NaN;
  const evalAt = results.find((r) => r.size === lbfgsSize)?.seconds as number | undefined;
  console.log(`L-BFGS own work per step at ${lbfgsSize}x${lbfgsSize} (n=${n}, history ${history}, full): ${(perStep * 1000).toFixed(0)} ms` +
    (evalAt ? ` = ${((100 * perStep) / (evalAt + perStep)).toFixed(1)} % of an iteration` : ''));
  lbfgsOverhead = { size: lbfgsSize, history, secondsPerStep: perStep, fractionOfIteration: evalAt ? perStep / (evalAt + perStep) : undefined };
  opt.destroy();
}
console.log(table(['size', 's/eval', 'forward', 'losses', 'backward', 'GFLOP/s', 'torch s/eval', 'torch/ours', 'dispatches'], rows));
console.log('GFLOP/s counts 2x the forward conv FLOPs (forward + input gradient) per evaluation; torch/ours > 1 means we are faster.');
mkdirSync(dirname(jsonPath), { recursive: true });
writeFileSync(jsonPath, JSON.stringify({ adapter: gpu.describe(), date: new Date().toISOString(), results, lbfgsOverhead }, null, 1));
console.log(`wrote ${jsonPath}`);
net.destroy();
gpu.destroy();
process.exit(0);
