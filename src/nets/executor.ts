// The one executor: turns a network description (describe.ts) and its weights into GPU buffers and recorded steps.
//   createNetwork   uploads the weights and prepares each convolution (once per network); folds each inference
//                   batch norm into the conv it directly follows
//   planNetwork     allocates activations for one image size and records the forward steps (once per size)
//   forwardFrom     the steps that run the plan on an image tensor
//   backwardInto    the backward w.r.t. the image: the layers in reverse, each op's hand-derived rule, gradients of
//                   a tensor read by several layers summed, loss gradients added at the tapped layers on the way down;
//                   optionally also the gradients w.r.t. the convolutions' weights and biases (decoder training)
// Nothing is traced: every op knows its forward and its backward (src/ops/), as Caffe's layers or llm.c's passes.
//
// Buffers: outputs that must outlive the forward (taps, what a backward reads) get their own; every other output
// lives in a pool of equal slots, each taken when its layer runs and given back after the last layer that reads it
// (a chain needs two, a residual block a few). The backward's gradients use a second pool the same way, walking in
// reverse: a tensor's gradient slot is taken by the first reader that writes into it and given back after its own
// layer's backward.
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import type { Step } from '../gpu/kernel.ts';
import { createTensor, destroyTensors, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { channelAffine, channelAffineBackward, channelCopy } from '../ops/channel.ts';
import {
  conv2dBackwardBias, conv2dBackwardInput, conv2dBackwardWeight, conv2dForward, convScratchBytes, convWeightScratchBytes, createConvScratch, inputGradMasks,
  destroyConv, prepareConv, type ConvLayer, type ConvScratch, type ConvWeightScratch,
} from '../ops/conv2d.ts';
import { normalizeBackward, normalizeForward } from '../ops/normalize.ts';
import { avgPoolBackward, avgPoolForward, createArgmax, maxPoolBackward, maxPoolForward, type PoolOptions } from '../ops/pool.ts';
import { reluBackward, reluForward } from '../ops/relu.ts';
import { upsampleBackward, upsampleForward } from '../ops/upsample.ts';
import { vecAxpby, vecAxpy, vecCopy, vecFill } from '../ops/vector.ts';
import type { ConvParams, LayerSpec, NetDescription, NetWeights, NormParams, PoolMode } from './describe.ts';
import { consumersOf, convGeometry, graphOf, layersUpTo, minimumSide, poolGeometry, resolveLayer, shapesOf, type Node } from './graph.ts';

export { describeNames, layersUpTo, minimumSide, resolveLayer } from './graph.ts';

/** A description with its weights on the GPU. */
export interface Network {
  desc: NetDescription;
  convs: Map<string, ConvLayer>;
  /** Batch norms that no conv could absorb, as channelAffine coefficients [2C] = [a..., b...]. */
  affines: Map<string, Tensor>;
  /** Batch norms folded into the conv they follow: bn layer -> conv layer (whose output now is the bn's). */
  folded: Map<string, string>;
  pretrained: boolean;
  source: string;
  /** The deepest layer the loaded weights reach (every conv and batch norm up to it has weights). */
  depth: string;
  destroy(): void;
}

/** a = γ/√(σ²+ε), b = β − μ·a: the batch norm as y = a x + b per channel. */
export function normAffine(n: NormParams): { a: Float32Array; b: Float32Array } {
  const a = new Float32Array(n.channels);
  const b = new Float32Array(n.channels);
  for (let c = 0; c < n.channels; c++) {
    a[c] = n.weight[c] / Math.sqrt(n.variance[c] + n.eps);
    b[c] = n.bias[c] - n.mean[c] * a[c];
  }
  return { a, b };
}

/** conv then bn as one conv: w' = a_o w, b' = a_o b + b_o (exact in real arithmetic). */
export function foldNorm(c: ConvParams, n: NormParams): ConvParams {
  if (n.channels !== c.cout) throw new PainterlyError(`batch norm ${n.name} has ${n.channels} channels, ${c.name} gives ${c.cout}`);
  const { a, b } = normAffine(n);
  const per = c.cin * c.k * c.k;
  const weight = Float32Array.from(c.weight, (v, i) => v * a[Math.floor(i / per)]);
  const bias = Float32Array.from(c.bias, (v, o) => v * a[o] + b[o]);
  return { ...c, weight, bias };
}

/** Batch norms that directly follow a conv nothing else reads: folded into it. */
function foldable(desc: NetDescription): Map<string, string> {
  const nodes = graphOf(desc);
  const readers = consumersOf(nodes);
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const out = new Map<string, string>();
  for (const n of nodes) {
    if (n.spec.op !== 'batchnorm') continue;
    const src = byName.get(n.inputs[0]);
    if (src?.spec.op === 'conv' && readers.get(src.name)!.length === 1) out.set(n.name, src.name);
  }
  return out;
}

export function createNetwork(gpu: Gpu, desc: NetDescription, weights: NetWeights): Network {
  const convs = new Map<string, ConvLayer>();
  const affines = new Map<string, Tensor>();
  const tensors: Tensor[] = [];
  const folds = foldable(desc);
  const foldedInto = new Map([...folds].map(([bn, conv]) => [conv, bn]));
  const folded = new Map<string, string>();
  let depth = '';
  for (const l of desc.layers) {
    if (l.op === 'conv') {
      let c = weights.convs.get(l.name);
      if (!c) break;
      if (c.k !== l.k) throw new PainterlyError(`${desc.name}: ${l.name} has ${c.k}x${c.k} weights, the network expects ${l.k}x${l.k}`);
      const bn = foldedInto.get(l.name);
      const norm = bn ? weights.norms?.get(bn) : undefined;
      if (bn && norm) {
        c = foldNorm(c, norm);
        folded.set(bn, l.name);
      }
      const w = uploadTensor(gpu, c.weight, [c.cout, c.cin, c.k, c.k], `${l.name}.weight`);
      const b = uploadTensor(gpu, c.bias, [c.cout], `${l.name}.bias`);
      tensors.push(w, b);
      const { stride, padding } = convGeometry(l);
      convs.set(l.name, prepareConv(gpu, w, b, { pad: l.pad, stride, padding }));
    } else if (l.op === 'batchnorm') {
      const norm = weights.norms?.get(l.name);
      if (!norm) break;
      if (!folded.has(l.name)) {
        const { a, b } = normAffine(norm);
        const coef = new Float32Array(2 * norm.channels);
        coef.set(a, 0);
        coef.set(b, norm.channels);
        const t = uploadTensor(gpu, coef, [2 * norm.channels], `${l.name}.affine`);
        tensors.push(t);
        affines.set(l.name, t);
      }
    }
    depth = l.name;
  }
  const destroy = () => {
    for (const c of convs.values()) destroyConv(c);
    destroyTensors(...tensors);
  };
  return { desc, convs, affines, folded, pretrained: weights.pretrained, source: weights.source, depth, destroy };
}

// ---------------------------------------------------------------------------------------------- names and shapes

/** The deepest of several layers (all must exist; aliases resolved). */
export function deepest(desc: NetDescription, names: string[], what = 'layer'): string {
  let best = -1;
  for (const n of names) best = Math.max(best, desc.layers.indexOf(layersUpTo(desc, n, what).at(-1)!));
  if (best < 0) throw new PainterlyError(`${desc.name}: expected at least one layer`);
  return desc.layers[best].name;
}

/** Spatial size after 2x2 stride-2 pooling: PyTorch's floor rule, or ceil_mode. */
export function pooledSize(h: number, w: number, ceil = false): [number, number] {
  return ceil ? [Math.ceil(h / 2), Math.ceil(w / 2)] : [Math.floor(h / 2), Math.floor(w / 2)];
}

/** [C,H,W] of every layer's output up to `upTo` for an h x w input; channel counts from the loaded weights. */
export function layerShapes(net: Network | NetDescription, h: number, w: number, upTo: string): Map<string, number[]> {
  const desc = 'desc' in net ? net.desc : net;
  const r = shapesOf(desc, h, w, upTo, 'desc' in net ? net.convs : undefined);
  if (r.tooSmall) {
    throw new PainterlyError(`image ${w}x${h} is too small for ${r.tooSmall}: needs at least ${minimumSide(desc, r.tooSmall)} px per side`);
  }
  for (const [alias, canon] of Object.entries(desc.aliases ?? {})) if (r.shapes.has(canon)) r.shapes.set(alias, r.shapes.get(canon)!);
  return r.shapes;
}

/**
 * The layers that run: the description's nodes up to `upTo` with folded batch norms removed (readers of a folded
 * bn read its conv, whose output is the bn's).
 */
function execNodes(net: Network, upTo: string): Node[] {
  const sub = (n: string) => net.folded.get(n) ?? n;
  return graphOf(net.desc, layersUpTo(net.desc, upTo))
    .filter((n) => !net.folded.has(n.name))
    .map((n) => ({ ...n, inputs: n.inputs.map(sub) }));
}

/** The running layer whose output a (possibly aliased or folded) layer name denotes; refuses a conv a bn was folded into. */
export function tapTarget(net: Network, name: string): string {
  const canon = resolveLayer(net.desc, name);
  for (const [bn, conv] of net.folded) {
    if (conv === canon) throw new PainterlyError(`${net.desc.name}: ${name} is followed by batch norm ${bn}, folded into it; tap ${bn} or a later layer`);
  }
  return net.folded.get(canon) ?? canon;
}

// ---------------------------------------------------------------------------------------------- planning

export interface PlanOptions {
  h: number;
  w: number;
  /** Pooling of the layers whose description leaves it open (Gatys' --pooling); default max. */
  pooling?: PoolMode;
  /** Deepest layer to compute. */
  upTo: string;
  /** Layers whose outputs must stay readable after the forward (loss taps, features). */
  taps: string[];
  /** Whether backward steps will be recorded (keeps what they need, allocates the gradient buffers). */
  backward: boolean;
  /**
   * Whether the backward may also record the convolutions' weight gradients (backwardInto's `weights`): keeps every
   * conv's input readable after the forward. Needs `backward`.
   */
  weightGrads?: boolean;
}

/** Everything one image size needs: activations, and the recorded forward after the first layer. */
export interface NetPlan {
  h: number;
  w: number;
  /** The layers that run (folded batch norms removed), in order. */
  layers: LayerSpec[];
  /** Output shape of each layer by name (folded batch norms and aliases included). */
  shapes: Map<string, number[]>;
  /** Outputs of tapped layers, by the names asked for (and, for backward plans, of layers whose backward reads them). */
  acts: Map<string, Tensor>;
  /** Forward steps of layers 1..n (layer 0 reads the image tensor: see forwardFrom). */
  forward: Step[];
  /** Bytes this plan allocated on the GPU (activations, scratch, gradient buffers, the shared conv scratch). */
  bytes: number;
  destroy(): void;
  internal: {
    net: Network; pooling: PoolMode; nodes: Node[]; argmax: Map<string, GPUBuffer>; weightGrads: boolean;
    /** Running layer -> the tap names that denote its output (what lossAt is called with). */
    tapNames: Map<string, string[]>;
    /** Gradient slots (maxElems floats each) and which slot holds each layer's gradient. */
    gradSlots: GPUBuffer[]; grads?: GradSchedule;
    /** Winograd scratch shared by every conv step of the plan, forward and backward (sized for the largest). */
    convScratch: ConvScratch;
    /** Winograd weight-gradient scratch shared by the weight gradients (weightGrads plans whose convs run it). */
    weightScratch?: ConvWeightScratch;
    /** The output tensor of every running layer (slot views included), for binding layer 0 and the backward. */
    outs: Map<string, Tensor>;
  };
}

function poolMode(l: LayerSpec & { op: 'pool' }, plan: PoolMode): PoolMode {
  return l.mode ?? plan;
}

function poolOptions(l: LayerSpec & { op: 'pool' }): PoolOptions {
  const g = poolGeometry(l);
  return { ceil: g.ceil, kernel: g.kernel, stride: g.stride, padding: g.padding };
}

/** The forward steps of one layer reading xs and writing y. */
function layerForward(
  gpu: Gpu, net: Network, l: LayerSpec, xs: Tensor[], y: Tensor, pooling: PoolMode, scratch: ConvScratch, argmax?: GPUBuffer,
): Step[] {
  const x = xs[0];
  switch (l.op) {
    case 'normalize': return [normalizeForward(gpu, x, y, l.mean, l.std)];
    case 'conv': return conv2dForward(gpu, net.convs.get(l.name)!, x, y, scratch);
    case 'batchnorm': return channelAffine(gpu, x, net.affines.get(l.name)!, y);
    case 'relu': return [reluForward(gpu, x, y)];
    case 'upsample': return upsampleForward(gpu, x, y);
    case 'add': return [vecAxpby(gpu, 1, x, 1, xs[1], y)];
    case 'concat': {
      let c0 = 0;
      return xs.map((t) => {
        const step = channelCopy(gpu, t, y, { dstC0: c0 });
        c0 += t.shape[0];
        return step;
      });
    }
    case 'pool':
      return poolMode(l, pooling) === 'max'
        ? maxPoolForward(gpu, x, y, argmax!, poolOptions(l))
        : avgPoolForward(gpu, x, y, poolOptions(l));
  }
}

/** Whether the backward of layer l reads its own output. */
function backwardReadsOutput(l: LayerSpec): boolean {
  return l.op === 'relu';
}

/** A pool of equal-sized slots handed out and given back by index (pure bookkeeping; buffers made by the caller). */
class SlotPool {
  count = 0;
  private free: number[] = [];
  take(): number {
    return this.free.length ? this.free.pop()! : this.count++;
  }
  give(i: number): void {
    this.free.push(i);
  }
}

/**
 * Which gradient slot holds each layer's gradient during the reverse walk, whether a reader's contribution needs a
 * temporary slot (the layer's gradient already holds another reader's), and which gradients start at zero (layers
 * no running reader writes: the top, and taps nothing reads). A pure function of the graph, so planNetwork can size
 * the pool and backwardInto replays it.
 */
interface GradSchedule {
  slots: number;
  slotOf: Map<string, number>;
  /**
   * Per layer index, per input: whether that input's gradient already holds another reader's part (then `add` and
   * `concat` accumulate into it, other ops write `temp` and add it), or is written here first.
   */
  writes: Map<number, { accumulate: boolean; temp?: number }[]>;
  zeroed: Set<string>;
  /**
   * ReLU -> the conv before it, where the ReLU's backward is fused into that conv's input gradient: the conv's
   * gradient is the ReLU's own slot, unmasked (the conv reads it with the ReLU's output as mask), and stays live
   * until the conv's input gradient has read it.
   */
  masked: Map<string, Node>;
}

function gradSchedule(nodes: Node[], masked = new Map<string, Node>()): GradSchedule {
  const pool = new SlotPool();
  const slotOf = new Map<string, number>();
  const writes = new Map<number, { accumulate: boolean; temp?: number }[]>();
  const zeroed = new Set<string>();
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    if (!slotOf.has(n.name)) {
      slotOf.set(n.name, pool.take());
      zeroed.add(n.name);
    }
    const conv = masked.get(n.name);
    if (conv) {
      // The conv's only reader is this ReLU (planNetwork checks), so its gradient is this slot as it stands.
      slotOf.set(conv.name, slotOf.get(n.name)!);
      writes.set(i, [{ accumulate: false }]);
      continue;   // the slot passes to the conv, which gives it back
    }
    if (i > 0) {
      const native = n.spec.op === 'add' || n.spec.op === 'concat'; // accumulate in place (axpy, channelCopy)
      const w = n.inputs.map((input) => {
        // Written already by a later reader, or by an earlier input slot of this layer (x + x).
        const accumulate = slotOf.has(input);
        if (!accumulate) slotOf.set(input, pool.take());
        return { accumulate, temp: accumulate && !native ? pool.take() : undefined };
      });
      for (const x of w) if (x.temp !== undefined) pool.give(x.temp);
      writes.set(i, w);
    }
    pool.give(slotOf.get(n.name)!);
  }
  return { slots: pool.count, slotOf, writes, zeroed, masked };
}

export function planNetwork(gpu: Gpu, net: Network, o: PlanOptions): NetPlan {
  const desc = net.desc;
  const nodes = execNodes(net, tapTarget(net, o.upTo));
  const tapNames = new Map<string, string[]>();
  for (const t of new Set(o.taps)) {
    layersUpTo(desc, t); // unknown names throw
    const target = tapTarget(net, t);
    if (!nodes.some((n) => n.name === target)) throw new PainterlyError(`${desc.name}: tap ${t} is deeper than ${o.upTo}`);
    tapNames.set(target, [...(tapNames.get(target) ?? []), t]);
  }
  const missing = layersUpTo(desc, o.upTo).find((l) => (l.op === 'conv' && !net.convs.has(l.name)) ||
    (l.op === 'batchnorm' && !net.folded.has(l.name) && !net.affines.has(l.name)));
  if (missing) throw new PainterlyError(`the loaded weights stop at ${net.depth}; layer ${o.upTo} needs ${missing.name}`);
  if (o.weightGrads && !o.backward) throw new PainterlyError('planNetwork: weightGrads needs backward: true');
  const pooling = o.pooling ?? 'max';
  const shapes = layerShapes(net, o.h, o.w, resolveLayer(desc, o.upTo));
  const numel = (s: number[]) => s[0] * s[1] * s[2];
  let maxElems = o.h * o.w * desc.inputChannels;
  for (const s of shapes.values()) maxElems = Math.max(maxElems, numel(s));

  const owned: Tensor[] = [];
  const buffers: GPUBuffer[] = [];
  const argmax = new Map<string, GPUBuffer>();
  let bytes = 0;
  const alloc = (shape: number[], label: string) => {
    const t = createTensor(gpu, shape, label);
    owned.push(t);
    bytes += t.buffer.size;
    return t;
  };
  // Outputs nobody reads after the forward live in slots, given back after their last reader.
  const slots: Tensor[] = [];
  const pool = new SlotPool();
  const view = (buffer: GPUBuffer, shape: number[], label: string): Tensor => ({ buffer, shape, size: numel(shape), label });
  // One Winograd scratch for all conv steps (both directions when backward): the largest any of them needs.
  const need = { v: 0, m: 0 };
  for (const n of nodes) {
    if (n.spec.op !== 'conv') continue;
    const [, H, W] = n.inputs.length ? shapes.get(n.inputs[0])! : [0, o.h, o.w];
    const [, Ho, Wo] = shapes.get(n.name)!;
    for (const dir of o.backward ? ['forward', 'input'] as const : ['forward'] as const) {
      // The forward's size is the input's, the input gradient's the output's (the same but for strided convs).
      const b = convScratchBytes(gpu, net.convs.get(n.name)!, dir, dir === 'forward' ? H : Ho, dir === 'forward' ? W : Wo);
      need.v = Math.max(need.v, b.v);
      need.m = Math.max(need.m, b.m);
    }
  }
  const convScratch = createConvScratch(gpu, need, `${desc.name}.conv-scratch`);
  bytes += convScratch.v.size + convScratch.m.size;
  let weightScratch: ConvWeightScratch | undefined;
  if (o.weightGrads) {
    const wneed = { v: 0, m: 0, u: 0 };
    for (const n of nodes) {
      if (n.spec.op !== 'conv' || (n.spec.stride ?? 1) !== 1) continue; // strided convs have no weight gradient (refused)
      const c = net.convs.get(n.name)!;
      const [, H, W] = n.inputs.length ? shapes.get(n.inputs[0])! : [0, o.h, o.w];
      const b = convWeightScratchBytes(gpu, c.cin, c.cout, c.k, H, W);
      wneed.v = Math.max(wneed.v, b.v);
      wneed.m = Math.max(wneed.m, b.m);
      wneed.u = Math.max(wneed.u, b.u);
    }
    if (wneed.v > 0) {
      const vm = createConvScratch(gpu, wneed, `${desc.name}.weight-grad-scratch`);
      const u = gpu.device.createBuffer({ label: `${desc.name}.weight-grad-scratch.dU`, size: wneed.u, usage: GPUBufferUsage.STORAGE });
      weightScratch = { ...vm, u };
      buffers.push(vm.v, vm.m, u);
      bytes += vm.v.size + vm.m.size + u.size;
    }
  }

  const readers = consumersOf(nodes);
  const opOf = new Map(nodes.map((n) => [n.name, n.spec.op]));
  // A conv whose only reader is the ReLU right after it (and not tapped) writes max(conv, 0) straight into the ReLU's
  // output: one dispatch and one pass over the tensor fewer; the ReLU's backward reads that output as before.
  const fused = new Map<string, Node>(); // relu -> the conv it absorbs
  nodes.forEach((n, i) => {
    const next = nodes[i + 1];
    if (i > 0 && n.spec.op === 'conv' && next?.spec.op === 'relu' && next.inputs[0] === n.name &&
      readers.get(n.name)!.length === 1 && !tapNames.has(n.name)) fused.set(next.name, n);
  });
  const absorbed = new Set([...fused.values()].map((c) => c.name));
  const lastRead = new Map<string, number>();
  nodes.forEach((n, i) => n.inputs.forEach((x) => lastRead.set(x, i)));
  nodes.forEach((n, i) => fused.get(n.name)?.inputs.forEach((x) => lastRead.set(x, Math.max(lastRead.get(x)!, i))));
  const acts = new Map<string, Tensor>();
  const outs = new Map<string, Tensor>();
  const slotOf = new Map<string, number>();
  const forward: Step[] = [];
  nodes.forEach((n, i) => {
    if (absorbed.has(n.name)) return; // computed by its ReLU's step
    const shape = shapes.get(n.name)!;
    const keep = tapNames.has(n.name) || (o.backward && backwardReadsOutput(n.spec)) ||
      (!!o.weightGrads && readers.get(n.name)!.some((r) => opOf.get(r) === 'conv')); // a conv's weight gradient reads its input
    let out: Tensor;
    if (keep) {
      out = alloc(shape, n.name);
    } else {
      const s = pool.take();
      if (s === slots.length) slots.push(alloc([maxElems], `${desc.name}.slot${s}`));
      slotOf.set(n.name, s);
      out = view(slots[s].buffer, shape, n.name);
    }
    if (n.spec.op === 'pool' && poolMode(n.spec, pooling) === 'max') {
      const am = createArgmax(gpu, out);
      bytes += am.size;
      buffers.push(am);
      argmax.set(n.name, am);
    }
    for (const t of tapNames.get(n.name) ?? []) acts.set(t, out);
    if (keep) acts.set(n.name, out);
    const conv = fused.get(n.name);
    if (conv) {
      forward.push(...conv2dForward(gpu, net.convs.get(conv.name)!, outs.get(conv.inputs[0])!, out, convScratch, { relu: true }));
    } else if (i > 0) {
      forward.push(...layerForward(gpu, net, n.spec, n.inputs.map((x) => outs.get(x)!), out, pooling, convScratch, argmax.get(n.name)));
    }
    outs.set(n.name, out);
    // Give back the slots of inputs read for the last time here (after the output took its own, so never aliased),
    // and of outputs nothing reads.
    for (const x of new Set([...n.inputs, ...(conv?.inputs ?? []), ...(readers.get(n.name)!.length ? [] : [n.name])])) {
      if (slotOf.has(x) && (lastRead.get(x) ?? i) <= i) pool.give(slotOf.get(x)!);
    }
  });
  let grads: GradSchedule | undefined;
  const gradSlots: GPUBuffer[] = [];
  if (o.backward) {
    // A fused conv+ReLU whose input gradient runs Winograd reads the ReLU's output gradient masked by the ReLU's
    // output in its input transform: the ReLU's backward dispatch and its two passes over the tensor go. Not with
    // weight gradients (they need the masked gradient itself).
    const masked = new Map<string, Node>();
    if (!o.weightGrads) {
      for (const [relu, conv] of fused) {
        const [, h, w] = shapes.get(conv.inputs[0]) ?? [desc.inputChannels, o.h, o.w];
        if (inputGradMasks(gpu, net.convs.get(conv.name)!, h, w)) masked.set(relu, conv);
      }
    }
    grads = gradSchedule(nodes, masked);
    for (let k = 0; k < grads.slots; k++) gradSlots.push(alloc([maxElems], `${desc.name}.grad${k}`).buffer);
  }
  return {
    h: o.h, w: o.w, layers: nodes.map((n) => n.spec), shapes, acts, forward, bytes,
    destroy: () => {
      destroyTensors(...owned);
      for (const b of buffers) b.destroy();
      convScratch.v.destroy();
      convScratch.m.destroy();
    },
    internal: { net, pooling, nodes, argmax, weightGrads: !!o.weightGrads, tapNames, gradSlots, grads, convScratch, weightScratch, outs },
  };
}

function checkImage(plan: NetPlan, image: Tensor): void {
  const [c, h, w] = image.shape;
  const want = plan.internal.net.desc.inputChannels;
  if (image.shape.length !== 3 || c !== want || h !== plan.h || w !== plan.w) {
    throw new PainterlyError(`image tensor [${image.shape}] does not fit a plan for ${want}x${plan.h}x${plan.w}`);
  }
}

/** The steps that run the plan on `image` (layer 0 reads it), then the recorded rest. */
export function forwardFrom(gpu: Gpu, plan: NetPlan, image: Tensor): Step[] {
  checkImage(plan, image);
  const { net, pooling, argmax, outs, convScratch, nodes } = plan.internal;
  const l0 = nodes[0];
  return [...layerForward(gpu, net, l0.spec, [image], outs.get(l0.name)!, pooling, convScratch, argmax.get(l0.name)), ...plan.forward];
}

/**
 * Called at each tapped layer (deepest first) during the backward pass with the layer's output and its gradient
 * buffer, which already holds the gradient from above (or zeros at the top). Returns the steps that add loss
 * gradients.
 */
export type LossAt = (layer: string, act: Tensor, grad: Tensor) => Step[];

export interface BackwardProgram {
  /** The whole backward, zero-filling the gradients no reader writes (the top) itself. */
  steps: Step[];
}

/** Where backwardInto writes a conv's parameter gradients (overwritten): dL/dW [Cout,Cin,K,K], dL/db [Cout]. */
export interface ConvGrads { weight: Tensor; bias?: Tensor }

export interface BackwardOptions {
  /** Conv layers whose weight (and bias) gradients to record; the plan must have been made with weightGrads. */
  weights?: Map<string, ConvGrads>;
  /** The image the forward ran on: needed when the first layer is a conv in `weights` (it reads the image). */
  image?: Tensor;
}

/** The backward steps of one layer for input k: gIn = (∂y/∂x_k)ᵀ gOut, overwriting gIn (add, concat: accumulating if `acc`). */
function layerBackward(gpu: Gpu, plan: NetPlan, i: number, k: number, gOut: Tensor, gIn: Tensor, acc: boolean): Step[] {
  const { net, pooling, argmax, outs, convScratch, nodes } = plan.internal;
  const n = nodes[i];
  const l = n.spec;
  switch (l.op) {
    case 'normalize': return [normalizeBackward(gpu, gOut, gIn, l.mean, l.std)];
    case 'conv': {
      // A masked ReLU is the node right after its conv (planNetwork fuses only such pairs).
      const relu = nodes[i + 1]?.name;
      const masked = relu !== undefined && plan.internal.grads!.masked.get(relu) === n;
      return conv2dBackwardInput(gpu, net.convs.get(l.name)!, gOut, gIn, convScratch, masked ? { reluOutput: outs.get(relu)! } : {});
    }
    case 'batchnorm': return channelAffineBackward(gpu, gOut, net.affines.get(l.name)!, gIn);
    case 'relu': return plan.internal.grads!.masked.has(n.name) ? [] : [reluBackward(gpu, outs.get(n.name)!, gOut, gIn)];
    case 'upsample': return upsampleBackward(gpu, gOut, gIn);
    case 'add': return [acc ? vecAxpy(gpu, 1, gOut, gIn) : vecCopy(gpu, gOut, gIn)];
    case 'concat': {
      const c0 = n.inputs.slice(0, k).reduce((a, x) => a + outs.get(x)!.shape[0], 0);
      return [channelCopy(gpu, gOut, gIn, { srcC0: c0, channels: gIn.shape[0], accumulate: acc })];
    }
    case 'pool':
      return poolMode(l, pooling) === 'max'
        ? maxPoolBackward(gpu, gOut, argmax.get(n.name)!, gIn, poolOptions(l))
        : avgPoolBackward(gpu, gOut, gIn, poolOptions(l));
  }
}

/**
 * The backward pass in exactly the reverse order of the forward, adding loss gradients at the taps; ends by writing
 * dL/d(image) into `imageGrad`.
 */
export function backwardInto(gpu: Gpu, plan: NetPlan, lossAt: LossAt, imageGrad: Tensor, o: BackwardOptions = {}): BackwardProgram {
  checkImage(plan, imageGrad);
  const { grads, gradSlots, nodes, tapNames, outs, net } = plan.internal;
  if (!grads) throw new PainterlyError('backwardInto: the plan was made without backward: true');
  const wanted = o.weights ?? new Map<string, ConvGrads>();
  if (wanted.size && !plan.internal.weightGrads) throw new PainterlyError('backwardInto: weight gradients need a plan made with weightGrads: true');
  for (const name of wanted.keys()) {
    const n = nodes.find((x) => x.name === name);
    if (n?.spec.op !== 'conv') throw new PainterlyError(`backwardInto: ${name} is not a convolution of the plan (${net.desc.name} up to ${nodes.at(-1)!.name})`);
    const bn = [...net.folded].find(([, conv]) => conv === name);
    if (bn) throw new PainterlyError(`backwardInto: no weight gradient for ${name}: batch norm ${bn[0]} is folded into it`);
  }
  if (wanted.has(nodes[0].name)) {
    if (!o.image) throw new PainterlyError(`backwardInto: the weight gradient of ${nodes[0].name} reads the image: pass it as image`);
    checkImage(plan, o.image);
  }
  const g = (name: string, slot = grads.slotOf.get(name)!): Tensor => {
    const shape = plan.shapes.get(name)!;
    return { buffer: gradSlots[slot], shape, size: shape[0] * shape[1] * shape[2], label: `d${name}` };
  };
  const steps: Step[] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    const gOut = g(n.name);
    if (grads.zeroed.has(n.name)) steps.push(vecFill(gpu, gOut, 0));
    const act = plan.acts.get(n.name);
    for (const t of tapNames.get(n.name) ?? []) steps.push(...lossAt(t, plan.acts.get(t) ?? act!, gOut));
    const wg = wanted.get(n.name);
    if (wg && n.spec.op === 'conv') {
      // gOut is complete here (every reader and loss has added to it); x is kept by the weightGrads plan.
      const x = i === 0 ? o.image! : outs.get(n.inputs[0])!;
      steps.push(...conv2dBackwardWeight(gpu, x, gOut, wg.weight, n.spec.pad, { ...convGeometry(n.spec), scratch: plan.internal.weightScratch }));
      if (wg.bias) steps.push(...conv2dBackwardBias(gpu, gOut, wg.bias));
    }
    if (i === 0) {
      steps.push(...layerBackward(gpu, plan, 0, 0, gOut, imageGrad, false));
      continue;
    }
    grads.writes.get(i)!.forEach(({ accumulate, temp }, k) => {
      const input = n.inputs[k];
      if (temp === undefined) {
        steps.push(...layerBackward(gpu, plan, i, k, gOut, g(input), accumulate));
      } else {
        const t = g(input, temp);
        steps.push(...layerBackward(gpu, plan, i, k, gOut, t, false), vecAxpy(gpu, 1, t, g(input)));
      }
    });
  }
  return { steps };
}
