// Side-by-side conv timings (old vs new variants interleaved in one process, several rounds): conv1_1, conv1_2,
// conv2_x at 256 px. node scripts/run-ts.mjs bench/conv-sides.ts [filter]
import { readFileSync } from 'node:fs';
import { openDawnGpu } from '../src/gpu/dawn.ts';
import type { Gpu } from '../src/gpu/device.ts';
import { submitTimed, type Step } from '../src/gpu/kernel.ts';
import { createTensor, uploadTensor } from '../src/gpu/tensor.ts';
import { conv2dBackwardInput, conv2dBackwardWeight, conv2dForward, convAlgorithmFor, prepareConv } from '../src/ops/conv2d.ts';
import { fixVariant } from '../src/gpu/tune.ts';
import { rand } from './harness.ts';

const filter = process.argv[2] ?? '';
const rounds = Number(process.env.ROUNDS ?? 5);
const timeOnce = async (gpu: Gpu, steps: Step[], reps: number) => (await submitTimed(gpu, steps, reps)) / reps;
interface Contender { name: string; flops: number; build: () => Step[]; variant?: [string, string] }
const gpu = await openDawnGpu();
const cases: Contender[] = [];
const SIZE = Number(process.env.SIZE ?? 256);
const layers: [string, number, number, number][] = [
  ['conv1_1', 3, 64, SIZE], ['conv1_2', 64, 64, SIZE], ['conv2_1', 64, 128, SIZE / 2], ['conv2_2', 128, 128, SIZE / 2],
];
const variants = (process.env.VARIANTS ?? '').split(',').filter(Boolean); // kernel=variant,...
for (const [name, cin, cout, s] of layers) {
  const x = uploadTensor(gpu, rand(cin * s * s), [cin, s, s], 'x');
  const w = uploadTensor(gpu, rand(cout * cin * 9).map((v) => v * 0.1), [cout, cin, 3, 3], 'w');
  const b = uploadTensor(gpu, rand(cout), [cout], 'b');
  const y = createTensor(gpu, [cout, s, s], 'y');
  const dy = uploadTensor(gpu, rand(cout * s * s), [cout, s, s], 'dy');
  const dx = createTensor(gpu, [cin, s, s], 'dx');
  const dw = createTensor(gpu, [cout, cin, 3, 3], 'dw');
  const layer = prepareConv(gpu, w, b);
  const flops = 2 * cin * cout * 9 * s * s;
  const algo = convAlgorithmFor(gpu, layer, s, s);
  const opts = [undefined, ...variants.map((v) => v.split('=') as [string, string])];
  for (const v of opts) {
    const tag = v ? ` [${v[1]}]` : '';
    cases.push({ name: `${name} fwd ${algo.forward}${tag}`, flops, variant: v, build: () => conv2dForward(gpu, layer, x, y, undefined, { relu: true }) });
    cases.push({ name: `${name} dx ${algo.input}${tag}`, flops, variant: v, build: () => conv2dBackwardInput(gpu, layer, dy, dx) });
    cases.push({ name: `${name} dw${tag}`, flops, variant: v, build: () => conv2dBackwardWeight(gpu, x, dy, dw) });
  }
}
const sel = cases.filter((c) => c.name.includes(filter));
const built = sel.map((c) => {
  if (c.variant) fixVariant(gpu, c.variant[0], c.variant[1]);
  const steps = c.build();
  if (c.variant) fixVariant(gpu, c.variant[0], undefined);
  return { ...c, steps, best: Infinity, all: [] as number[], reps: 1 };
});
for (const c of built) { await timeOnce(gpu, c.steps, 1); const t = await timeOnce(gpu, c.steps, 1); c.reps = Math.max(1, Math.min(20, Math.ceil(0.1 / t))); }
for (let r = 0; r < rounds; r++) for (const c of built) { const t = await timeOnce(gpu, c.steps, c.reps); c.all.push(t); c.best = Math.min(c.best, t); }
console.log(`loadavg ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
for (const c of built) {
  const med = [...c.all].sort((a, b) => a - b)[Math.floor(c.all.length / 2)];
  console.log(`${c.name.padEnd(40)} best ${(c.best * 1e3).toFixed(2).padStart(8)} ms  med ${(med * 1e3).toFixed(2).padStart(8)} ms  ${(c.flops / c.best / 1e9).toFixed(1).padStart(6)} GFLOP/s`);
}
gpu.destroy();
process.exit(0);
