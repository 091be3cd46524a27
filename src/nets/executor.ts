// The one executor: turns a network description (describe.ts) and its weights into GPU buffers and recorded steps.
//   createNetwork   uploads the weights and prepares each convolution (once per network)
//   planNetwork     allocates activations for one image size and records the forward steps (once per size)
//   forwardFrom     the steps that run the plan on an image tensor
//   backwardInto    the backward w.r.t. the image: the layers in reverse, each op's hand-derived rule, loss
//                   gradients added at the tapped layers on the way down
// Nothing is traced: every op knows its forward and its backward (src/ops/), as Caffe's layers or llm.c's passes.
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import type { Step } from '../gpu/kernel.ts';
import { createTensor, destroyTensors, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { conv2dBackwardInput, conv2dForward, convScratchBytes, createConvScratch, destroyConv, prepareConv, type ConvLayer, type ConvScratch } from '../ops/conv2d.ts';
import { normalizeBackward, normalizeForward } from '../ops/normalize.ts';
import { avgPoolBackward, avgPoolForward, createArgmax, maxPoolBackward, maxPoolForward } from '../ops/pool.ts';
import { reluBackward, reluForward } from '../ops/relu.ts';
import { upsampleBackward, upsampleForward } from '../ops/upsample.ts';
import type { LayerSpec, NetDescription, NetWeights, PoolMode } from './describe.ts';

/** A description with its weights on the GPU. */
export interface Network {
  desc: NetDescription;
  convs: Map<string, ConvLayer>;
  pretrained: boolean;
  source: string;
  /** The deepest layer the loaded weights reach (every conv up to it has weights). */
  depth: string;
  destroy(): void;
}

export function createNetwork(gpu: Gpu, desc: NetDescription, weights: NetWeights): Network {
  const convs = new Map<string, ConvLayer>();
  const tensors: Tensor[] = [];
  let depth = '';
  for (const l of desc.layers) {
    if (l.op === 'conv') {
      const c = weights.convs.get(l.name);
      if (!c) break;
      if (c.k !== l.k) throw new PainterlyError(`${desc.name}: ${l.name} has ${c.k}x${c.k} weights, the network expects ${l.k}x${l.k}`);
      const w = uploadTensor(gpu, c.weight, [c.cout, c.cin, c.k, c.k], `${l.name}.weight`);
      const b = uploadTensor(gpu, c.bias, [c.cout], `${l.name}.bias`);
      tensors.push(w, b);
      convs.set(l.name, prepareConv(gpu, w, b, { pad: l.pad }));
    }
    depth = l.name;
  }
  const destroy = () => {
    for (const c of convs.values()) destroyConv(c);
    destroyTensors(...tensors);
  };
  return { desc, convs, pretrained: weights.pretrained, source: weights.source, depth, destroy };
}

// ---------------------------------------------------------------------------------------------- names and shapes

export function layerNames(desc: NetDescription): string[] {
  return desc.layers.map((l) => l.name);
}

/** The layers from the input up to and including `name`. */
export function layersUpTo(desc: NetDescription, name: string, what = 'layer'): LayerSpec[] {
  const i = desc.layers.findIndex((l) => l.name === name);
  if (i < 0) throw new PainterlyError(`unknown ${what} "${name}" for ${desc.name}; valid: ${describeNames(desc)}`);
  return desc.layers.slice(0, i + 1);
}

/** A compact list of a description's layer names for error messages (runs like conv1_1..conv1_2 kept short). */
export function describeNames(desc: NetDescription): string {
  const byOp = new Map<string, string[]>();
  for (const l of desc.layers) byOp.set(l.op, [...(byOp.get(l.op) ?? []), l.name]);
  return [...byOp.entries()].filter(([op]) => op !== 'normalize')
    .map(([, names]) => (names.length > 2 ? `${names[0]}..${names[names.length - 1]}` : names.join(', '))).join(', ');
}

/** The deepest of several layers (all must exist). */
export function deepest(desc: NetDescription, names: string[], what = 'layer'): string {
  let best = -1;
  for (const n of names) best = Math.max(best, desc.layers.indexOf(layersUpTo(desc, n, what).at(-1)!));
  if (best < 0) throw new PainterlyError(`${desc.name}: expected at least one layer`);
  return desc.layers[best].name;
}

/** The deepest convolution computing `name` needs (whose weights must be loaded). */
export function lastConvUpTo(desc: NetDescription, name: string): string | undefined {
  return layersUpTo(desc, name).filter((l) => l.op === 'conv').at(-1)?.name;
}

/** Spatial size after 2x2 stride-2 pooling: PyTorch's floor rule, or ceil_mode. */
export function pooledSize(h: number, w: number, ceil = false): [number, number] {
  return ceil ? [Math.ceil(h / 2), Math.ceil(w / 2)] : [Math.floor(h / 2), Math.floor(w / 2)];
}

/** [C,H,W] of every layer's output up to `upTo` for an h x w input; channel counts from the loaded weights. */
export function layerShapes(net: Network | NetDescription, h: number, w: number, upTo: string): Map<string, number[]> {
  const desc = 'desc' in net ? net.desc : net;
  const convs = 'desc' in net ? net.convs : undefined;
  const shapes = new Map<string, number[]>();
  let c = desc.inputChannels;
  const [h0, w0] = [h, w];
  for (const l of layersUpTo(desc, upTo)) {
    if (l.op === 'pool') {
      [h, w] = pooledSize(h, w, l.ceil);
      if (h < 1 || w < 1) {
        throw new PainterlyError(`image ${w0}x${h0} is too small for ${l.name}: needs at least ${minimumSide(desc, l.name)} px per side`);
      }
    } else if (l.op === 'upsample') {
      [h, w] = [2 * h, 2 * w];
    } else if (l.op === 'conv') {
      if (l.pad === 'reflect' && Math.min(h, w) <= (l.k - 1) / 2) {
        throw new PainterlyError(`image ${w0}x${h0} is too small for ${l.name}: needs at least ${minimumSide(desc, l.name)} px per side`);
      }
      const cv = convs?.get(l.name);
      if (cv && cv.cin !== c) throw new PainterlyError(`${desc.name}: ${l.name} expects ${cv.cin} input channels, the layer before gives ${c}`);
      c = cv?.cout ?? l.cout;
    }
    shapes.set(l.name, [c, h, w]);
  }
  return shapes;
}

/** Poolings between the input and a layer's output (its "level"). */
export function levelOf(desc: NetDescription, name: string): number {
  return layersUpTo(desc, name).filter((l) => l.op === 'pool').length;
}

/** Smallest image side that leaves at least one position at `name` (and a 2-px plane for each reflection pad). */
export function minimumSide(desc: NetDescription, name: string): number {
  let need = 1;
  let scale = 1;
  for (const l of layersUpTo(desc, name)) {
    if (l.op === 'pool') scale *= 2;
    if (l.op === 'upsample') scale /= 2;
    if (l.op === 'conv' && l.pad === 'reflect' && l.k > 1) need = Math.max(need, ((l.k - 1) / 2 + 1) * scale);
  }
  return Math.max(need, scale);
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
}

/** Everything one image size needs: activations, and the recorded forward after the first layer. */
export interface NetPlan {
  h: number;
  w: number;
  layers: LayerSpec[];
  /** Output shape of each layer by name. */
  shapes: Map<string, number[]>;
  /** Outputs of tapped layers (and, for backward plans, of the layers whose backward reads them). */
  acts: Map<string, Tensor>;
  /** Forward steps of layers 1..n (layer 0 reads the image tensor: see forwardFrom). */
  forward: Step[];
  /** Bytes this plan allocated on the GPU (activations, scratch, gradient buffers, the shared conv scratch). */
  bytes: number;
  destroy(): void;
  internal: {
    net: Network; pooling: PoolMode; argmax: Map<string, GPUBuffer>; gradA?: GPUBuffer; gradB?: GPUBuffer;
    /** Winograd scratch shared by every conv step of the plan, forward and backward (sized for the largest). */
    convScratch: ConvScratch;
    /** The output tensor of every layer (scratch views included), for binding layer 0 and the backward. */
    outs: Tensor[];
  };
}

function poolMode(l: LayerSpec & { op: 'pool' }, plan: PoolMode): PoolMode {
  return l.mode ?? plan;
}

/** The forward steps of one layer reading x and writing y. */
function layerForward(
  gpu: Gpu, net: Network, l: LayerSpec, x: Tensor, y: Tensor, pooling: PoolMode, scratch: ConvScratch, argmax?: GPUBuffer,
): Step[] {
  switch (l.op) {
    case 'normalize': return [normalizeForward(gpu, x, y, l.mean, l.std)];
    case 'conv': return conv2dForward(gpu, net.convs.get(l.name)!, x, y, scratch);
    case 'relu': return [reluForward(gpu, x, y)];
    case 'upsample': return upsampleForward(gpu, x, y);
    case 'pool':
      return poolMode(l, pooling) === 'max'
        ? maxPoolForward(gpu, x, y, argmax!, { ceil: !!l.ceil })
        : avgPoolForward(gpu, x, y, { ceil: !!l.ceil });
  }
}

/** Whether the backward of layer l reads its own output. */
function backwardReadsOutput(l: LayerSpec): boolean {
  return l.op === 'relu';
}

export function planNetwork(gpu: Gpu, net: Network, o: PlanOptions): NetPlan {
  const desc = net.desc;
  const layers = layersUpTo(desc, o.upTo);
  const taps = new Set(o.taps);
  for (const t of taps) if (!layers.some((l) => l.name === t)) layersUpTo(desc, t); // unknown names throw
  const missing = layers.find((l) => l.op === 'conv' && !net.convs.has(l.name));
  if (missing) throw new PainterlyError(`the loaded weights stop at ${net.depth}; layer ${o.upTo} needs ${missing.name}`);
  const pooling = o.pooling ?? 'max';
  const shapes = layerShapes(net, o.h, o.w, o.upTo);
  const numel = (s: number[]) => s[0] * s[1] * s[2];
  let maxElems = o.h * o.w * desc.inputChannels;
  for (const s of shapes.values()) maxElems = Math.max(maxElems, numel(s));

  const owned: Tensor[] = [];
  const argmax = new Map<string, GPUBuffer>();
  let bytes = 0;
  const alloc = (shape: number[], label: string) => {
    const t = createTensor(gpu, shape, label);
    owned.push(t);
    bytes += t.buffer.size;
    return t;
  };
  // Outputs nobody reads later live in two ping-pong scratch buffers (allocated only if used).
  const scratch: (Tensor | undefined)[] = [undefined, undefined];
  const scratchView = (i: number, shape: number[], label: string): Tensor => {
    scratch[i] ??= alloc([maxElems], `${desc.name}.scratch${i}`);
    return { buffer: scratch[i]!.buffer, shape, size: numel(shape), label };
  };
  // One Winograd scratch for all conv steps (both directions when backward): the largest any of them needs.
  const need = { v: 0, m: 0 };
  for (const l of layers) {
    if (l.op !== 'conv') continue;
    const [, H, W] = shapes.get(l.name)!;
    for (const dir of o.backward ? ['forward', 'input'] as const : ['forward'] as const) {
      const b = convScratchBytes(gpu, net.convs.get(l.name)!, dir, H, W);
      need.v = Math.max(need.v, b.v);
      need.m = Math.max(need.m, b.m);
    }
  }
  const convScratch = createConvScratch(gpu, need, `${desc.name}.conv-scratch`);
  bytes += convScratch.v.size + convScratch.m.size;
  const acts = new Map<string, Tensor>();
  const outs: Tensor[] = [];
  const forward: Step[] = [];
  let prev: Tensor | undefined;
  layers.forEach((l, i) => {
    const shape = shapes.get(l.name)!;
    const keep = taps.has(l.name) || (o.backward && backwardReadsOutput(l));
    let out: Tensor;
    if (keep) out = alloc(shape, l.name);
    else out = scratchView(prev && scratch[0] && prev.buffer === scratch[0].buffer ? 1 : 0, shape, l.name);
    if (l.op === 'pool' && poolMode(l, pooling) === 'max') {
      const am = createArgmax(gpu, out);
      bytes += am.size;
      argmax.set(l.name, am);
    }
    if (keep) acts.set(l.name, out);
    if (i > 0) forward.push(...layerForward(gpu, net, l, prev!, out, pooling, convScratch, argmax.get(l.name)));
    outs.push(out);
    prev = out;
  });
  const grads = o.backward ? [alloc([maxElems], `${desc.name}.grad-a`), alloc([maxElems], `${desc.name}.grad-b`)] : [];
  return {
    h: o.h, w: o.w, layers, shapes, acts, forward, bytes,
    destroy: () => {
      destroyTensors(...owned);
      for (const b of argmax.values()) b.destroy();
      convScratch.v.destroy();
      convScratch.m.destroy();
    },
    internal: { net, pooling, argmax, gradA: grads[0]?.buffer, gradB: grads[1]?.buffer, convScratch, outs },
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
  const l0 = plan.layers[0];
  const { net, pooling, argmax, outs, convScratch } = plan.internal;
  return [...layerForward(gpu, net, l0, image, outs[0], pooling, convScratch, argmax.get(l0.name)), ...plan.forward];
}

/**
 * Called at each tapped layer (deepest first) during the backward pass with the layer's output and its gradient
 * buffer, which already holds the gradient from above (or zeros at the top). Returns the steps that add loss
 * gradients.
 */
export type LossAt = (layer: string, act: Tensor, grad: Tensor) => Step[];

export interface BackwardProgram {
  /** Buffers to clear before the steps run (the top layer's gradient). */
  clears: GPUBuffer[];
  steps: Step[];
}

/** The backward steps of one layer: gIn = (∂y/∂x)ᵀ gOut, overwriting gIn. */
function layerBackward(gpu: Gpu, plan: NetPlan, i: number, gOut: Tensor, gIn: Tensor): Step[] {
  const l = plan.layers[i];
  const { net, pooling, argmax, outs, convScratch } = plan.internal;
  switch (l.op) {
    case 'normalize': return [normalizeBackward(gpu, gOut, gIn, l.mean, l.std)];
    case 'conv': return conv2dBackwardInput(gpu, net.convs.get(l.name)!, gOut, gIn, convScratch);
    case 'relu': return [reluBackward(gpu, outs[i], gOut, gIn)];
    case 'upsample': return upsampleBackward(gpu, gOut, gIn);
    case 'pool':
      return poolMode(l, pooling) === 'max'
        ? maxPoolBackward(gpu, gOut, argmax.get(l.name)!, gIn, { ceil: !!l.ceil })
        : avgPoolBackward(gpu, gOut, gIn, { ceil: !!l.ceil });
  }
}

/**
 * The backward pass in exactly the reverse order of the forward, adding loss gradients at the taps; ends by writing
 * dL/d(image) into `imageGrad`.
 */
export function backwardInto(gpu: Gpu, plan: NetPlan, lossAt: LossAt, imageGrad: Tensor): BackwardProgram {
  checkImage(plan, imageGrad);
  const { gradA, gradB } = plan.internal;
  if (!gradA || !gradB) throw new PainterlyError('backwardInto: the plan was made without backward: true');
  const bufs = [gradA, gradB];
  const view = (k: number, shape: number[], label: string): Tensor => ({ buffer: bufs[k % 2], shape, size: shape[0] * shape[1] * shape[2], label });
  const steps: Step[] = [];
  const n = plan.layers.length;
  for (let i = n - 1; i >= 0; i--) {
    const l = plan.layers[i];
    const k = n - 1 - i;
    const g = view(k, plan.shapes.get(l.name)!, `d${l.name}`);
    const act = plan.acts.get(l.name);
    if (act) steps.push(...lossAt(l.name, act, g));
    const gIn = i > 0 ? view(k + 1, plan.shapes.get(plan.layers[i - 1].name)!, `d${plan.layers[i - 1].name}`) : imageGrad;
    steps.push(...layerBackward(gpu, plan, i, g, gIn));
  }
  return { clears: [gradA], steps };
}
