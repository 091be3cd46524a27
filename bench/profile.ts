// Where an evaluation's time goes: every dispatch of one Gatys evaluation (VGG19 to relu5_1, default layers, random
// weights) timed on its own, then summed by kernel and by layer. The sum of the parts exceeds the whole evaluation by
// one dispatch overhead per step (bench/dispatch.ts). Run it alone:
//   node scripts/run-ts.mjs bench/profile.ts [--size 256] [--top 25] [--backbone vgg19|vgg19-16x] [--tune]
import { openDawnGpu } from '../src/gpu/dawn.ts';
import { createTensor, uploadTensor } from '../src/gpu/tensor.ts';
import { configureTuning } from '../src/gpu/tune.ts';
import { createNetwork } from '../src/nets/executor.ts';
import { getBackbone } from '../src/nets/backbones.ts';
import { loadBackboneWeights } from '../src/weights/backbone-weights.ts';
import { GatysObjective, type LossConfig } from '../src/style/objective.ts';
import { contentTargets, styleTargets } from '../src/style/targets.ts';
import { table, timeSteps } from './harness.ts';

const args = process.argv.slice(2);
const flag = (name: string, def: string) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : def; };
const size = Number(flag('size', '256'));
const top = Number(flag('top', '25'));
const backbone = getBackbone(flag('backbone', 'vgg19'));
const cfg: LossConfig = {
  contentLayers: ['relu4_2'], styleLayers: ['relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1'],
  styleLayerWeights: [0.2, 0.2, 0.2, 0.2, 0.2], contentWeight: 1, styleWeight: 1e3, tvWeight: 1, normalization: 'paper',
};

const gpu = await openDawnGpu();
if (args.includes('--tune')) await configureTuning(gpu, { mode: 'on' });
const pooling = backbone.defaults.pooling;
const net = createNetwork(gpu, backbone.desc, await loadBackboneWeights(backbone.name, 'random:1', { upTo: 'relu5_1', onMessage: () => {} }));
const img = () => uploadTensor(gpu, Float32Array.from({ length: 3 * size * size }, () => Math.random()), [3, size, size], 'img');
const P = contentTargets(gpu, net, img(), cfg.contentLayers, pooling);
const A = await styleTargets(gpu, net, [img()], [1], cfg.styleLayers, pooling, size, size);
const obj = new GatysObjective(gpu, net, size, size, pooling, cfg, { content: P, style: A });
const x = img();
const grad = createTensor(gpu, x.shape, 'grad');
await obj.evaluate(x, grad);
const st = obj.stages(x, grad);
const whole = await timeSteps(gpu, st.all, { runs: 3, minSeconds: 0 });

// A step's kernel: its entry point; its layer: the tensor named in its label (e.g. "conv_forward conv3_1 wino_gemm").
const byKernel = new Map<string, { s: number; n: number }>();
const byStep: { label: string; entry: string; s: number }[] = [];
for (const step of st.all) {
  const t = await timeSteps(gpu, [step], { runs: 3, minSeconds: 0.01 });
  const entry = step.kernel.spec.entry;
  const kind = `${step.label.split(' ')[0]} ${entry}`;
  const k = byKernel.get(kind) ?? { s: 0, n: 0 };
  k.s += t.median; k.n += 1;
  byKernel.set(kind, k);
  byStep.push({ label: step.label, entry, s: t.median });
}
const sum = byStep.reduce((a, b) => a + b.s, 0);
console.log(`${backbone.name} at ${size}x${size}: ${st.all.length} dispatches; whole evaluation ${(whole.median * 1e3).toFixed(1)} ms, ` +
  `sum of dispatches timed alone ${(sum * 1e3).toFixed(1)} ms\n`);
console.log(table(['operation kernel', 'dispatches', 'ms', '% of sum'],
  [...byKernel.entries()].sort((a, b) => b[1].s - a[1].s).map(([k, v]) => [k, v.n, (v.s * 1e3).toFixed(2), (100 * v.s / sum).toFixed(1)])));
console.log(`\ntop ${top} dispatches:`);
console.log(table(['step', 'kernel', 'ms'], byStep.sort((a, b) => b.s - a.s).slice(0, top).map((r) => [r.label, r.entry, (r.s * 1e3).toFixed(2)])));
obj.destroy();
gpu.destroy();
process.exit(0);
