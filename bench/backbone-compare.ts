// Side by side with PyTorch autograd: torchvision's resnet50() / densenet121() / vgg19_bn() with seeded random
// weights (bench/torch_backbone.py writes them as safetensors with torchvision's names, plus the images and
// autograd's loss and gradient in float32 and float64); Painterly reads that file through --weights' reader, builds
// the same Gatys loss ('paper' normalisation) and prints the relative differences of the loss terms and gradient.
//   node scripts/run-ts.mjs bench/backbone-compare.ts [--backbone resnet50|densenet121|vgg19_bn|all] [--size 64] [--softmax T]
import { openDawnGpu } from '../src/gpu/dawn.ts';
import { readTensor } from '../src/gpu/tensor.ts';
import type { BackboneName } from '../src/nets/backbones.ts';
import { backboneRun } from './backbone-setup.ts';

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
/** Painterly's gradient error against float64 over torch float32's own (or 1e-7, whichever is larger). */
let gradWorst = 0;

for (const name of names) {
  const { torch, cfg, obj, x, grad, file, destroy } = await backboneRun(gpu, name, size, { softmax });
  const { h, w } = torch;
  const { contentLayers, styleLayers } = cfg;
  const t0 = performance.now();
  await obj.evaluate(x, grad);
  const ms = performance.now() - t0;
  const terms = obj.last!;
  const g = await readTensor(gpu, grad);
  const tg = new Float32Array(file('grad.f32').buffer);
  const g64 = new Float64Array(file('grad.f64').buffer);
  const relNorm = (a: ArrayLike<number>) => {
    let n = 0, d = 0;
    for (let i = 0; i < a.length; i++) { n += g64[i] ** 2; d += (a[i] - g64[i]) ** 2; }
    return Math.sqrt(d / Math.max(n, 1e-300));
  };
  let norm = 0;
  for (let i = 0; i < g.length; i++) norm += g[i] ** 2;
  const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-30);
  const t64 = torch.f64;
  const rows: [string, number, number, number][] = [
    ['content', terms.content, torch.content, t64.content], ['style', terms.style, torch.style, t64.style], ['tv', terms.tv, torch.tv, t64.tv],
    ['total', terms.total, torch.total, t64.total], ['|grad|', Math.sqrt(norm), torch.gradNorm, t64.gradNorm],
  ];
  console.log(`\n${name}${softmax ? ` + softmax T=${softmax}` : ''}, ${w}x${h}, random weights (torch ${torch.torch}); content ${contentLayers}, style ${styleLayers}`);
  console.log(`  ${''.padEnd(8)} ${'painterly'.padEnd(16)} ${'torch float32'.padEnd(16)} ${'torch float64'.padEnd(16)} painterly vs torch32   vs torch64   torch32 vs torch64`);
  for (const [k, a, b, c] of rows) {
    console.log(`  ${k.padEnd(8)} ${a.toExponential(8).padEnd(16)} ${b.toExponential(8).padEnd(16)} ${c.toExponential(8).padEnd(16)} ` +
      `${rel(a, b).toExponential(2).padEnd(22)} ${rel(a, c).toExponential(2).padEnd(12)} ${rel(b, c).toExponential(2)}`);
    if (k !== '|grad|') worst = Math.max(worst, rel(a, b));
  }
  console.log(`  gradient ‖g − g64‖/‖g64‖: painterly ${relNorm(g).toExponential(2)}, torch float32 ${relNorm(tg).toExponential(2)}` +
    `   (one evaluation: ${ms.toFixed(0)} ms, the first, with pipeline compiles)`);
  gradWorst = Math.max(gradWorst, relNorm(g) / Math.max(relNorm(tg), 1e-7));
  destroy();
}
console.log(`\nworst relative difference of a loss term, painterly vs torch float32: ${worst.toExponential(2)} (${worst <= 1e-4 ? 'within' : 'PAST'} 1e-4)`);
console.log(`gradient error against float64, painterly over torch float32's: at most ${gradWorst.toFixed(2)}x`);
process.exit(worst <= 1e-4 ? 0 : 1);
