// Kernel benchmark (npm run bench:kernels [-- --quick]): conv forward, input grad and weight grad (direct and
// Winograd) at each VGG19 conv layer shape for a 256x256 image, Gram (if src/ops/gram.ts exists), and the plain matmul at 1024 and 2048.
// GFLOP/s counts direct-conv FLOPs 2*Cin*Cout*K*K*H*W (so Winograd shows as "effective" GFLOP/s); GB/s counts the
// compulsory traffic (each input, output and weight once). Run it alone: flock /tmp/painterly-gpu.lock npm run bench:kernels
import { mkdirSync, writeFileSync } from 'node:fs';
import { openDawnGpu } from '../src/gpu/dawn.ts';
import type { Gpu } from '../src/gpu/device.ts';
import type { Step } from '../src/gpu/kernel.ts';
import { createTensor, uploadTensor, destroyTensors, type Tensor } from '../src/gpu/tensor.ts';
import {
  conv2dBackwardInput, conv2dBackwardWeight, conv2dForward, convAlgorithmFor, prepareConv, weightGradAlgorithm,
} from '../src/ops/conv2d.ts';
import { matmul } from '../src/ops/matmul.ts';
import { rand, table, timeSteps } from './harness.ts';

const quick = process.argv.includes('--quick');
const runs = quick ? 3 : 5;
const SIZE = 256;

interface Row { kernel: string; shape: string; algorithm: string; ms: number; gflops: number; gbs: number; reps: number }
const rows: Row[] = [];


async function measure(gpu: Gpu, kernel: string, shape: string, algorithm: string, steps: Step[], flops: number, bytes: number) {
  const t = await timeSteps(gpu, steps, { runs });
  const row = { kernel, shape, algorithm, ms: t.median * 1e3, gflops: flops / t.median / 1e9, gbs: bytes / t.median / 1e9, reps: t.reps };
  rows.push(row);
  console.log(`  ${kernel.padEnd(12)} ${shape.padEnd(22)} ${algorithm.padEnd(9)} ${row.ms.toFixed(2).padStart(9)} ms ${row.gflops.toFixed(1).padStart(6)} GFLOP/s`);
}

// VGG19 conv layers (unique shapes) for a 256x256 input.
const vgg: [string, number, number, number][] = [
  ['conv1_1', 3, 64, SIZE], ['conv1_2', 64, 64, SIZE],
  ['conv2_1', 64, 128, SIZE / 2], ['conv2_2', 128, 128, SIZE / 2],
  ['conv3_1', 128, 256, SIZE / 4], ['conv3_2..4', 256, 256, SIZE / 4],
  ['conv4_1', 256, 512, SIZE / 8], ['conv4_2..4', 512, 512, SIZE / 8],
  ['conv5_1..4', 512, 512, SIZE / 16],
];
const layers = quick ? vgg.filter(([n]) => ['conv1_2', 'conv3_1', 'conv4_2..4'].includes(n)) : vgg;

const gpu = await openDawnGpu();
console.log(`device: ${gpu.describe()}; ${quick ? 'quick, ' : ''}median of ${runs} runs after a warm-up\n`);

async function benchMatmul(n: number): Promise<void> {
  const a = uploadTensor(gpu, rand(n * n), [n, n], 'a');
  const b = uploadTensor(gpu, rand(n * n), [n, n], 'b');
  const c = createTensor(gpu, [n, n], 'c');
  await measure(gpu, 'matmul', `${n}x${n}x${n}`, 'blocked', [matmul(gpu, a, b, c)], 2 * n ** 3, 3 * n * n * 4);
  destroyTensors(a, b, c);
}
for (const n of quick ? [1024] : [1024, 2048]) await benchMatmul(n);

for (const [name, cin, cout, s] of layers) {
  const k = 3;
  const x = uploadTensor(gpu, rand(cin * s * s), [cin, s, s], 'x');
  const w = uploadTensor(gpu, rand(cout * cin * k * k).map((v) => v * 0.1), [cout, cin, k, k], 'w');
  const bias = uploadTensor(gpu, rand(cout), [cout], 'b');
  const y = createTensor(gpu, [cout, s, s], 'y');
  const dy = uploadTensor(gpu, rand(cout * s * s), [cout, s, s], 'dy');
  const dx = createTensor(gpu, [cin, s, s], 'dx');
  const dw = createTensor(gpu, [cout, cin, k, k], 'dw');
  const layer = prepareConv(gpu, w, bias);
  const algo = convAlgorithmFor(gpu, layer, s, s);
  const flops = 2 * cin * cout * k * k * s * s;
  const io = (cin * s * s + cout * s * s + cout * cin * k * k) * 4;
  const shape = `${name} ${cin}->${cout} @${s}`;
  await measure(gpu, 'conv fwd', shape, algo.forward, conv2dForward(gpu, layer, x, y), flops, io);
  await measure(gpu, 'conv dx', shape, algo.input, conv2dBackwardInput(gpu, layer, dy, dx), flops, io);
  // The weight grad on both paths where Winograd applies (the adjoint of the forward's pipeline), to show the ratio.
  const wAlgos = weightGradAlgorithm(gpu, cin, cout, k, s, s) === 'winograd' ? ['direct', 'winograd'] as const : ['direct'] as const;
  for (const a of wAlgos) await measure(gpu, 'conv dw', shape, a, conv2dBackwardWeight(gpu, x, dy, dw, 'zeros', { algorithm: a }), flops, io);
  destroyTensors(x, w, bias, y, dy, dx, dw);
}

// Gram matrix, if the op exists yet (written by another engineer): G = F F^T for F [C, H*W].
try {
  const path = '../src/ops/gram.ts';
  const mod = (await import(path)) as Record<string, unknown>;
  const fn = mod.gram as ((gpu: Gpu, f: Tensor, g: Tensor) => Step | Step[]) | undefined;
  if (typeof fn !== 'function') throw new Error('src/ops/gram.ts has no export "gram"');
  for (const [c, s] of quick ? [[128, SIZE / 2]] : [[64, SIZE], [128, SIZE / 2], [256, SIZE / 4], [512, SIZE / 8]]) {
    const f = uploadTensor(gpu, rand(c * s * s), [c, s, s], 'f');
    const g = createTensor(gpu, [c, c], 'g');
    const st = fn(gpu, f, g);
    await measure(gpu, 'gram', `${c}x${s * s}`, '', Array.isArray(st) ? st : [st], 2 * c * c * s * s, (c * s * s + c * c) * 4);
    destroyTensors(f, g);
  }
} catch (e) {
  console.log(`  gram skipped: ${(e as Error).message.split('\n')[0]}`);
}

const best = Math.max(...rows.filter((r) => r.kernel === 'matmul').map((r) => r.gflops));
console.log(`\n${table(['kernel', 'shape', 'algorithm', 'ms', 'GFLOP/s', 'GB/s', 'x best matmul'],
  rows.map((r) => [r.kernel, r.shape, r.algorithm, r.ms.toFixed(2), r.gflops.toFixed(1), r.gbs.toFixed(2), (r.gflops / best).toFixed(2)]))}`);
console.log(`\nbest matmul: ${best.toFixed(1)} GFLOP/s; conv GFLOP/s are direct-conv FLOPs per second`);
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/kernels.json', JSON.stringify({
  device: gpu.describe(), date: new Date().toISOString(), quick, runs, imageSize: SIZE, bestMatmulGflops: best,
  rows: rows.map((r) => ({ ...r, fractionOfBestMatmul: r.gflops / best })),
}, null, 2));
console.log('wrote bench/results/kernels.json');
gpu.destroy();
process.exit(0);
