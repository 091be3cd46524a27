// 2-D convolution, forward and backward (shaders/conv.wgsl: direct kernels; shaders/conv_winograd.wgsl +
// shaders/matmul.wgsl: Winograd F(4x4,3x3)). Layouts: float32 NCHW, batch 1: x [Cin,H,W], weight [Cout,Cin,K,K]
// (torchvision order), bias [Cout], y [Cout,H,W]; stride 1, zero padding (K-1)/2, K odd.
//
// Forward and input grad pick Winograd for K = 3 with channel counts that are multiples of 4 (VGG past conv1_1),
// the direct kernel otherwise. The input grad is the forward conv of dy with the flipped, transposed kernel, so both
// share code; the weights of both are rearranged once in prepareConv.
import directSource from '../../shaders/conv.wgsl';
import winoSource from '../../shaders/conv_winograd.wgsl';
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { bind, fold, run, type KernelSpec, type Step } from '../gpu/kernel.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { bindMatmul } from './matmul.ts';

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
  bindings: { wi: 'uniform', wi_x: 'read', wi_v: 'read_write' },
  uniforms: { cin: 'u32', h: 'u32', w: 'u32', tw: 'u32', ty0: 'u32', tiles: 'u32' },
};
export const winoOutputSpec: KernelSpec = {
  file: wfile, source: winoSource, entry: 'conv_wino_output',
  bindings: { wo: 'uniform', wo_m: 'read', wo_b: 'read', wo_y: 'read_write' },
  uniforms: { cout: 'u32', h: 'u32', w: 'u32', tw: 'u32', ty0: 'u32', tiles: 'u32', has_bias: 'u32' },
};

export type ConvAlgorithm = 'auto' | 'direct' | 'winograd';

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
  fwd: Prepared;
  bwd: Prepared;
  /** A 16-byte buffer bound where a kernel's bias is unused. */
  zeros: GPUBuffer;
}

function storage(gpu: Gpu, bytes: number, label: string): GPUBuffer {
  return gpu.device.createBuffer({
    label, size: Math.max(16, Math.ceil(bytes / 16) * 16),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
}

function winogradFits(a: number, b: number, k: number, gpu: Gpu): boolean {
  return k === 3 && a % 4 === 0 && b % 4 === 0 && 36 * a * b * 4 <= gpu.maxBindingBytes;
}

/**
 * Rearranges the weights for the kernels (runs GPU work once); call again after the weights change.
 * `opts.algorithm` forces a path ('winograd' needs K = 3 and channel counts that are multiples of 4).
 */
export function prepareConv(gpu: Gpu, weight: Tensor, bias: Tensor, opts: { algorithm?: ConvAlgorithm } = {}): ConvLayer {
  const [cout, cin, k, k2] = weight.shape;
  if (weight.shape.length !== 4 || k !== k2 || k % 2 !== 1 || k > 5 || cout < 1 || cin < 1) {
    throw new PainterlyError(`conv2d: expected weight [Cout,Cin,K,K] with odd K <= 5, got [${weight.shape}]`);
  }
  if (bias.size !== cout) throw new PainterlyError(`conv2d: expected bias [${cout}], got [${bias.shape}]`);
  const algorithm = opts.algorithm ?? 'auto';
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
    if (fits && algorithm !== 'direct') {
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
  return { cin, cout, k, weight, bias, algorithm, fwd, bwd, zeros };
}

function checkChw(t: Tensor, c: number, what: string, hw?: [number, number]): [number, number] {
  if (t.shape.length !== 3 || t.shape[0] !== c || (hw && (t.shape[1] !== hw[0] || t.shape[2] !== hw[1]))) {
    const want = hw ? `[${c},${hw[0]},${hw[1]}]` : `[${c},H,W]`;
    throw new PainterlyError(`conv2d: expected ${what} ${want}, got [${t.shape}]`);
  }
  return [t.shape[1], t.shape[2]];
}

/** Tile rows per Winograd chunk so that V [36][rows*tw][A] and M [36][rows*tw][B] fit one binding each. */
export function winogradChunkRows(gpu: Gpu, a: number, b: number, h: number, w: number): number {
  const th = Math.ceil(h / 4);
  const tw = Math.ceil(w / 4);
  const perRow = 36 * tw * Math.max(a, b) * 4;
  return Math.max(0, Math.min(th, Math.floor(gpu.maxBindingBytes / perRow)));
}

function useWinograd(gpu: Gpu, layer: ConvLayer, p: Prepared, h: number, w: number): boolean {
  if (!p.wino) return false;
  if (winogradChunkRows(gpu, p.a, p.b, h, w) < 1) return false;
  if (layer.algorithm === 'winograd') return true;
  // Winograd's transforms cost O(channels) per pixel; with few channels the direct kernel wins.
  return Math.min(p.a, p.b) >= 16;
}

function directSteps(gpu: Gpu, layer: ConvLayer, p: Prepared, x: Tensor, y: Tensor, bias: GPUBuffer | undefined, label: string): Step[] {
  const [h, w] = [x.shape[1], x.shape[2]];
  const quads = h * Math.ceil(w / 4);
  const b4 = Math.ceil(p.b / 4) * 4;
  const spec = { ...convDirectSpec, constants: { K: layer.k, ALIGNED: w % 4 === 0 ? 1 : 0 } };
  return [bind(gpu, spec, { d_x: x.buffer, d_w: p.direct, d_b: bias ?? layer.zeros, d_y: y.buffer },
    { cin: p.a, cout: p.b, h, w, cout4: b4, has_bias: bias ? 1 : 0, quads },
    [Math.ceil(quads / 64), b4 / 4, 1], label)];
}

function winogradSteps(gpu: Gpu, layer: ConvLayer, p: Prepared, x: Tensor, y: Tensor, bias: GPUBuffer | undefined, label: string): Step[] {
  const [h, w] = [x.shape[1], x.shape[2]];
  const th = Math.ceil(h / 4);
  const tw = Math.ceil(w / 4);
  const rows = winogradChunkRows(gpu, p.a, p.b, h, w);
  const maxTiles = rows * tw;
  // Scratch is allocated here, at bind time, and reused by every encode of these steps.
  const v = storage(gpu, 36 * maxTiles * p.a * 4, `${label}.V`);
  const m = storage(gpu, 36 * maxTiles * p.b * 4, `${label}.M`);
  const aligned = { ALIGNED: w % 4 === 0 ? 1 : 0 };
  const steps: Step[] = [];
  for (let ty0 = 0; ty0 < th; ty0 += rows) {
    const tiles = Math.min(rows, th - ty0) * tw;
    steps.push(bind(gpu, { ...winoInputSpec, constants: aligned }, { wi_x: x.buffer, wi_v: v }, { cin: p.a, h, w, tw, ty0, tiles },
      fold(Math.ceil((tiles * p.a) / 4 / 64)), `${label} wino_input`));
    steps.push(bindMatmul(gpu, v, p.wino!, m, { m: tiles, n: p.b, k: p.a, batch: 36 }, `${label} wino_gemm`));
    steps.push(bind(gpu, { ...winoOutputSpec, constants: aligned }, { wo_m: m, wo_b: bias ?? layer.zeros, wo_y: y.buffer },
      { cout: p.b, h, w, tw, ty0, tiles, has_bias: bias ? 1 : 0 },
      fold(Math.ceil((tiles * p.b) / 4 / 64)), `${label} wino_output`));
  }
  return steps;
}

/** y = conv(x, w) + b; x [Cin,H,W], y [Cout,H,W]. */
export function conv2dForward(gpu: Gpu, layer: ConvLayer, x: Tensor, y: Tensor): Step[] {
  const hw = checkChw(x, layer.cin, 'x');
  checkChw(y, layer.cout, 'y', hw);
  const label = `conv_forward ${y.label}`;
  return useWinograd(gpu, layer, layer.fwd, hw[0], hw[1])
    ? winogradSteps(gpu, layer, layer.fwd, x, y, layer.bias.buffer, label)
    : directSteps(gpu, layer, layer.fwd, x, y, layer.bias.buffer, label);
}

/** dx = conv_transpose(dy, w): dx[i,p] = Σ_{o,u,v} dy[o, p-(u,v)+pad] w[o,i,u,v]; overwrites dx. */
export function conv2dBackwardInput(gpu: Gpu, layer: ConvLayer, dy: Tensor, dx: Tensor): Step[] {
  const hw = checkChw(dy, layer.cout, 'dy');
  checkChw(dx, layer.cin, 'dx', hw);
  const label = `conv_backward_input ${dx.label}`;
  return useWinograd(gpu, layer, layer.bwd, hw[0], hw[1])
    ? winogradSteps(gpu, layer, layer.bwd, dy, dx, undefined, label)
    : directSteps(gpu, layer, layer.bwd, dy, dx, undefined, label);
}

/** dw[o,i,u,v] = Σ_p dy[o,p] x[i,p+(u,v)-pad]; overwrites dw [Cout,Cin,K,K]. */
export function conv2dBackwardWeight(gpu: Gpu, x: Tensor, dy: Tensor, dw: Tensor): Step[] {
  const [cout, cin, k, k2] = dw.shape;
  if (dw.shape.length !== 4 || k !== k2 || k % 2 !== 1) {
    throw new PainterlyError(`conv2d: expected dw [Cout,Cin,K,K] with odd K, got [${dw.shape}]`);
  }
  const hw = checkChw(x, cin, 'x');
  checkChw(dy, cout, 'dy', hw);
  return [bind(gpu, convWgradSpec, { wg_x: x.buffer, wg_dy: dy.buffer, wg_dw: dw.buffer },
    { cin, cout, h: hw[0], w: hw[1], k }, [Math.ceil((cin * k * k) / 64), Math.ceil(cout / 8), 1],
    `conv_backward_weight ${dw.label}`)];
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
  return {
    forward: useWinograd(gpu, layer, layer.fwd, h, w) ? 'winograd' : 'direct',
    input: useWinograd(gpu, layer, layer.bwd, h, w) ? 'winograd' : 'direct',
  };
}
