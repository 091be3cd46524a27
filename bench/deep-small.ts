// Direct vs Winograd conv, forward and input grad, interleaved over rounds (best round): by default VGG19's deep
// layers at small sizes (the end of the network for 64-256 px images). node scripts/run-ts.mjs bench/deep-small.ts
import { openDawnGpu } from '../src/gpu/dawn.ts';
import { submitTimed, type Step } from '../src/gpu/kernel.ts';
import { createTensor, uploadTensor } from '../src/gpu/tensor.ts';
import { conv2dBackwardInput, conv2dForward, prepareConv } from '../src/ops/conv2d.ts';
import { rand } from './harness.ts';

const rounds = Number(process.env.ROUNDS ?? 5);
const gpu = await openDawnGpu();
// SHAPES=cin:cout:size,... (default: VGG19's deep layers at small sizes); e.g. the wct-16x widths:
// SHAPES=16:16:256,16:32:128,32:32:128,32:64:64,64:64:64,16:16:512
const shapes: [number, number, number][] = process.env.SHAPES
  ? process.env.SHAPES.split(',').map((t) => t.split(':').map(Number) as [number, number, number])
  : [[256, 512, 8], [512, 512, 8], [512, 512, 4], [512, 512, 16], [256, 256, 16], [512, 512, 2]];
const cases: { name: string; steps: Step[]; flops: number }[] = [];
for (const [cin, cout, s] of shapes) {
  const x = uploadTensor(gpu, rand(cin * s * s), [cin, s, s], 'x');
  const w = uploadTensor(gpu, rand(cout * cin * 9).map((v) => v * 0.1), [cout, cin, 3, 3], 'w');
  const b = uploadTensor(gpu, rand(cout), [cout], 'b');
  const y = createTensor(gpu, [cout, s, s], 'y');
  const dy = uploadTensor(gpu, rand(cout * s * s), [cout, s, s], 'dy');
  const dx = createTensor(gpu, [cin, s, s], 'dx');
  const flops = 2 * cin * cout * 9 * s * s;
  for (const algorithm of ['direct', 'winograd'] as const) {
    const layer = prepareConv(gpu, w, b, { algorithm });
    cases.push({ name: `${cin}->${cout} @${s} fwd ${algorithm}`, steps: conv2dForward(gpu, layer, x, y), flops });
    cases.push({ name: `${cin}->${cout} @${s} dx  ${algorithm}`, steps: conv2dBackwardInput(gpu, layer, dy, dx), flops });
  }
}
const best = new Map<string, number>();
for (const c of cases) await submitTimed(gpu, c.steps, 2);
for (let r = 0; r < rounds; r++) {
  for (const c of cases) {
    const t = (await submitTimed(gpu, c.steps, 5)) / 5;
    best.set(c.name, Math.min(best.get(c.name) ?? Infinity, t));
  }
}
for (const c of cases) console.log(`${c.name.padEnd(32)} ${(best.get(c.name)! * 1e3).toFixed(2).padStart(8)} ms ${(c.flops / best.get(c.name)! / 1e9).toFixed(1).padStart(6)} GFLOP/s`);
gpu.destroy();
process.exit(0);
