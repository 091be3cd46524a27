// GPU bytes of a default Gatys plan (VGG19, relu4_2 content, relu1_1..relu5_1 style, L-BFGS) at N px, counted by
// wrapping device.createBuffer: `node scripts/run-ts.mjs bench/memory.ts [N]`. Creates the buffers (never runs the
// evaluation): the network, the targets' plans, the objective and one recorded program, then a second program as
// the final evaluation's fresh gradient tensor records. Measured on lavapipe at 512: peak 5796 MiB before issue 13
// (per-layer Winograd scratch per direction, a second backward scratch set, leaked target scratch), 1402 MiB after.
// What is still live after "all destroyed" here is loss/Gram scratch that the engine frees when a run ends (its
// collector); `painterly info --size N` gives the whole run's peak (with the optimiser state).
import { openDawnGpu } from '../src/gpu/dawn.ts';
import { createTensor, uploadTensor } from '../src/gpu/tensor.ts';
import { createNetwork } from '../src/nets/executor.ts';
import { VGG19 } from '../src/nets/vgg19.ts';
import { GatysObjective } from '../src/style/objective.ts';
import { DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS } from '../src/style/options.ts';
import { contentTargets, styleTargets } from '../src/style/targets.ts';
import { randomNetWeights } from '../src/weights/net-weights.ts';

const N = Number(process.argv[2] ?? 512);
const gpu = await openDawnGpu();
const dev = gpu.device;
const orig = dev.createBuffer.bind(dev);
let created = 0;
let live = 0;
let peak = 0;
dev.createBuffer = (d: GPUBufferDescriptor) => {
  const b = orig(d);
  created += d.size;
  live += d.size;
  peak = Math.max(peak, live);
  const destroy = b.destroy.bind(b);
  let gone = false;
  b.destroy = () => { if (!gone) { gone = true; live -= d.size; } destroy(); };
  return b;
};
const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
const mark = (what: string) => console.log(`${what.padEnd(34)} created ${mib(created).padStart(11)}  live ${mib(live).padStart(11)}  peak ${mib(peak).padStart(11)}`);
const net = createNetwork(gpu, VGG19, randomNetWeights(VGG19, 1, { upTo: 'relu5_1' }));
mark('network');
const img = uploadTensor(gpu, new Float32Array(3 * N * N).fill(0.5), [3, N, N], 'content');
const style = uploadTensor(gpu, new Float32Array(3 * N * N).fill(0.5), [3, N, N], 'style');
const P = contentTargets(gpu, net, img, [...DEFAULT_CONTENT_LAYERS], 'max');
mark('content targets');
const A = await styleTargets(gpu, net, [style], [1], [...DEFAULT_STYLE_LAYERS], 'max', N, N);
mark('style targets');
const cfg = { contentLayers: [...DEFAULT_CONTENT_LAYERS], styleLayers: [...DEFAULT_STYLE_LAYERS], styleLayerWeights: DEFAULT_STYLE_LAYERS.map(() => 0.2),
  contentWeight: 1, styleWeight: 1, tvWeight: 1, normalization: 'paper' as const };
const obj = new GatysObjective(gpu, net, N, N, 'max', cfg, { content: P, style: A });
mark('objective');
const x = createTensor(gpu, [3, N, N], 'x');
const g = createTensor(gpu, [3, N, N], 'g');
obj.stages(x, g);
mark('first program');
const g2 = createTensor(gpu, [3, N, N], 'grad.final');
obj.stages(x, g2);
mark('second program (final gradient)');
obj.destroy();
mark('objective destroyed');
net.destroy();
for (const t of [img, style, x, g, g2, ...P.values(), ...A.values()]) t.buffer.destroy();
mark('all destroyed');
gpu.destroy();
