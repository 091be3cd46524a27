// Float64 reference of a whole network (any description, any channel counts) and of the Gatys evaluation on it:
// forward, the losses, and the hand-derived backward to the image, written for clarity. Tests run it on reduced
// channel counts and tiny images against the GPU executor.
import type { LayerSpec, NetDescription } from '../nets/describe.ts';
import { deepest } from '../nets/executor.ts';
import { convGeometry, graphOf, layersUpTo, poolGeometry, type Node } from '../nets/graph.ts';
import type { Pooling } from '../nets/vgg19.ts';
import type { LossConfig, LossTerms } from '../style/objective.ts';
import { channelAffine, channelAffineBackward } from './channel.ts';
import { conv2dBackwardBias, conv2dBackwardInput, conv2dBackwardWeight, conv2dForward } from './conv2d.ts';
import { gram } from './gram.ts';
import { contentLoss, styleLoss, tvLoss } from './loss.ts';
import { maskedStyleLoss } from './mask.ts';
import { normalizeBackward, normalizeForward } from './normalize.ts';
import { avgPoolBackward, avgPoolForward, maxPoolBackward, maxPoolForward } from './pool.ts';
import { reluBackward, reluForward } from './relu.ts';
import { softmaxChannels, softmaxChannelsBackward } from './softmax.ts';
import { upsampleBackward, upsampleForward } from './upsample.ts';
import { t64, type T64 } from './tensor.ts';

export interface RefConv { name: string; cin: number; cout: number; k: number; weight: ArrayLike<number>; bias: ArrayLike<number> }
export interface RefNorm { name: string; weight: ArrayLike<number>; bias: ArrayLike<number>; mean: ArrayLike<number>; variance: ArrayLike<number>; eps: number }
/** A network's parameters for the reference: its convs, and batch norms (applied as written, never folded). */
export type RefParams = RefConv[] | { convs: RefConv[]; norms?: RefNorm[] };

export interface Trace { outs: Map<string, T64>; argmax: Map<string, Uint32Array>; nodes: Node[] }

function poolMode(l: LayerSpec & { op: 'pool' }, pooling: Pooling): Pooling {
  return l.mode ?? pooling;
}

function params(p: RefParams): { convs: Map<string, RefConv>; norms: Map<string, RefNorm> } {
  const convs = Array.isArray(p) ? p : p.convs;
  const norms = Array.isArray(p) ? [] : p.norms ?? [];
  return { convs: new Map(convs.map((c) => [c.name, c])), norms: new Map(norms.map((n) => [n.name, n])) };
}

/** y = γ (x − μ)/√(σ² + ε) + β per channel, as a channel affine [a..., b...]. */
function normCoef(n: RefNorm, C: number): Float64Array {
  const coef = new Float64Array(2 * C);
  for (let c = 0; c < C; c++) {
    coef[c] = n.weight[c] / Math.sqrt(n.variance[c] + n.eps);
    coef[C + c] = n.bias[c] - n.mean[c] * coef[c];
  }
  return coef;
}

/** Every layer's output up to `upTo` (aliases resolved; each layer reads the layers its description names). */
export function netForward(desc: NetDescription, p: RefParams, image: T64, pooling: Pooling, upTo: string): Trace {
  const { convs, norms } = params(p);
  const outs = new Map<string, T64>();
  const argmax = new Map<string, Uint32Array>();
  const nodes = graphOf(desc, layersUpTo(desc, upTo));
  for (const n of nodes) {
    const l = n.spec;
    const xs = n.inputs.length ? n.inputs.map((i) => outs.get(i)!) : [image];
    const x = xs[0];
    let y: T64;
    if (l.op === 'normalize') {
      y = normalizeForward(x, l.mean, l.std);
    } else if (l.op === 'conv') {
      const c = convs.get(l.name)!;
      y = conv2dForward(x, t64([c.cout, c.cin, c.k, c.k], c.weight), t64([c.cout], c.bias), l.pad, convGeometry(l));
    } else if (l.op === 'batchnorm') {
      y = channelAffine(x, normCoef(norms.get(l.name)!, x.shape[0]));
    } else if (l.op === 'relu') {
      y = reluForward(x);
    } else if (l.op === 'upsample') {
      y = upsampleForward(x);
    } else if (l.op === 'add') {
      y = t64(x.shape, x.data.map((v, k) => v + xs[1].data[k]));
    } else if (l.op === 'concat') {
      y = t64([xs.reduce((a, t) => a + t.shape[0], 0), x.shape[1], x.shape[2]]);
      let off = 0;
      for (const t of xs) { y.data.set(t.data, off); off += t.data.length; }
    } else if (poolMode(l, pooling) === 'max') {
      const r = maxPoolForward(x, poolGeometry(l));
      argmax.set(l.name, r.argmax);
      y = r.y;
    } else {
      y = avgPoolForward(x, poolGeometry(l));
    }
    outs.set(l.name, y);
  }
  for (const [alias, canon] of Object.entries(desc.aliases ?? {})) if (outs.has(canon)) outs.set(alias, outs.get(canon)!);
  return { outs, argmax, nodes };
}

/**
 * dL/d(image) for a loss whose gradient at layer outputs `lossGrad` adds (layer, output) -> gradient or undefined;
 * gradients of a layer read by several layers are summed. With `weightGrads`, also dL/dW and dL/db of every conv
 * (stride 1, "same" padding), set into that map by layer name.
 */
export function netBackward(
  desc: NetDescription, p: RefParams, tr: Trace, pooling: Pooling, lossGrad: (layer: string, out: T64) => T64 | undefined, image?: T64,
  weightGrads?: Map<string, { weight: T64; bias: T64 }>,
): T64 {
  const { convs, norms } = params(p);
  const grads = new Map<string, T64>();
  const addTo = (name: string, v: T64) => {
    const g = grads.get(name);
    if (!g) grads.set(name, t64(v.shape, Float64Array.from(v.data)));
    else v.data.forEach((x, k) => { g.data[k] += x; });
  };
  const aliasesOf = (name: string) => [name, ...Object.entries(desc.aliases ?? {}).filter(([, c]) => c === name).map(([a]) => a)];
  let imageGrad: T64 | undefined;
  for (let i = tr.nodes.length - 1; i >= 0; i--) {
    const n = tr.nodes[i];
    const l = n.spec;
    const out = tr.outs.get(l.name)!;
    if (!grads.has(l.name)) grads.set(l.name, t64(out.shape));
    for (const name of aliasesOf(l.name)) {
      const add = lossGrad(name, out);
      if (add) addTo(l.name, add);
    }
    const g = grads.get(l.name)!;
    const inputs = n.inputs.length ? n.inputs.map((x) => tr.outs.get(x)!) : [image ?? t64([desc.inputChannels, ...g.shape.slice(1)])];
    const input = inputs[0];
    let gin: T64[];
    if (l.op === 'normalize') {
      gin = [normalizeBackward(g, l.std)];
    } else if (l.op === 'conv') {
      const c = convs.get(l.name)!;
      if (weightGrads) {
        const geo = convGeometry(l);
        if (geo.stride !== 1 || geo.padding !== (c.k - 1) / 2) throw new Error(`reference weight gradients: ${l.name} is not a stride-1 "same" conv`);
        weightGrads.set(l.name, { weight: conv2dBackwardWeight(input, g, c.k, l.pad), bias: conv2dBackwardBias(g) });
      }
      gin = [conv2dBackwardInput(g, t64([c.cout, c.cin, c.k, c.k], c.weight), l.pad, { ...convGeometry(l), inputSize: [input.shape[1], input.shape[2]] })];
    } else if (l.op === 'batchnorm') {
      gin = [channelAffineBackward(g, normCoef(norms.get(l.name)!, g.shape[0]))];
    } else if (l.op === 'relu') {
      gin = [reluBackward(input, g)];
    } else if (l.op === 'upsample') {
      gin = [upsampleBackward(g)];
    } else if (l.op === 'add') {
      gin = [g, g];
    } else if (l.op === 'concat') {
      let off = 0;
      gin = inputs.map((t) => {
        const s = t64(t.shape, g.data.slice(off, off + t.data.length));
        off += t.data.length;
        return s;
      });
    } else if (poolMode(l, pooling) === 'max') {
      gin = [maxPoolBackward(g, tr.argmax.get(l.name)!, input.shape)];
    } else {
      gin = [avgPoolBackward(g, input.shape, poolGeometry(l))];
    }
    if (n.inputs.length === 0) imageGrad = gin[0];
    else n.inputs.forEach((x, k) => addTo(x, gin[k]));
  }
  return imageGrad!;
}

/** The softmax feature transform (Wang et al. 2021) of a tapped layer, or the features themselves. */
export interface RefTransform { kind: 'softmax'; temperature: number }

export function featuresReference(desc: NetDescription, convs: RefParams, image: T64, pooling: Pooling, layers: string[], transform?: RefTransform): Map<string, T64> {
  const t = netForward(desc, convs, image, pooling, deepest(desc, layers));
  return new Map(layers.map((l) => [l, transform ? softmaxChannels(t.outs.get(l)!, transform.temperature) : t.outs.get(l)!]));
}

export function gramReference(F: T64, scale = 1): T64 {
  return gram(F, scale);
}

/**
 * Loss terms and dL/d(image), exactly as GatysObjective defines them. With `targets.masked` (semantic masks), a
 * style layer listed there has the masked loss Σ_r E_r over its regions (reference/mask.ts) instead of E_l.
 */
export function gatysReference(
  desc: NetDescription, convs: RefParams, image: T64, pooling: Pooling, cfg: LossConfig,
  targets: { content: Map<string, T64>; style: Map<string, T64>; masked?: Map<string, { mask: ArrayLike<number>; target: T64 }[]> },
): { terms: LossTerms; grad: T64 } {
  const T = cfg.featureTransform === 'softmax' ? cfg.softmaxTemperature ?? 1 : undefined;
  const contentLayers = cfg.contentWeight !== 0 ? cfg.contentLayers : [];
  const styleLayers = cfg.styleWeight !== 0 ? cfg.styleLayers : [];
  const taps = [...contentLayers, ...styleLayers];
  const first = desc.layers.find((l) => l.op === 'relu')!.name;
  const tr = netForward(desc, convs, image, pooling, deepest(desc, taps.length ? taps : [first]));
  const terms: LossTerms = { content: 0, style: 0, tv: 0, total: 0 };
  const grad = netBackward(desc, convs, tr, pooling, (layer, raw) => {
    const tapped = contentLayers.includes(layer) || styleLayers.includes(layer);
    if (!tapped) return undefined;
    // With the softmax transform the losses see S = softmax(F/T) over channels; their gradient goes back through it.
    const out = T === undefined ? raw : softmaxChannels(raw, T);
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
    return T === undefined || !g ? g : softmaxChannelsBackward(out, g, T);
  }, image);
  if (cfg.tvWeight !== 0) {
    const r = tvLoss(image);
    const w = cfg.tvWeight / (cfg.normalization === 'scale-free' ? image.shape[1] * image.shape[2] : 1);
    terms.tv = r.loss;
    terms.total += w * r.loss;
    r.grad.data.forEach((v, k) => { grad.data[k] += w * v; });
  }
  return { terms, grad };
}
