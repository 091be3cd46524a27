// Conv forward then a separate ReLU dispatch vs the ReLU fused into the conv's epilogue, side by side in one run
// (node scripts/run-ts.mjs bench/fused-relu.ts [--quick]), at VGG19 layer shapes for a 256x256 image.
import { openDawnGpu } from '../src/gpu/dawn.ts';
import { createTensor, destroyTensors, uploadTensor } from '../src/gpu/tensor.ts';
import { conv2dForward, convAlgorithmFor, prepareConv } from '../src/ops/conv2d.ts';
import { reluForward } from '../src/ops/relu.ts';
import { rand, table, timeSteps } from './harness.ts';

const quick = process.argv.includes('--quick');
const gpu = await openDawnGpu();
console.log(`device: ${gpu.describe()}`);
const layers: [string, number, number, number][] = quick
  ? [['conv1_2', 64, 64, 256], ['conv3_2', 256, 256, 64]]
  : [['conv1_1', 3, 64, 256], ['conv1_2', 64, 64, 256], ['conv2_2', 128, 128, 128], ['conv3_2', 256, 256, 64], ['conv4_2', 512, 512, 32]];
const rows: string[][] = [];
for (const [name, cin, cout, s] of layers) {
  const x = uploadTensor(gpu, rand(cin * s * s), [cin, s, s], 'x');
  const w = uploadTensor(gpu, rand(cout * cin * 9).map((v) => v * 0.1), [cout, cin, 3, 3], 'w');
  const b = uploadTensor(gpu, rand(cout), [cout], 'b');
  const y = createTensor(gpu, [cout, s, s], 'y');
  const r = createTensor(gpu, [cout, s, s], 'r');
  const layer = prepareConv(gpu, w, b);
  const sep = await timeSteps(gpu, [...conv2dForward(gpu, layer, x, y), reluForward(gpu, y, r)], { runs: 5 });
  const fused = await timeSteps(gpu, conv2dForward(gpu, layer, x, r, undefined, { relu: true }), { runs: 5 });
  rows.push([name, convAlgorithmFor(gpu, layer, s, s).forward, (sep.median * 1e3).toFixed(2), (fused.median * 1e3).toFixed(2), (sep.median / fused.median).toFixed(2)]);
  console.log(rows.at(-1)!.join('  '));
  destroyTensors(x, w, b, y, r);
}
console.log(`\n${table(['layer', 'algorithm', 'conv+relu ms', 'fused ms', 'speed-up'], rows)}`);
gpu.destroy();
process.exit(0);
