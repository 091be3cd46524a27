// 2-D convolution, forward and backward (shaders/conv.wgsl: direct kernels; shaders/conv_winograd.wgsl +
// shaders/matmul.wgsl: Winograd F(4x4,3x3)). Layouts: float32 NCHW, batch 1: x [Cin,H,W], weight [Cout,Cin,K,K]
// (torchvision order), bias [Cout], y [Cout,H,W]; stride 1, padding (K-1)/2 with zeros or by reflection (PyTorch's
// ReflectionPad2d((K-1)/2) then a valid conv, as in the normalised-VGG encoders/decoders of WCT and AdaIN), K odd.
//
// Forward and input grad pick Winograd for K = 3 with channel counts that are multiples of 4 (VGG past conv1_1),
// the direct kernel otherwise. The input grad is the forward conv of dy with the flipped, transposed kernel, so both
// share code; the weights of both are rearranged once in prepareConv. Reflection is fused into the forward's input
// reads; its input grad is the zero-padded one plus the padded ring folded back onto the reflected pixels
// (conv_reflect_ring, see shaders/conv.wgsl). The input grad can also read dy through the following ReLU's mask
// (reluOutput: that ReLU's backward fused into the Winograd input transform). The weight grad runs the adjoint of the
// Winograd forward under the same rule (direct: 3-4 GFLOP/s here, Winograd 20-47 at VGG19's shapes).
// Strides other than 1, zero padding other than (K-1)/2 and K = 7 run shaders/conv_strided.wgsl; 1x1 stride-1 layers
// with channel counts and H*W multiples of 4 can run as matmuls (algorithm 'matmul'; both in src/ops/conv_strided.ts).
import directSource from '../../shaders/conv.wgsl';
import smallSource from '../../shaders/conv_small.wgsl';
import winoSource from '../../shaders/conv_winograd.wgsl';
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { bind, fold, run, type BufferRef, type KernelSpec, type Step } from '../gpu/kernel.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { shapeBucket, tunedSteps, type Tunable } from '../gpu/tune.ts';
import { bindMatmul, bindMatmulTN } from './matmul.ts';
import { convOutputSize, isStrided, matmulConvSteps, stridedForwardSteps, stridedInputSteps, useConvMatmul } from './conv_strided.ts';

export { convOutputSize } from './conv_strided.ts';

const dfile = 'shaders/conv.wgsl';
const wfile = 'shaders/conv_winograd.wgsl';

export const convPrepareDirectSpec: KernelSpec = {
  file: dfile, source: directSource, entry: 'conv_prepare_direct',
  bindings: { pp: 'uniform', prep_w: 'read', prep_out: 'read_write' },
  uniforms: { a: 'u32', b: 'u32', b4: 'u32', k: 'u32', flip: 'u32' },
};
export const convDirectSpec: KernelSpec = {
  file: dfile, source: directSource, entry: 'conv_direct',
  bindings: { dp: 'uniform', d_x: 'read', d_w: 'read', d_b: 'read', d_y: 'read_write' },
  uniforms: { cin: 'u32', cout: 'u32', h: 'u32', w: 'u32', cout4: 'u32', has_bias: 'u32', quads: 'u32' },
};
/** The direct conv for W % 4 != 0: scalar stores (f32 view of y), so no two invocations write parts of one vec4. */
export const convDirectScalarSpec: KernelSpec = {
  ...convDirectSpec, entry: 'conv_direct_scalar',
  bindings: { dp: 'uniform', d_x: 'read', d_w: 'read', d_b: 'read', d_ys: 'read_write' },
};
export const convFewInSpec: KernelSpec = {
  file: 'shaders/conv_small.wgsl', source: smallSource, entry: 'conv_few_in',
  bindings: { sp: 'uniform', s_x: 'read', s_w: 'read', s_b: 'read', s_y: 'read_write' },
  uniforms: { h: 'u32', w: 'u32', cout: 'u32', cout4: 'u32', quads: 'u32', qw: 'u32', cb4: 'u32', has_bias: 'u32' },
};
export const convFewInScalarSpec: KernelSpec = {
  ...convFewInSpec, entry: 'conv_few_in_scalar',
  bindings: { sp: 'uniform', s_x: 'read', s_w: 'read', s_b: 'read', s_ys: 'read_write' },
};
export const convReflectRingSpec: KernelSpec = {
  file: dfile, source: directSource, entry: 'conv_reflect_ring',
  bindings: { rp: 'uniform', rg_dy: 'read', rg_w: 'read', rg_dx: 'read_write' },
  uniforms: { cin: 'u32', cout: 'u32', h: 'u32', w: 'u32', cin4: 'u32', per_ch: 'u32', total: 'u32' },
};
export const convWgradSpec: KernelSpec = {
  file: dfile, source: directSource, entry: 'conv_wgrad',
  bindings: { wp: 'uniform', wg_x: 'read', wg_dy: 'read', wg_dw: 'read_write' },
  uniforms: { cin: 'u32', cout: 'u32', h: 'u32', w: 'u32', k: 'u32' },
};
export const convBgradSpec: KernelSpec = {
  file: dfile, source: directSource, entry: 'conv_bgrad',
  bindings: { bg: 'uniform', bg_dy: 'read', bg_db: 'read_write' }, uniforms: { cout: 'u32', hw: 'u32' },
};
export const winoWeightsSpec: KernelSpec = {
  file: wfile, source: winoSource, entry: 'conv_wino_weights',
  bindings: { ww: 'uniform', ww_w: 'read', ww_u: 'read_write' }, uniforms: { a: 'u32', b: 'u32', flip: 'u32' },
};
export const winoInputSpec: KernelSpec = {
  file: wfile, source: winoSource, entry: 'conv_wino_input',
  bindings: { wi: 'uniform', wi_x: 'read', wi_v: 'read_write', wi_mask: 'read' },
  uniforms: { cin: 'u32', h: 'u32', w: 'u32', tw: 'u32', ty0: 'u32', tiles: 'u32' },
};
export const winoOutputSpec: KernelSpec = {
  file: wfile, source: winoSource, entry: 'conv_wino_output',
  bindings: { wo: 'uniform', wo_m: 'read', wo_b: 'read', wo_y: 'read_write' },
  uniforms: { cout: 'u32', h: 'u32', w: 'u32', tw: 'u32', ty0: 'u32', tiles: 'u32', has_bias: 'u32' },
};
export const winoDySpec: KernelSpec = {
  file: wfile, source: winoSource, entry: 'conv_wino_dy',
  bindings: { wd: 'uniform', wd_dy: 'read', wd_m: 'read_write' },
  uniforms: { cout: 'u32', h: 'u32', w: 'u32', tw: 'u32', ty0: 'u32', tiles: 'u32' },
};
export const winoWgradSpec: KernelSpec = {
  file: wfile, source: winoSource, entry: 'conv_wino_wgrad',
  bindings: { wu: 'uniform', wu_du: 'read', wu_dw: 'read_write' }, uniforms: { cin: 'u32', cout: 'u32' },
};
/** The Winograd output transform for W % 4 != 0: scalar stores (f32 view of y). */
export const winoOutputScalarSpec: KernelSpec = {
  ...winoOutputSpec, entry: 'conv_wino_output_scalar',
  bindings: { wo: 'uniform', wo_m: 'read', wo_b: 'read', wo_ys: 'read_write' },
};

/** 'matmul': 1x1 stride-1 layers as matmuls (not picked by 'auto': on lavapipe the direct kernel is as fast or faster). */
export type ConvAlgorithm = 'auto' | 'direct' | 'winograd' | 'matmul';
/** Padding of the (K-1)/2 border: zeros, or reflection without repeating the edge (PyTorch's ReflectionPad2d). */
export type ConvPad = 'zeros' | 'reflect';

/** Weights of one direction (forward, or input grad), rearranged for the kernels. */
interface Prepared {
  /** Input and output channel counts of this direction's convolution. */
  a: number; b: number;
  direct: GPUBuffer;          // [A][K][K][B4]
  wino?: GPUBuffer;           // U [36][A][B]
}

export interface ConvLayer {
  cin: number; cout: number; k: number; weight: Tensor; bias: Tensor;
  /** Algorithm requested at prepare time ('auto' picks per direction and shape). */
  algorithm: ConvAlgorithm;
  /** Padding mode, fixed at prepare time. */
  pad: ConvPad;
  /** Stride (default 1) and zero padding on each side (default (K-1)/2); output floor((H+2P-K)/S)+1 (convOutputSize). */
  stride: number;
  padding: number;
  fwd: Prepared;
  bwd: Prepared;
  /** A 16-byte buffer bound where a kernel's bias is unused. */
  zeros: GPUBuffer;
}

const storageBytes = (bytes: number) => Math.max(16, Math.ceil(bytes / 16) * 16);

function storage(gpu: Gpu, bytes: number, label: string): GPUBuffer {
  return gpu.device.createBuffer({
    label, size: storageBytes(bytes),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
}

function winogradFits(a: number, b: number, k: number, gpu: Gpu): boolean {
  return k === 3 && a % 4 === 0 && b % 4 === 0 && 36 * a * b * 4 <= gpu.maxBindingBytes;
}

/**
 * Rearranges the weights for the kernels (runs GPU work once); call again after the weights change.
 * `opts.algorithm` forces a path ('winograd' needs K = 3 and channel counts that are multiples of 4; 'matmul' needs
 * K = 1, stride 1, padding 0 and runs each direction whose reduction channels and H*W are multiples of 4 as a
 * matmul, the direct kernel otherwise); `opts.pad` picks zero (default) or reflection padding (images then need H and
 * W > (K-1)/2). `opts.stride` (default 1) and `opts.padding` (zero padding per side, default (K-1)/2) give PyTorch's
 * Conv2d(stride, padding); any other than 1 and (K-1)/2, and K = 7, run shaders/conv_strided.wgsl (zero padding only).
 */
export function prepareConv(
  gpu: Gpu, weight: Tensor, bias: Tensor,
  opts: { algorithm?: ConvAlgorithm; pad?: ConvPad; stride?: number; padding?: number } = {},
): ConvLayer {
  const [cout, cin, k, k2] = weight.shape;
  if (weight.shape.length !== 4 || k !== k2 || k % 2 !== 1 || k > 7 || cout < 1 || cin < 1) {
    throw new PainterlyError(`conv2d: expected weight [Cout,Cin,K,K] with odd K <= 7, got [${weight.shape}]`);
  }
  if (bias.size !== cout) throw new PainterlyError(`conv2d: expected bias [${cout}], got [${bias.shape}]`);
  const algorithm = opts.algorithm ?? 'auto';
  const pad = opts.pad ?? 'zeros';
  if (pad !== 'zeros' && pad !== 'reflect') throw new PainterlyError(`conv2d: pad must be 'zeros' or 'reflect', got '${pad}'`);
  const stride = opts.stride ?? 1;
  const padding = opts.padding ?? (k - 1) / 2;
  if (!Number.isInteger(stride) || stride < 1) throw new PainterlyError(`conv2d: stride must be an integer >= 1, got ${stride}`);
  if (!Number.isInteger(padding) || padding < 0 || padding >= k) {
    throw new PainterlyError(`conv2d: padding must be an integer in [0, K-1] = [0, ${k - 1}], got ${padding}`);
  }
  const strided = isStrided({ k, stride, padding });
  if (pad === 'reflect' && (stride !== 1 || padding !== (k - 1) / 2)) {
    throw new PainterlyError(`conv2d: reflection padding needs stride 1 and padding (K-1)/2 = ${(k - 1) / 2}, got stride ${stride} padding ${padding}`);
  }
  if (pad === 'reflect' && strided) throw new PainterlyError(`conv2d: reflection padding needs K <= 5, got weight [${weight.shape}]`);
  if (algorithm === 'matmul' && (k !== 1 || strided)) {
    throw new PainterlyError(`conv2d: algorithm 'matmul' needs K = 1, stride 1 and padding 0, got K ${k} stride ${stride} padding ${padding}`);
  }
  if (algorithm === 'winograd' && strided) {
    throw new PainterlyError(`conv2d: Winograd needs stride 1, padding (K-1)/2 and K = 3, got K ${k} stride ${stride} padding ${padding}`);
  }
  const steps: Step[] = [];
  const prep = (a: number, b: number, flip: number, dir: string): Prepared => {
    const b4 = Math.ceil(b / 4) * 4;
    const direct = storage(gpu, a * k * k * b4 * 4, `${weight.label}.${dir}.direct`);
    steps.push(bind(gpu, convPrepareDirectSpec, { prep_w: weight.buffer, prep_out: direct }, { a, b, b4, k, flip },
      fold(Math.ceil((a * k * k * b4) / 64)), `conv_prepare_direct ${weight.label}`));
    let wino: GPUBuffer | undefined;
    const fits = winogradFits(a, b, k, gpu);
    if (algorithm === 'winograd' && !fits) {
      throw new PainterlyError(`conv2d: Winograd needs K = 3 and channels multiples of 4, got weight [${weight.shape}]`);
    }
    if (fits && algorithm !== 'direct' && !strided) {
      wino = storage(gpu, 36 * a * b * 4, `${weight.label}.${dir}.winograd`);
      steps.push(bind(gpu, winoWeightsSpec, { ww_w: weight.buffer, ww_u: wino }, { a, b, flip },
        fold(Math.ceil((a * b) / 64)), `conv_wino_weights ${weight.label}`));
    }
    return { a, b, direct, wino };
  };
  const fwd = prep(cin, cout, 0, 'fwd');
  const bwd = prep(cout, cin, 1, 'bwd');
  run(gpu, steps, `prepareConv ${weight.label}`);
  const zeros = storage(gpu, 16, 'conv.zeros');
  return { cin, cout, k, weight, bias, algorithm, pad, stride, padding, fwd, bwd, zeros };
}

function checkChw(t: Tensor, c: number, what: string, hw?: [number, number]): [number, number] {
  if (t.shape.length !== 3 || t.shape[0] !== c || (hw && (t.shape[1] !== hw[0] || t.shape[2] !== hw[1]))) {
    const want = hw ? `[${c},${hw[0]},${hw[1]}]` : `[${c},H,W]`;
    throw new PainterlyError(`conv2d: expected ${what} ${want}, got [${t.shape}]`);
  }
  return [t.shape[1], t.shape[2]];
}

/** The layer's output [Ho, Wo] for an input of hw (at least 1x1, else a PainterlyError). */
function outputSize(layer: ConvLayer, hw: [number, number]): [number, number] {
  const out = convOutputSize(hw[0], hw[1], layer.k, layer.stride, layer.padding);
  if (out[0] < 1 || out[1] < 1) {
    throw new PainterlyError(`conv2d: a ${hw[0]}x${hw[1]} input is smaller than the ${layer.k}x${layer.k} kernel with padding ${layer.padding}`);
  }
  return out;
}

/** Reflection by (K-1)/2 needs that many pixels beyond the edge one: H, W > (K-1)/2 (as in PyTorch). */
function checkReflect(pad: ConvPad, k: number, h: number, w: number): void {
  const p = (k - 1) / 2;
  if (pad === 'reflect' && (h <= p || w <= p)) {
    throw new PainterlyError(`conv2d: reflection padding by ${p} needs an image larger than ${p}x${p}, got ${h}x${w}`);
  }
}

/**
 * Cap on each of V and M: past it a layer runs in more chunks (three more dispatches each, a negligible cost at these
 * sizes) instead of holding hundreds of MiB of scratch (V of conv1_2 at 1024x1024 would be 604 MiB).
 */
export const WINOGRAD_SCRATCH_CAP = 64 * 2 ** 20;

/** Tile rows per Winograd chunk so that V [36][rows*tw][A] and M [36][rows*tw][B] fit one binding (and the cap) each. */
export function winogradChunkRows(gpu: Gpu, a: number, b: number, h: number, w: number): number {
  const th = Math.ceil(h / 4);
  const tw = Math.ceil(w / 4);
  const perRow = 36 * tw * Math.max(a, b) * 4;
  const rows = Math.floor(gpu.maxBindingBytes / perRow);
  // The cap never takes a layer off the Winograd path: one row of tiles is always allowed if the binding fits it.
  return Math.max(0, Math.min(th, rows < 1 ? 0 : Math.max(1, Math.min(rows, Math.floor(WINOGRAD_SCRATCH_CAP / perRow)))));
}

function useWinograd(gpu: Gpu, layer: ConvLayer, p: Prepared, h: number, w: number): boolean {
  if (!p.wino) return false;
  if (winogradChunkRows(gpu, p.a, p.b, h, w) < 1) return false;
  if (layer.algorithm === 'winograd') return true;
  // Winograd's transforms cost O(channels) per pixel; with few channels the direct kernel wins. Measured on lavapipe
  // (bench/deep-small.ts, the wct-16x widths): 16->16 a tie (0.8-1.2x), 16->32 Winograd 1.4-1.6x, 32 and up ~2x.
  return Math.min(p.a, p.b) >= 16;
}

/** Dims of one direct conv (one direction): A input channels, B output channels, K x K, an h x w image. */
export interface ConvDirectDims { a: number; b: number; k: number; h: number; w: number }

/** How a direct-conv variant blocks the work (shaders/conv.wgsl conv_direct, shaders/conv_small.wgsl). */
// Listed first, 'few-in' is the default where it applies (conv1_1: 1.4-1.5x quad4x4 in bench:variants' interleaved runs).
const DIRECT_VARIANTS: Record<string, { note: string; fits(d: ConvDirectDims): boolean }> = {
  'few-in': { note: 'A <= 4: 4 pixels x all output channels per thread, the A*9 taps loaded once', fits: (d) => d.k === 3 && d.a <= 4 },
  quad4x4: { note: '4 pixels x 4 output channels per thread, each input row segment loaded per channel quad', fits: () => true },
  'few-in-16': { note: 'A <= 4: 4 pixels x 16 output channels per thread, the A*9 taps loaded once per 16 channels', fits: (d) => d.k === 3 && d.a <= 4 && d.b > 16 },
};


/** The direct conv's variants for the autotuner (src/gpu/tune.ts); the first that applies is the deterministic default. */
export const convDirectTunable: Tunable<ConvDirectDims> = {
  name: 'conv_direct',
  source: directSource + smallSource,
  variants: Object.entries(DIRECT_VARIANTS).map(([id, v]) => ({ id, note: v.note })),
  shapeClass: (d) => `a${Math.min(d.a, 5)}.b${shapeBucket(d.b, 4096)}.k${d.k}.hw${shapeBucket(d.h * d.w, 1 << 24)}`,
  applies: (_gpu, d, v) => DIRECT_VARIANTS[v].fits(d),
  bench: (gpu, d, v) => {
    const c = gpu.collect();
    const b4 = Math.ceil(d.b / 4) * 4;
    const x = storage(gpu, d.a * d.h * d.w * 4, 'tune.x');
    const wp = storage(gpu, d.a * d.k * d.k * b4 * 4, 'tune.w');
    const bias = storage(gpu, b4 * 4, 'tune.b');
    const y = storage(gpu, d.b * d.h * d.w * 4, 'tune.y');
    const steps = directVariantSteps(gpu, v, d, x, wp, bias, y, true, false, false, 'tune conv_direct');
    c.stop();
    return { steps, destroy: () => { c.destroy(); for (const t of [x, wp, bias, y]) t.destroy(); } };
  },
  flops: (d) => 2 * d.a * d.b * d.k * d.k * d.h * d.w,
  standard: [
    { label: 'conv1_1 @256', dims: { a: 3, b: 64, k: 3, h: 256, w: 256 } },
    { label: 'conv1_1 @128', dims: { a: 3, b: 64, k: 3, h: 128, w: 128 } },
  ],
};

function directVariantSteps(
  gpu: Gpu, variant: string, d: ConvDirectDims, x: BufferRef, wp: BufferRef, bias: BufferRef, y: BufferRef,
  hasBias: boolean, reflect: boolean, relu: boolean, label: string,
): Step[] {
  const { a, b, k, h, w } = d;
  const qw = Math.ceil(w / 4);
  const quads = h * qw;
  const b4 = Math.ceil(b / 4) * 4;
  const aligned = w % 4 === 0;
  if (variant === 'few-in' || variant === 'few-in-16') {
    const cb4 = variant === 'few-in' ? b4 / 4 : 4;
    const constants: Record<string, number> = { A: a, ALIGNED: aligned ? 1 : 0, REFLECT: reflect ? 1 : 0, RELU: relu ? 1 : 0 };
    return [bind(gpu, { ...(aligned ? convFewInSpec : convFewInScalarSpec), constants },
      { s_x: x, s_w: wp, s_b: bias, [aligned ? 's_y' : 's_ys']: y },
      { h, w, cout: b, cout4: b4 / 4, quads, qw, cb4, has_bias: hasBias ? 1 : 0 },
      [Math.ceil(quads / 64), Math.ceil(b4 / 4 / cb4), 1], label)];
  }
  const constants: Record<string, number> = { K: k, ALIGNED: aligned ? 1 : 0, REFLECT: reflect ? 1 : 0 };
  if (relu) constants.RELU = 1;
  const spec = { ...(aligned ? convDirectSpec : convDirectScalarSpec), constants };
  return [bind(gpu, spec, { d_x: x, d_w: wp, d_b: bias, [aligned ? 'd_y' : 'd_ys']: y },
    { cin: a, cout: b, h, w, cout4: b4, has_bias: hasBias ? 1 : 0, quads },
    [Math.ceil(quads / 64), b4 / 4, 1], label)];
}

function directSteps(
  gpu: Gpu, layer: ConvLayer, p: Prepared, x: Tensor, y: Tensor, bias: GPUBuffer | undefined, reflect: boolean, label: string,
  relu = false,
): Step[] {
  const d: ConvDirectDims = { a: p.a, b: p.b, k: layer.k, h: x.shape[1], w: x.shape[2] };
  return tunedSteps(gpu, convDirectTunable, d, (v) =>
    directVariantSteps(gpu, v, d, x.buffer, p.direct, bias ?? layer.zeros, y.buffer, bias !== undefined, reflect, relu, label));
}

/**
 * Winograd scratch, V [36][tiles][A] and M [36][tiles][B] of one chunk, shared by every conv step of a plan: steps
 * run one after another on the queue, so one pair sized for the largest need serves all layers and both directions.
 */
export interface ConvScratch { v: GPUBuffer; m: GPUBuffer }

/** Bytes of V and M a direction needs for an h x w input; zero when that direction runs the direct kernel. */
export function convScratchBytes(gpu: Gpu, layer: ConvLayer, direction: 'forward' | 'input', h: number, w: number): { v: number; m: number } {
  const p = direction === 'forward' ? layer.fwd : layer.bwd;
  if (!useWinograd(gpu, layer, p, h, w)) return { v: 0, m: 0 };
  const tiles = winogradChunkRows(gpu, p.a, p.b, h, w) * Math.ceil(w / 4);
  return { v: storageBytes(36 * tiles * p.a * 4), m: storageBytes(36 * tiles * p.b * 4) };
}

/** A V/M pair of the given sizes (for planners: the maximum of convScratchBytes over their layers). */
export function createConvScratch(gpu: Gpu, bytes: { v: number; m: number }, label = 'conv.scratch'): ConvScratch {
  return { v: storage(gpu, bytes.v, `${label}.V`), m: storage(gpu, bytes.m, `${label}.M`) };
}

/** Frees a layer's rearranged weights (not the weight and bias tensors it was prepared from). */
export function destroyConv(layer: ConvLayer): void {
  for (const p of [layer.fwd, layer.bwd]) { p.direct.destroy(); p.wino?.destroy(); }
  layer.zeros.destroy();
}

function winogradSteps(
  gpu: Gpu, layer: ConvLayer, p: Prepared, x: Tensor, y: Tensor, bias: GPUBuffer | undefined, reflect: boolean, label: string,
  scratch: ConvScratch | undefined, relu = false, mask?: Tensor,
): Step[] {
  const [h, w] = [x.shape[1], x.shape[2]];
  const th = Math.ceil(h / 4);
  const tw = Math.ceil(w / 4);
  const rows = winogradChunkRows(gpu, p.a, p.b, h, w);
  const maxTiles = rows * tw;
  const vBytes = 36 * maxTiles * p.a * 4;
  const mBytes = 36 * maxTiles * p.b * 4;
  if (scratch && (scratch.v.size < vBytes || scratch.m.size < mBytes)) {
    throw new PainterlyError(`${label}: Winograd scratch of ${scratch.v.size}+${scratch.m.size} bytes given, ${vBytes}+${mBytes} needed`);
  }
  // Without a shared scratch (standalone use), this step list gets its own, reused by every encode of these steps.
  const v = scratch?.v ?? storage(gpu, vBytes, `${label}.V`);
  const m = scratch?.m ?? storage(gpu, mBytes, `${label}.M`);
  const aligned = w % 4 === 0;
  const inputSpec = { ...winoInputSpec, constants: { ALIGNED: aligned ? 1 : 0, REFLECT: reflect ? 1 : 0, MASK: mask ? 1 : 0 } };
  const outputSpec = { ...(aligned ? winoOutputSpec : winoOutputScalarSpec), ...(relu ? { constants: { RELU: 1 } } : {}) };
  const steps: Step[] = [];
  for (let ty0 = 0; ty0 < th; ty0 += rows) {
    const tiles = Math.min(rows, th - ty0) * tw;
    steps.push(bind(gpu, inputSpec, { wi_x: x.buffer, wi_v: v, wi_mask: (mask ?? x).buffer }, { cin: p.a, h, w, tw, ty0, tiles },
      fold(Math.ceil((tiles * p.a) / 4 / 64)), `${label} wino_input`));
    steps.push(bindMatmul(gpu, v, p.wino!, m, { m: tiles, n: p.b, k: p.a, batch: 36 }, `${label} wino_gemm`));
    steps.push(bind(gpu, outputSpec, { wo_m: m, wo_b: bias ?? layer.zeros, [aligned ? 'wo_y' : 'wo_ys']: y.buffer },
      { cout: p.b, h, w, tw, ty0, tiles, has_bias: bias ? 1 : 0 },
      fold(Math.ceil((tiles * p.b) / 4 / 64)), `${label} wino_output`));
  }
  return steps;
}

/** Options of conv2dForward. */
export interface ConvForwardOptions {
  /**
   * Fuse the following ReLU: y = max(conv + b, 0) in the conv's own epilogue (direct store / Winograd output
   * transform), saving the ReLU's dispatch and a pass over y. The ReLU's backward then reads this y (y > 0 gates).
   */
  relu?: boolean;
}

/**
 * y = conv(pad(x), w) + b (or max(that, 0) with `opts.relu`); x [Cin,H,W], y [Cout,H,W]; pad as prepared (zeros or
 * reflection). `scratch`: a shared Winograd scratch (at least convScratchBytes); without one, the steps allocate
 * their own.
 */
export function conv2dForward(gpu: Gpu, layer: ConvLayer, x: Tensor, y: Tensor, scratch?: ConvScratch, opts: ConvForwardOptions = {}): Step[] {
  const hw = checkChw(x, layer.cin, 'x');
  checkChw(y, layer.cout, 'y', outputSize(layer, hw));
  checkReflect(layer.pad, layer.k, hw[0], hw[1]);
  const label = `conv_forward ${y.label}`;
  const relu = opts.relu === true;
  if (isStrided(layer)) return stridedForwardSteps(gpu, layer, x, y, label, relu);
  if (useConvMatmul(layer, 'forward', hw[0], hw[1])) return matmulConvSteps(gpu, layer, 'forward', x, y, label, relu);
  const reflect = layer.pad === 'reflect';
  return useWinograd(gpu, layer, layer.fwd, hw[0], hw[1])
    ? winogradSteps(gpu, layer, layer.fwd, x, y, layer.bias.buffer, reflect, label, scratch, relu)
    : directSteps(gpu, layer, layer.fwd, x, y, layer.bias.buffer, reflect, label, relu);
}

/** Options of conv2dBackwardInput. */
export interface ConvInputOptions {
  /**
   * The output y of the ReLU that followed this conv: dy is then the ReLU's output gradient and is read as
   * dy * [y > 0] (the ReLU's backward fused into the Winograd input transform). Only where inputGradMasks holds.
   */
  reluOutput?: Tensor;
}

/** Whether conv2dBackwardInput can fuse the following ReLU's backward (reluOutput) for an h x w input. */
export function inputGradMasks(gpu: Gpu, layer: ConvLayer, h: number, w: number): boolean {
  return !isStrided(layer) && layer.pad === 'zeros' && !useConvMatmul(layer, 'input', h, w) && useWinograd(gpu, layer, layer.bwd, h, w);
}

/**
 * dx = conv_transpose(dy, w): dx[i,p] = Σ_{o,u,v} dy[o, p-(u,v)+pad] w[o,i,u,v]; overwrites dx. With reflection,
 * the terms landing on the padded ring are then added to their reflected source pixels (one more small dispatch).
 * `scratch` as for conv2dForward.
 */
export function conv2dBackwardInput(gpu: Gpu, layer: ConvLayer, dy: Tensor, dx: Tensor, scratch?: ConvScratch,
  opts: ConvInputOptions = {}): Step[] {
  // dx gives the input size (with stride > 1 several input sizes share one output size).
  const hw = checkChw(dx, layer.cin, 'dx');
  checkChw(dy, layer.cout, 'dy', outputSize(layer, hw));
  checkReflect(layer.pad, layer.k, hw[0], hw[1]);
  const label = `conv_backward_input ${dx.label}`;
  if (opts.reluOutput) {
    checkChw(opts.reluOutput, layer.cout, 'reluOutput', outputSize(layer, hw));
    if (!inputGradMasks(gpu, layer, hw[0], hw[1])) {
      throw new PainterlyError(`${label}: the fused ReLU backward needs the Winograd input gradient with zero padding (inputGradMasks)`);
    }
    return winogradSteps(gpu, layer, layer.bwd, dy, dx, undefined, false, label, scratch, false, opts.reluOutput);
  }
  if (isStrided(layer)) return stridedInputSteps(gpu, layer, dy, dx, label);
  if (useConvMatmul(layer, 'input', hw[0], hw[1])) return matmulConvSteps(gpu, layer, 'input', dy, dx, label);
  // The main pass is the zero-padded transposed conv in both modes (REFLECT off).
  const steps = useWinograd(gpu, layer, layer.bwd, hw[0], hw[1])
    ? winogradSteps(gpu, layer, layer.bwd, dy, dx, undefined, false, label, scratch)
    : directSteps(gpu, layer, layer.bwd, dy, dx, undefined, false, label);
  const p = (layer.k - 1) / 2;
  if (layer.pad === 'reflect' && p > 0) {
    const [h, w] = hw;
    const perCh = 2 * p * (w + h);
    const total = Math.ceil(layer.cin / 4) * perCh;   // one invocation per pixel and 4 input channels
    steps.push(bind(gpu, { ...convReflectRingSpec, constants: { K: layer.k } },
      { rg_dy: dy.buffer, rg_w: layer.bwd.direct, rg_dx: dx.buffer },
      { cin: layer.cin, cout: layer.cout, h, w, cin4: Math.ceil(layer.cin / 4) * 4, per_ch: perCh, total },
      fold(Math.ceil(total / 64)), `${label} reflect_ring`));
  }
  return steps;
}

/** Options of conv2dBackwardWeight. */
export interface ConvWeightOptions {
  /** The layer's stride and zero padding: only stride 1 with padding (K-1)/2 is implemented (others are refused). */
  stride?: number;
  padding?: number;
  /** 'auto' (default): Winograd where it applies (K = 3, channels multiples of 4, both >= 16), else direct. */
  algorithm?: 'auto' | 'direct' | 'winograd';
  /** Shared scratch (at least convWeightScratchBytes); without one the steps allocate their own. */
  scratch?: ConvWeightScratch;
}

/** Winograd weight-gradient scratch: V [36][tiles][Cin], dM [36][tiles][Cout] of one chunk, dU [36][Cin][Cout]. */
export interface ConvWeightScratch extends ConvScratch { u: GPUBuffer }

function winogradWeightApplies(gpu: Gpu, cin: number, cout: number, k: number, h: number, w: number): boolean {
  return winogradFits(cin, cout, k, gpu) && winogradChunkRows(gpu, cin, cout, h, w) >= 1;
}

/** Whether conv2dBackwardWeight runs Winograd for these dims with `algorithm` ('auto' by the measured rule). */
export function weightGradAlgorithm(gpu: Gpu, cin: number, cout: number, k: number, h: number, w: number,
  algorithm: 'auto' | 'direct' | 'winograd' = 'auto'): 'direct' | 'winograd' {
  if (algorithm === 'direct' || !winogradWeightApplies(gpu, cin, cout, k, h, w)) return 'direct';
  return algorithm === 'winograd' || Math.min(cin, cout) >= 16 ? 'winograd' : 'direct';
}

/** Bytes of the Winograd weight-gradient scratch for these dims (zeros when the direct kernel runs). */
export function convWeightScratchBytes(gpu: Gpu, cin: number, cout: number, k: number, h: number, w: number,
  algorithm: 'auto' | 'direct' | 'winograd' = 'auto'): { v: number; m: number; u: number } {
  if (weightGradAlgorithm(gpu, cin, cout, k, h, w, algorithm) === 'direct') return { v: 0, m: 0, u: 0 };
  const tiles = winogradChunkRows(gpu, cin, cout, h, w) * Math.ceil(w / 4);
  return { v: storageBytes(36 * tiles * cin * 4), m: storageBytes(36 * tiles * cout * 4), u: storageBytes(36 * cin * cout * 4) };
}

/**
 * dw[o,i,u,v] = Σ_p dy[o,p] pad(x)[i,p+(u,v)-pad]; overwrites dw [Cout,Cin,K,K]. `pad` must match the layer's
 * (the weight grad does not take a ConvLayer). Stride 1 with padding (K-1)/2 only: `opts` (a layer's stride and
 * padding) other than that is refused. K = 3 with channel counts multiples of 4 runs the adjoint of the Winograd
 * forward (shaders/conv_winograd.wgsl), the rest the direct kernel.
 */
export function conv2dBackwardWeight(
  gpu: Gpu, x: Tensor, dy: Tensor, dw: Tensor, pad: ConvPad = 'zeros', opts: ConvWeightOptions = {},
): Step[] {
  const [cout, cin, k, k2] = dw.shape;
  if (dw.shape.length !== 4 || k !== k2 || k % 2 !== 1) {
    throw new PainterlyError(`conv2d: expected dw [Cout,Cin,K,K] with odd K, got [${dw.shape}]`);
  }
  if ((opts.stride ?? 1) !== 1 || (opts.padding ?? (k - 1) / 2) !== (k - 1) / 2) {
    throw new PainterlyError(`conv2dBackwardWeight: only stride 1 with padding (K-1)/2 = ${(k - 1) / 2} is implemented, got stride ${opts.stride ?? 1} padding ${opts.padding ?? (k - 1) / 2}`);
  }
  const hw = checkChw(x, cin, 'x');
  if (dy.shape.length === 3 && dy.shape[0] === cout && (dy.shape[1] !== hw[0] || dy.shape[2] !== hw[1])) {
    throw new PainterlyError(`conv2dBackwardWeight: dy [${dy.shape}] must have x's ${hw[0]}x${hw[1]}: only stride 1 with padding (K-1)/2 is implemented`);
  }
  checkChw(dy, cout, 'dy', hw);
  checkReflect(pad, k, hw[0], hw[1]);
  const label = `conv_backward_weight ${dw.label}`;
  const algorithm = opts.algorithm ?? 'auto';
  if (algorithm === 'winograd' && !winogradWeightApplies(gpu, cin, cout, k, hw[0], hw[1])) {
    throw new PainterlyError(`conv2dBackwardWeight: Winograd needs K = 3 and channels multiples of 4, got dw [${dw.shape}]`);
  }
  if (weightGradAlgorithm(gpu, cin, cout, k, hw[0], hw[1], algorithm) === 'winograd') {
    return winogradWeightSteps(gpu, x, dy, dw, pad === 'reflect', label, opts.scratch);
  }
  const spec = { ...convWgradSpec, constants: { REFLECT: pad === 'reflect' ? 1 : 0 } };
  return [bind(gpu, spec, { wg_x: x.buffer, wg_dy: dy.buffer, wg_dw: dw.buffer },
    { cin, cout, h: hw[0], w: hw[1], k }, [Math.ceil((cin * k * k) / 64), Math.ceil(cout / 8), 1], label)];
}

function winogradWeightSteps(
  gpu: Gpu, x: Tensor, dy: Tensor, dw: Tensor, reflect: boolean, label: string, scratch: ConvWeightScratch | undefined,
): Step[] {
  const [cin, h, w] = x.shape;
  const cout = dy.shape[0];
  const th = Math.ceil(h / 4);
  const tw = Math.ceil(w / 4);
  const rows = winogradChunkRows(gpu, cin, cout, h, w);
  const need = convWeightScratchBytes(gpu, cin, cout, 3, h, w, 'winograd');
  if (scratch && (scratch.v.size < need.v || scratch.m.size < need.m || scratch.u.size < need.u)) {
    throw new PainterlyError(`${label}: Winograd scratch of ${scratch.v.size}+${scratch.m.size}+${scratch.u.size} bytes given, ${need.v}+${need.m}+${need.u} needed`);
  }
  const v = scratch?.v ?? storage(gpu, need.v, `${label}.V`);
  const m = scratch?.m ?? storage(gpu, need.m, `${label}.dM`);
  const u = scratch?.u ?? storage(gpu, need.u, `${label}.dU`);
  const aligned = w % 4 === 0;
  const constants = { ALIGNED: aligned ? 1 : 0, REFLECT: reflect ? 1 : 0 };
  const steps: Step[] = [];
  for (let ty0 = 0; ty0 < th; ty0 += rows) {
    const tiles = Math.min(rows, th - ty0) * tw;
    steps.push(bind(gpu, { ...winoInputSpec, constants }, { wi_x: x.buffer, wi_v: v, wi_mask: x.buffer }, { cin, h, w, tw, ty0, tiles },
      fold(Math.ceil((tiles * cin) / 4 / 64)), `${label} wino_input`));
    steps.push(bind(gpu, { ...winoDySpec, constants: { ALIGNED: aligned ? 1 : 0 } }, { wd_dy: dy.buffer, wd_m: m },
      { cout, h, w, tw, ty0, tiles }, fold(Math.ceil((tiles * cout) / 4 / 64)), `${label} wino_dy`));
    steps.push(bindMatmulTN(gpu, v, m, u, { m: cin, n: cout, k: tiles, batch: 36 }, ty0 > 0, `${label} wino_gemm`));
  }
  steps.push(bind(gpu, winoWgradSpec, { wu_du: u, wu_dw: dw.buffer }, { cin, cout },
    fold(Math.ceil((cin * cout) / 64)), `${label} wino_wgrad`));
  return steps;
}

/** db[o] = Σ_p dy[o,p]; overwrites db [Cout]. */
export function conv2dBackwardBias(gpu: Gpu, dy: Tensor, db: Tensor): Step[] {
  const cout = db.size;
  const [h, w] = checkChw(dy, cout, 'dy');
  return [bind(gpu, convBgradSpec, { bg_dy: dy.buffer, bg_db: db.buffer }, { cout, hw: h * w },
    Math.ceil(cout / 64), `conv_backward_bias ${db.label}`)];
}

/** Which algorithm conv2dForward / conv2dBackwardInput will use for an image of h x w (for benchmarks, tests). */
export function convAlgorithmFor(gpu: Gpu, layer: ConvLayer, h: number, w: number): { forward: string; input: string } {
  const pick = (dir: 'forward' | 'input', p: Prepared) => isStrided(layer) ? 'strided'
    : useConvMatmul(layer, dir, h, w) ? 'matmul' : useWinograd(gpu, layer, p, h, w) ? 'winograd' : 'direct';
  return { forward: pick('forward', layer.fwd), input: pick('input', layer.bwd) };
}
