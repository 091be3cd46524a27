// Float64 reference of a whole network (any description, any channel counts) and of the Gatys evaluation on it:
// forward, the losses, and the hand-derived backward to the image, written for clarity. Tests run it on reduced
// channel counts and tiny images against the GPU executor.
import type { LayerSpec, NetDescription } from '../nets/describe.ts';
import { deepest, layersUpTo } from '../nets/executor.ts';
import type { Pooling } from '../nets/vgg19.ts';
import type { LossConfig, LossTerms } from '../style/objective.ts';
import { conv2dBackwardInput, conv2dForward } from './conv2d.ts';
import { gram } from './gram.ts';
import { contentLoss, styleLoss, tvLoss } from './loss.ts';
import { maskedStyleLoss } from './mask.ts';
import { normalizeBackward, normalizeForward } from './normalize.ts';
import { avgPoolBackward, avgPoolForward, maxPoolBackward, maxPoolForward } from './pool.ts';
import { reluBackward, reluForward } from './relu.ts';
import { upsampleBackward, upsampleForward } from './upsample.ts';
import { t64, type T64 } from './tensor.ts';

export interface RefConv { name: string; cin: number; cout: number; k: number; weight: ArrayLike<number>; bias: ArrayLike<number> }

interface Trace { outs: Map<string, T64>; inputs: T64[]; argmax: Map<string, Uint32Array>; layers: LayerSpec[] }

function poolMode(l: LayerSpec & { op: 'pool' }, pooling: Pooling): Pooling {
  return l.mode ?? pooling;
}

/** Every layer's input and output up to `upTo`. */
export function netForward(desc: NetDescription, convs: RefConv[], image: T64, pooling: Pooling, upTo: string): Trace {
  const byName = new Map(convs.map((c) => [c.name, c]));
  const outs = new Map<string, T64>();
  const inputs: T64[] = [];
  const argmax = new Map<string, Uint32Array>();
  const layers = layersUpTo(desc, upTo);
  let x = image;
  for (const l of layers) {
    inputs.push(x);
    if (l.op === 'normalize') {
      x = normalizeForward(x, l.mean, l.std);
    } else if (l.op === 'conv') {
      const c = byName.get(l.name)!;
      x = conv2dForward(x, t64([c.cout, c.cin, c.k, c.k], c.weight), t64([c.cout], c.bias), l.pad);
    } else if (l.op === 'relu') {
      x = reluForward(x);
    } else if (l.op === 'upsample') {
      x = upsampleForward(x);
    } else if (poolMode(l, pooling) === 'max') {
      const r = maxPoolForward(x, !!l.ceil);
      argmax.set(l.name, r.argmax);
      x = r.y;
    } else {
      x = avgPoolForward(x, !!l.ceil);
    }
    outs.set(l.name, x);
  }
  return { outs, inputs, argmax, layers };
}

/** dL/d(image) for a loss whose gradient at layer outputs `lossGrad` adds (layer, output) -> gradient or undefined. */
export function netBackward(desc: NetDescription, convs: RefConv[], tr: Trace, pooling: Pooling, lossGrad: (layer: string, out: T64) => T64 | undefined): T64 {
  const byName = new Map(convs.map((c) => [c.name, c]));
  let g: T64 | undefined;
  for (let i = tr.layers.length - 1; i >= 0; i--) {
    const l = tr.layers[i];
    const out = tr.outs.get(l.name)!;
    g ??= t64(out.shape);
    const add = lossGrad(l.name, out);
    if (add) add.data.forEach((v, k) => { g!.data[k] += v; });
    const input = tr.inputs[i];
    if (l.op === 'normalize') {
      g = normalizeBackward(g, l.std);
    } else if (l.op === 'conv') {
      const c = byName.get(l.name)!;
      g = conv2dBackwardInput(g, t64([c.cout, c.cin, c.k, c.k], c.weight), l.pad);
    } else if (l.op === 'relu') {
      g = reluBackward(input, g);
    } else if (l.op === 'upsample') {
      g = upsampleBackward(g);
    } else if (poolMode(l, pooling) === 'max') {
      g = maxPoolBackward(g, tr.argmax.get(l.name)!, input.shape);
    } else {
      g = avgPoolBackward(g, input.shape, !!l.ceil);
    }
  }
  void desc;
  return g!;
}

export function featuresReference(desc: NetDescription, convs: RefConv[], image: T64, pooling: Pooling, layers: string[]): Map<string, T64> {
  const t = netForward(desc, convs, image, pooling, deepest(desc, layers));
  return new Map(layers.map((l) => [l, t.outs.get(l)!]));
}

export function gramReference(F: T64, scale = 1): T64 {
  return gram(F, scale);
}

/**
 * Loss terms and dL/d(image), exactly as GatysObjective defines them. With `targets.masked` (semantic masks), a
 * style layer listed there has the masked loss Σ_r E_r over its regions (reference/mask.ts) instead of E_l.
 */
export function gatysReference(
  desc: NetDescription, convs: RefConv[], image: T64, pooling: Pooling, cfg: LossConfig,
  targets: { content: Map<string, T64>; style: Map<string, T64>; masked?: Map<string, { mask: ArrayLike<number>; target: T64 }[]> },
): { terms: LossTerms; grad: T64 } {
  const contentLayers = cfg.contentWeight !== 0 ? cfg.contentLayers : [];
  const styleLayers = cfg.styleWeight !== 0 ? cfg.styleLayers : [];
  const taps = [...contentLayers, ...styleLayers];
  const first = desc.layers.find((l) => l.op === 'relu')!.name;
  const tr = netForward(desc, convs, image, pooling, deepest(desc, taps.length ? taps : [first]));
  const terms: LossTerms = { content: 0, style: 0, tv: 0, total: 0 };
  const grad = netBackward(desc, convs, tr, pooling, (layer, out) => {
    let g: T64 | undefined;
    const add = (v: T64, w: number) => {
      g ??= t64(out.shape);
      v.data.forEach((x, k) => { g!.data[k] += w * x; });
    };
    if (contentLayers.includes(layer)) {
      const r = contentLoss(out, targets.content.get(layer)!);
      const w = cfg.contentWeight / (cfg.normalization === 'scale-free' ? out.data.length : 1);
      terms.content += r.loss;
      terms.total += w * r.loss;
      add(r.grad, w);
    }
    if (styleLayers.includes(layer)) {
      const regions = targets.masked?.get(layer);
      const r = regions ? maskedStyleLoss(out, regions) : styleLoss(out, targets.style.get(layer)!);
      const wl = cfg.styleLayerWeights[cfg.styleLayers.indexOf(layer)];
      terms.style += wl * r.loss;
      terms.total += cfg.styleWeight * wl * r.loss;
      add(r.grad, cfg.styleWeight * wl);
    }
    return g;
  });
  if (cfg.tvWeight !== 0) {
    const r = tvLoss(image);
    const w = cfg.tvWeight / (cfg.normalization === 'scale-free' ? image.shape[1] * image.shape[2] : 1);
    terms.tv = r.loss;
    terms.total += w * r.loss;
    r.grad.data.forEach((v, k) => { grad.data[k] += w * v; });
  }
  return { terms, grad };
}
