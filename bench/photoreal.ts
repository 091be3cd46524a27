// Cost of the photorealism routes (issue 12): the matting-Laplacian product (one M·V over the 3 channels, with its
// loss sum: what each Gatys evaluation adds) and the guided-filter smoothing, at 512² and 1024², beside one Gatys
// evaluation (vgg19-16x, default layers, random weights: timing only) and one WCT feed-forward pass (wct-16x).
// Usage: node scripts/run-ts.mjs bench/photoreal.ts [--sizes 512,1024] [--no-ff] [--no-gatys]
import { existsSync } from 'node:fs';
import { openDawnGpu } from '../src/gpu/dawn.ts';
import { createTensor, uploadTensor } from '../src/gpu/tensor.ts';
import { createScalars } from '../src/ops/loss.ts';
import { guidedFilter } from '../src/ops/guided.ts';
import { mattingGuide, mattingSteps, mattingWindowStats } from '../src/ops/matting.ts';
import { VGG19_16X } from '../src/nets/backbones.ts';
import { createNetwork } from '../src/nets/executor.ts';
import { randomNetWeights } from '../src/weights/net-weights.ts';
import { GatysObjective, type LossConfig } from '../src/style/objective.ts';
import { contentTargets, styleTargets } from '../src/style/targets.ts';
import { DEFAULT_SMOOTH_EPS, DEFAULT_SMOOTH_RADIUS, smoothRadiusFor } from '../src/style/photoreal.ts';
import { createPainterly } from '../src/node.ts';
import { table, timeSteps } from './harness.ts';

const args = process.argv.slice(2);
const flag = (name: string, def: string) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : def; };
const sizes = flag('sizes', '512,1024').split(',').map(Number);
const gpu = await openDawnGpu();
const rows: (string | number)[][] = [];
const cfg: LossConfig = {
  contentLayers: ['relu4_2'], styleLayers: ['relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1'],
  styleLayerWeights: [0.2, 0.2, 0.2, 0.2, 0.2], contentWeight: 1, styleWeight: 1e3, tvWeight: 10, normalization: 'paper',
};
const net = args.includes('--no-gatys') ? undefined : createNetwork(gpu, VGG19_16X, randomNetWeights(VGG19_16X, 1));
const painterly = !args.includes('--no-ff') && existsSync('../shared/models/wct-16x') ? await createPainterly() : undefined;
const style = painterly ? await painterly.encodeStyle({ method: 'wct', model: '../shared/models/wct-16x', style: 'examples/rocket.jpg', styleSize: 512 }) : undefined;

for (const s of sizes) {
  const n = 3 * s * s;
  const img = { width: s, height: s, data: new Float32Array(n).map((_, i) => 0.5 + 0.4 * Math.sin(i * 0.37) * Math.cos(i * 0.011)) };
  let t0 = performance.now();
  mattingWindowStats(img.data, s, s);
  const statsSec = (performance.now() - t0) / 1000;
  const g = mattingGuide(gpu, img);
  const v = uploadTensor(gpu, img.data.map((x) => 1 - x), [3, s, s], 'v'), out = createTensor(gpu, [3, s, s], 'out');
  const m = mattingSteps(gpu, g, { v, out, scale: 2, accumulate: true, scalars: createScalars(gpu, 1), slot: 0 });
  const prod = await timeSteps(gpu, m.steps, { runs: 3 });
  const r = smoothRadiusFor(DEFAULT_SMOOTH_RADIUS, s, s);
  const f = guidedFilter(gpu, { I: g.I, p: v, q: out, radius: r, eps: DEFAULT_SMOOTH_EPS });
  const smooth = await timeSteps(gpu, f.steps, { runs: 3 });
  let iter = NaN;
  if (net) {
    const ct = uploadTensor(gpu, img.data, [3, s, s], 'content');
    const obj = new GatysObjective(gpu, net, s, s, 'max', cfg, {
      content: contentTargets(gpu, net, ct, cfg.contentLayers, 'max'),
      style: await styleTargets(gpu, net, [v], [1], cfg.styleLayers, 'max', s, s),
    });
    iter = (await timeSteps(gpu, obj.stages(v, createTensor(gpu, [n], 'grad')).all, { runs: 1 })).median;
    obj.destroy();
  }
  let ff = NaN;
  if (painterly && style) {
    await painterly.stylizeWithStyle({ width: s, height: s, data: img.data }, style, { alpha: 0.6 }); // warm-up
    t0 = performance.now();
    await painterly.stylizeWithStyle({ width: s, height: s, data: img.data }, style, { alpha: 0.6 });
    ff = (performance.now() - t0) / 1000;
  }
  const pct = (a: number, b: number) => (Number.isFinite(b) ? `${((100 * a) / b).toFixed(1)}%` : '-');
  rows.push([`${s}x${s}`, statsSec.toFixed(3), prod.median.toFixed(4), pct(prod.median, iter), `${r}`, smooth.median.toFixed(4), pct(smooth.median, ff),
    Number.isFinite(iter) ? iter.toFixed(3) : '-', Number.isFinite(ff) ? ff.toFixed(3) : '-']);
  m.destroy(); f.destroy(); g.destroy();
  console.log(rows.at(-1)!.join('  '));
}
console.log(table(['size', 'M stats CPU s (once)', 'M·V s', 'of a gatys eval', 'smooth r', 'smooth s', 'of a wct pass', 'gatys eval s (vgg19-16x)', 'wct pass s'], rows));
painterly?.destroy();
gpu.destroy();
