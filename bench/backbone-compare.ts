// Side by side with PyTorch autograd: torchvision's resnet50() / densenet121() / vgg19_bn() with seeded random
// weights (bench/torch_backbone.py writes them as safetensors with torchvision's names, plus the images and
// autograd's loss and gradient); Painterly reads that file through --weights' reader, builds the same Gatys loss
// ('paper' normalisation) and prints the relative differences of the loss terms and of the gradient.
//   node scripts/run-ts.mjs bench/backbone-compare.ts [--backbone resnet50|densenet121|vgg19_bn|all] [--size 64] [--softmax T]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDawnGpu } from '../src/gpu/dawn.ts';
import { createTensor, readTensor, uploadTensor } from '../src/gpu/tensor.ts';
import { BACKBONES, type BackboneName } from '../src/nets/backbones.ts';
import { createNetwork, deepest } from '../src/nets/executor.ts';
import { GatysObjective, type LossConfig } from '../src/style/objective.ts';
import { contentTargets, styleTargets } from '../src/style/targets.ts';
import { featureTransformOf } from '../src/style/transform.ts';
import { loadBackboneWeights } from '../src/weights/backbone-weights.ts';

const args = process.argv.slice(2);
const flag = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const which = flag('backbone', 'all');
const size = Number(flag('size', '64'));
const softmax = Number(flag('softmax', '0'));
const names: BackboneName[] = which === 'all' ? ['resnet50', 'densenet121', 'vgg19_bn'] : [which as BackboneName];
const gpu = await openDawnGpu();
const python = '/usr/bin/python3';
let worst = 0;

for (const name of names) {
  const bb = BACKBONES[name];
  const contentLayers = bb.defaults.contentLayers;
  const styleLayers = bb.defaults.styleLayers;
  const work = mkdtempSync(join(tmpdir(), `painterly-${name}-`));
  const r = spawnSync(python, ['bench/torch_backbone.py', '--backbone', name, '--size', String(size), '--out', work,
    '--content-layers', contentLayers.join(','), '--style-layers', styleLayers.join(','), '--softmax', String(softmax)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`torch_backbone.py failed: ${r.stderr}`);
  const torch = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  const { h, w } = torch;
  const raw = (f: string) => new Float32Array(new Uint8Array(readFileSync(join(work, f))).buffer);
  const upTo = deepest(bb.desc, [...contentLayers, ...styleLayers]);
  const weights = await loadBackboneWeights(name, join(work, 'weights.safetensors'), { upTo });
  const net = createNetwork(gpu, bb.desc, weights);
  const cfg: LossConfig = {
    contentLayers, styleLayers, styleLayerWeights: styleLayers.map(() => 1 / styleLayers.length),
    contentWeight: 1, styleWeight: 1e3, tvWeight: 1e-3, normalization: 'paper',
    featureTransform: softmax > 0 ? 'softmax' : 'none', softmaxTemperature: softmax || 1,
  };
  const transform = featureTransformOf(cfg);
  const t = (f: string, label: string) => uploadTensor(gpu, raw(f), [3, h, w], label);
  const [content, style, x] = [t('content.f32', 'content'), t('style.f32', 'style'), t('x.f32', 'x')];
  const P = contentTargets(gpu, net, content, contentLayers, 'max', transform);
  const A = await styleTargets(gpu, net, [style], [1], styleLayers, 'max', h, w, transform);
  const obj = new GatysObjective(gpu, net, h, w, 'max', cfg, { content: P, style: A });
  const grad = createTensor(gpu, [3, h, w], 'grad');
  const t0 = performance.now();
  await obj.evaluate(x, grad);
  const ms = performance.now() - t0;
  const terms = obj.last!;
  const g = await readTensor(gpu, grad);
  const tg = raw('grad.f32');
  let norm = 0, diff = 0;
  for (let i = 0; i < g.length; i++) { norm += g[i] ** 2; diff += (g[i] - tg[i]) ** 2; }
  const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-30);
  const rows: [string, number, number][] = [
    ['content', terms.content, torch.content], ['style', terms.style, torch.style], ['tv', terms.tv, torch.tv], ['total', terms.total, torch.total],
    ['|grad|', Math.sqrt(norm), torch.gradNorm],
  ];
  console.log(`\n${name}${softmax ? ` + softmax T=${softmax}` : ''}, ${w}x${h}, random weights (torch ${torch.torch}); content ${contentLayers}, style ${styleLayers}`);
  for (const [k, a, b] of rows) {
    console.log(`  ${k.padEnd(8)} painterly ${a.toExponential(8)}  torch ${b.toExponential(8)}  rel diff ${rel(a, b).toExponential(2)}`);
    worst = Math.max(worst, rel(a, b));
  }
  const gr = Math.sqrt(diff / Math.max(norm, 1e-30));
  console.log(`  gradient ‖g − g_torch‖/‖g‖ = ${gr.toExponential(2)}   (one evaluation: ${ms.toFixed(0)} ms, the first, with pipeline compiles)`);
  worst = Math.max(worst, gr);
  obj.destroy();
  net.destroy();
  rmSync(work, { recursive: true, force: true });
}
console.log(`\nworst relative difference: ${worst.toExponential(2)} (${worst <= 1e-4 ? 'within' : 'PAST'} 1e-4)`);
process.exit(worst <= 1e-4 ? 0 : 1);
