// Float64 reference of the whole Gatys evaluation: VGG19 forward (any channel counts), the losses, and the hand
// derived backward to the image. Written for clarity; tests run it on reduced channel counts and tiny images.
import { layersUpTo, deepest, type Pooling } from '../nets/vgg19.ts';
import type { LossConfig, LossTerms } from '../style/objective.ts';
import { conv2dBackwardInput, conv2dForward } from './conv2d.ts';
import { gram } from './gram.ts';
import { contentLoss, styleLoss, tvLoss } from './loss.ts';
import { normalizeBackward, normalizeForward } from './normalize.ts';
import { avgPoolBackward, avgPoolForward, maxPoolBackward, maxPoolForward } from './pool.ts';
import { reluBackward, reluForward } from './relu.ts';
import { t64, type T64 } from './tensor.ts';

export interface RefConv { name: string; cin: number; cout: number; k: number; weight: ArrayLike<number>; bias: ArrayLike<number> }

const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];

interface Trace { outs: Map<string, T64>; inputs: T64[]; argmax: Map<string, Uint32Array> }

function forward(convs: RefConv[], image: T64, pooling: Pooling, upTo: string): Trace {
  const byName = new Map(convs.map((c) => [c.name, c]));
  const outs = new Map<string, T64>();
  const inputs: T64[] = [];
  const argmax = new Map<string, Uint32Array>();
  let x = normalizeForward(image, MEAN, STD);
  for (const l of layersUpTo(upTo)) {
    inputs.push(x);
    if (l.kind === 'conv') {
      const c = byName.get(l.name)!;
      x = conv2dForward(x, t64([c.cout, c.cin, c.k, c.k], c.weight), t64([c.cout], c.bias));
    } else if (l.kind === 'relu') {
      x = reluForward(x);
    } else if (pooling === 'max') {
      const r = maxPoolForward(x);
      argmax.set(l.name, r.argmax);
      x = r.y;
    } else {
      x = avgPoolForward(x);
    }
    outs.set(l.name, x);
  }
  return { outs, inputs, argmax };
}

export function featuresReference(convs: RefConv[], image: T64, pooling: Pooling, layers: string[]): Map<string, T64> {
  const t = forward(convs, image, pooling, deepest(layers));
  return new Map(layers.map((l) => [l, t.outs.get(l)!]));
}

export function gramReference(F: T64, scale = 1): T64 {
  return gram(F, scale);
}

/** Loss terms and dL/d(image), exactly as GatysObjective defines them. */
export function gatysReference(
  convs: RefConv[], image: T64, pooling: Pooling, cfg: LossConfig,
  targets: { content: Map<string, T64>; style: Map<string, T64> },
): { terms: LossTerms; grad: T64 } {
  const contentLayers = cfg.contentWeight !== 0 ? cfg.contentLayers : [];
  const styleLayers = cfg.styleWeight !== 0 ? cfg.styleLayers : [];
  const taps = [...contentLayers, ...styleLayers];
  const layers = layersUpTo(deepest(taps.length ? taps : ['relu1_1']));
  const tr = forward(convs, image, pooling, layers[layers.length - 1].name);
  const terms: LossTerms = { content: 0, style: 0, tv: 0, total: 0 };
  const byName = new Map(convs.map((c) => [c.name, c]));
  let g: T64 | undefined;
  for (let i = layers.length - 1; i >= 0; i--) {
    const l = layers[i];
    const out = tr.outs.get(l.name)!;
    g ??= t64(out.shape);
    for (const name of contentLayers) {
      if (name !== l.name) continue;
      const r = contentLoss(out, targets.content.get(name)!);
      const w = cfg.contentWeight / (cfg.normalization === 'scale-free' ? out.data.length : 1);
      terms.content += r.loss;
      terms.total += w * r.loss;
      r.grad.data.forEach((v, k) => { g!.data[k] += w * v; });
    }
    styleLayers.forEach((name) => {
      if (name !== l.name) return;
      const r = styleLoss(out, targets.style.get(name)!);
      const wl = cfg.styleLayerWeights[cfg.styleLayers.indexOf(name)];
      terms.style += wl * r.loss;
      terms.total += cfg.styleWeight * wl * r.loss;
      r.grad.data.forEach((v, k) => { g!.data[k] += cfg.styleWeight * wl * v; });
    });
    const input = tr.inputs[i];
    if (l.kind === 'conv') {
      const c = byName.get(l.name)!;
      g = conv2dBackwardInput(g, t64([c.cout, c.cin, c.k, c.k], c.weight));
    } else if (l.kind === 'relu') {
      g = reluBackward(input, g);
    } else if (pooling === 'max') {
      g = maxPoolBackward(g, tr.argmax.get(l.name)!, input.shape);
    } else {
      g = avgPoolBackward(g, input.shape);
    }
  }
  const grad = normalizeBackward(g!, STD);
  if (cfg.tvWeight !== 0) {
    const r = tvLoss(image);
    const w = cfg.tvWeight / (cfg.normalization === 'scale-free' ? image.shape[1] * image.shape[2] : 1);
    terms.tv = r.loss;
    terms.total += w * r.loss;
    r.grad.data.forEach((v, k) => { grad.data[k] += w * v; });
  }
  return { terms, grad };
}
