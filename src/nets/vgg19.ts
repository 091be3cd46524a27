// VGG19's feature stack (Simonyan & Zisserman 2015) as used by Gatys et al.: 3x3 convolutions with ReLU, 2x2 pooling
// (max or average, chosen per plan). Only the layers up to the deepest one a loss taps are built.
//
// Layer names follow the literature: `conv4_2` is the convolution's output, `relu4_2` its rectified output,
// `pool4` the output of the 4th pooling. All tensors are float32 [C,H,W] (batch 1).
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import type { Step } from '../gpu/kernel.ts';
import { createTensor, destroyTensors, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { conv2dBackwardInput, conv2dForward, prepareConv, type ConvLayer } from '../ops/conv2d.ts';
import { normalizeBackward, normalizeForward } from '../ops/normalize.ts';
import { avgPoolBackward, avgPoolForward, createArgmax, maxPoolBackward, maxPoolForward } from '../ops/pool.ts';
import { reluBackward, reluForward } from '../ops/relu.ts';
import type { VggWeights } from '../weights/vgg19-weights.ts';

export type Pooling = 'max' | 'avg';
export type LayerKind = 'conv' | 'relu' | 'pool';

export interface LayerDef {
  name: string;
  kind: LayerKind;
  /** Output channels. */
  channels: number;
  /** The conv whose weights a conv layer uses (same as name), for relu/pool the layer they follow. */
  block: number;
}

/** Output channels of the convolutions of each of VGG19's five blocks. */
export const VGG19_BLOCKS = [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]];

export const VGG19_LAYERS: LayerDef[] = VGG19_BLOCKS.flatMap((convs, b) => [
  ...convs.flatMap((c, i) => [
    { name: `conv${b + 1}_${i + 1}`, kind: 'conv' as const, channels: c, block: b + 1 },
    { name: `relu${b + 1}_${i + 1}`, kind: 'relu' as const, channels: c, block: b + 1 },
  ]),
  { name: `pool${b + 1}`, kind: 'pool' as const, channels: convs[convs.length - 1], block: b + 1 },
]);

export const VGG19_LAYER_NAMES = VGG19_LAYERS.map((l) => l.name);

/** The layers from the input up to and including `name`. */
export function layersUpTo(name: string, what = 'layer'): LayerDef[] {
  const i = VGG19_LAYER_NAMES.indexOf(name);
  if (i < 0) throw new PainterlyError(`unknown ${what} "${name}"; valid: conv1_1..conv5_4, relu1_1..relu5_4, pool1..pool5`);
  return VGG19_LAYERS.slice(0, i + 1);
}

/** The deepest of several layers. */
export function deepest(names: string[]): string {
  let best = 0;
  for (const n of names) {
    layersUpTo(n);
    best = Math.max(best, VGG19_LAYER_NAMES.indexOf(n));
  }
  return VGG19_LAYER_NAMES[best];
}

/** The deepest convolution that computing `name` needs (whose weights must be loaded). */
export function lastConvUpTo(name: string): string {
  return [...layersUpTo(name)].reverse().find((l) => l.kind === 'conv')!.name;
}

/** Spatial size after each pooling: PyTorch's floor rule. */
export function pooledSize(h: number, w: number): [number, number] {
  return [Math.floor(h / 2), Math.floor(w / 2)];
}

/** The network's weights on the GPU, prepared for the conv kernels. */
export interface Vgg19 {
  convs: Map<string, ConvLayer>;
  pretrained: boolean;
  source: string;
  /** Deepest conv layer available. */
  depth: string;
  destroy(): void;
}

export function createVgg19(gpu: Gpu, weights: VggWeights): Vgg19 {
  const convs = new Map<string, ConvLayer>();
  const tensors: Tensor[] = [];
  for (const c of weights.convs) {
    const w = uploadTensor(gpu, c.weight, [c.cout, c.cin, c.k, c.k], `${c.name}.weight`);
    const b = uploadTensor(gpu, c.bias, [c.cout], `${c.name}.bias`);
    tensors.push(w, b);
    convs.set(c.name, prepareConv(gpu, w, b));
  }
  return {
    convs, pretrained: weights.pretrained, source: weights.source, depth: weights.convs[weights.convs.length - 1]?.name ?? '',
    destroy: () => destroyTensors(...tensors),
  };
}

/** Everything one image size needs: activations kept for the backward pass, and the recorded forward. */
export interface Vgg19Plan {
  h: number;
  w: number;
  pooling: Pooling;
  layers: LayerDef[];
  /** Output of each layer by name. Untapped conv outputs share a scratch buffer and are absent here. */
  acts: Map<string, Tensor>;
  /** The normalised input the first conv reads. */
  normalized: Tensor;
  /** Forward steps after the input normalisation (which depends on the input tensor: see forwardFrom). */
  forward: Step[];
  destroy(): void;
  /** Internal: what the backward needs. */
  internal: { argmax: Map<string, GPUBuffer>; gradA: GPUBuffer; gradB: GPUBuffer; net: Vgg19; shapes: Map<string, number[]> };
}

export interface PlanOptions {
  h: number;
  w: number;
  pooling: Pooling;
  /** Deepest layer to compute. */
  upTo: string;
  /** Layers whose outputs must be kept readable (loss taps). */
  taps: string[];
  /** Whether backward steps will be built (allocates the gradient scratch). */
  backward: boolean;
}

export function planVgg19(gpu: Gpu, net: Vgg19, o: PlanOptions): Vgg19Plan {
  const layers = layersUpTo(o.upTo);
  const taps = new Set(o.taps);
  for (const t of taps) if (!layers.some((l) => l.name === t)) layersUpTo(t); // unknown names throw
  const lastConv = [...layers].reverse().find((l) => l.kind === 'conv');
  if (lastConv && !net.convs.has(lastConv.name)) {
    throw new PainterlyError(`the loaded weights stop at ${net.depth}; layer ${o.upTo} needs ${lastConv.name}`);
  }
  const owned: Tensor[] = [];
  const acts = new Map<string, Tensor>();
  const shapes = new Map<string, number[]>();
  const argmax = new Map<string, GPUBuffer>();
  let [h, w] = [o.h, o.w];
  let c = 3;
  // Shapes first, to size the shared scratch.
  let maxElems = 3 * h * w;
  for (const l of layers) {
    if (l.kind === 'pool') {
      [h, w] = pooledSize(h, w);
      if (h < 1 || w < 1) throw new PainterlyError(`image ${o.w}x${o.h} is too small for ${l.name}: needs at least ${2 ** l.block} px per side`);
    }
    // Channel counts come from the weights (tests use reduced ones), not from the table.
    if (l.kind === 'conv') c = net.convs.get(l.name)?.cout ?? l.channels;
    shapes.set(l.name, [c, h, w]);
    maxElems = Math.max(maxElems, c * h * w);
  }
  const alloc = (shape: number[], label: string) => {
    const t = createTensor(gpu, shape, label);
    owned.push(t);
    return t;
  };
  const normalized = alloc([3, o.h, o.w], 'vgg.input');
  const convScratch = alloc([maxElems], 'vgg.conv-scratch');
  const view = (base: Tensor, shape: number[], label: string): Tensor => ({ buffer: base.buffer, shape, size: shape[0] * shape[1] * shape[2], label });

  const forward: Step[] = [];
  let input = normalized;
  for (const l of layers) {
    const shape = shapes.get(l.name)!;
    let out: Tensor;
    if (l.kind === 'conv') {
      out = taps.has(l.name) ? alloc(shape, l.name) : view(convScratch, shape, l.name);
      forward.push(...conv2dForward(gpu, net.convs.get(l.name)!, input, out));
    } else if (l.kind === 'relu') {
      out = alloc(shape, l.name);
      forward.push(reluForward(gpu, input, out));
    } else {
      out = alloc(shape, l.name);
      if (o.pooling === 'max') {
        const am = createArgmax(gpu, out);
        argmax.set(l.name, am);
        forward.push(...maxPoolForward(gpu, input, out, am));
      } else {
        forward.push(...avgPoolForward(gpu, input, out));
      }
    }
    if (l.kind !== 'conv' || taps.has(l.name)) acts.set(l.name, out);
    input = out;
  }
  const grads = o.backward ? [alloc([maxElems], 'vgg.grad-a'), alloc([maxElems], 'vgg.grad-b')] : [convScratch, convScratch];
  return {
    h: o.h, w: o.w, pooling: o.pooling, layers, acts, normalized, forward,
    destroy: () => { destroyTensors(...owned); for (const b of argmax.values()) b.destroy(); },
    internal: { argmax, gradA: grads[0].buffer, gradB: grads[1].buffer, net, shapes },
  };
}

/** The steps that normalise `image` into the plan's input, then run the forward. */
export function forwardFrom(gpu: Gpu, plan: Vgg19Plan, image: Tensor): Step[] {
  checkImage(plan, image);
  return [normalizeForward(gpu, image, plan.normalized), ...plan.forward];
}

function checkImage(plan: Vgg19Plan, image: Tensor): void {
  const [c, h, w] = image.shape;
  if (c !== 3 || h !== plan.h || w !== plan.w) {
    throw new PainterlyError(`image tensor [${image.shape}] does not fit a plan for 3x${plan.h}x${plan.w}`);
  }
}

/**
 * Called at each layer (deepest first) during the backward pass with the layer's output and its gradient buffer,
 * which already holds the gradient from above (or zeros at the top). Returns the steps that add loss gradients.
 */
export type LossAt = (layer: string, act: Tensor, grad: Tensor) => Step[];

export interface BackwardProgram {
  /** Buffers to clear before the steps run (the top layer's gradient). */
  clears: GPUBuffer[];
  steps: Step[];
}

/**
 * The backward pass in exactly the reverse order of the forward, adding loss gradients at the taps; ends by writing
 * dL/d(image) into `imageGrad` (the gradient w.r.t. the RGB image in [0,1], through the normalisation).
 */
export function backwardInto(gpu: Gpu, plan: Vgg19Plan, lossAt: LossAt, imageGrad: Tensor): BackwardProgram {
  checkImage(plan, imageGrad);
  const { net, shapes, argmax } = plan.internal;
  const bufs = [plan.internal.gradA, plan.internal.gradB];
  const gradView = (i: number, shape: number[], label: string): Tensor => ({ buffer: bufs[i % 2], shape, size: shape[0] * shape[1] * shape[2], label });
  const steps: Step[] = [];
  const layers = plan.layers;
  let cur = 0;
  const clears = [bufs[0]];
  for (let i = layers.length - 1; i >= 0; i--) {
    const l = layers[i];
    const shape = shapes.get(l.name)!;
    const g = gradView(cur, shape, `d${l.name}`);
    const act = plan.acts.get(l.name);
    if (act) steps.push(...lossAt(l.name, act, g));
    const inShape = i > 0 ? shapes.get(layers[i - 1].name)! : [3, plan.h, plan.w];
    const gIn = gradView(cur + 1, inShape, i > 0 ? `d${layers[i - 1].name}` : 'dinput');
    if (l.kind === 'conv') {
      steps.push(...conv2dBackwardInput(gpu, net.convs.get(l.name)!, g, gIn));
    } else if (l.kind === 'relu') {
      steps.push(reluBackward(gpu, act!, g, gIn));
    } else if (plan.pooling === 'max') {
      steps.push(...maxPoolBackward(gpu, g, argmax.get(l.name)!, gIn));
    } else {
      steps.push(...avgPoolBackward(gpu, g, gIn));
    }
    cur++;
  }
  steps.push(normalizeBackward(gpu, gradView(cur, [3, plan.h, plan.w], 'dinput'), imageGrad));
  return { clears, steps };
}
