// 2x2 stride-2 max and average pooling, forward and backward (shaders/pool.wgsl). Layout float32 [C,H,W], batch 1;
// output [C, floor(H/2), floor(W/2)], or with { ceil: true } (PyTorch's ceil_mode=True, padding 0)
// [C, ceil(H/2), ceil(W/2)]: border windows cover only their valid elements (avg divides by their count).
import source from '../../shaders/pool.wgsl';
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { bind, type KernelSpec, type Step } from '../gpu/kernel.ts';
import type { Tensor } from '../gpu/tensor.ts';

const file = 'shaders/pool.wgsl';
const uniforms = { n: 'u32', H: 'u32', W: 'u32', Ho: 'u32', Wo: 'u32' } as const;
export const maxPoolForwardSpec: KernelSpec = {
  file, source, entry: 'max_pool_forward', uniforms,
  bindings: { mp: 'uniform', mx: 'read', my: 'read_write', margmax: 'read_write' },
};
export const maxPoolBackwardSpec: KernelSpec = {
  file, source, entry: 'max_pool_backward', uniforms,
  bindings: { mbp: 'uniform', mbdy: 'read', mbargmax: 'read', mbdx: 'read_write' },
};
export const avgPoolForwardSpec: KernelSpec = {
  file, source, entry: 'avg_pool_forward', uniforms, bindings: { ap: 'uniform', ax: 'read', ay: 'read_write' },
};
export const avgPoolBackwardSpec: KernelSpec = {
  file, source, entry: 'avg_pool_backward', uniforms, bindings: { abp: 'uniform', abdy: 'read', abdx: 'read_write' },
};

export interface PoolOptions {
  /** PyTorch's ceil_mode: output ceil(H/2) x ceil(W/2) instead of floor(H/2) x floor(W/2). Default false. */
  ceil?: boolean;
}

/** Output [Ho, Wo] of 2x2 stride-2 pooling of an H x W plane (floor, or ceil mode). */
export function pooledShape(h: number, w: number, ceil = false): [number, number] {
  const r = ceil ? Math.ceil : Math.floor;
  return [r(h / 2), r(w / 2)];
}

/** Checks x [C,H,W] against y [C,Ho,Wo] (pooledShape) and returns the kernel's uniforms (n unset). */
function geometry(what: string, x: Tensor, y: Tensor, opts: PoolOptions): { n: number; H: number; W: number; Ho: number; Wo: number } {
  if (x.shape.length !== 3) throw new PainterlyError(`${what}: expected input [C,H,W], got [${x.shape}] (${x.label})`);
  const [C, H, W] = x.shape;
  const want = [C, ...pooledShape(H, W, opts.ceil)];
  if (y.shape.length !== 3 || y.shape.some((v, i) => v !== want[i])) {
    throw new PainterlyError(`${what}: expected pooled tensor [${want}] for input [${x.shape}]${opts.ceil ? ' (ceil mode)' : ''}, ` +
      `got [${y.shape}] (${y.label})`);
  }
  return { n: 0, H, W, Ho: want[1], Wo: want[2] };
}

/** A u32 buffer for maxPoolForward's argmax, one element per output element of `y`. */
export function createArgmax(gpu: Gpu, y: Tensor): GPUBuffer {
  return gpu.device.createBuffer({
    label: `${y.label}.argmax`, size: Math.max(16, Math.ceil((y.size * 4) / 16) * 16),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
}

function checkArgmax(what: string, argmax: GPUBuffer, y: Tensor): void {
  if (argmax.size < y.size * 4) {
    throw new PainterlyError(`${what}: argmax buffer of ${argmax.size} bytes is too small for ${y.size} outputs (use createArgmax)`);
  }
}

/** y = max over each 2x2 window (its valid part); argmax[o] = flat index into x of the window's first maximum. */
export function maxPoolForward(gpu: Gpu, x: Tensor, y: Tensor, argmax: GPUBuffer, opts: PoolOptions = {}): Step[] {
  const g = geometry('maxPoolForward', x, y, opts);
  checkArgmax('maxPoolForward', argmax, y);
  if (y.size === 0) return [];
  return [bind(gpu, maxPoolForwardSpec, { mx: x.buffer, my: y.buffer, margmax: argmax }, { ...g, n: y.size },
    Math.ceil(y.size / 256), `max_pool_forward ${y.label}`)];
}

/** dx = dy scattered to each window's argmax, zero elsewhere (overwrites dx). */
export function maxPoolBackward(gpu: Gpu, dy: Tensor, argmax: GPUBuffer, dx: Tensor, opts: PoolOptions = {}): Step[] {
  const g = geometry('maxPoolBackward', dx, dy, opts);
  checkArgmax('maxPoolBackward', argmax, dy);
  return [bind(gpu, maxPoolBackwardSpec, { mbdy: dy.buffer, mbargmax: argmax, mbdx: dx.buffer }, { ...g, n: dx.size },
    Math.ceil(dx.size / 256), `max_pool_backward ${dx.label}`)];
}

/** y = mean of each 2x2 window (of its valid elements in ceil mode). */
export function avgPoolForward(gpu: Gpu, x: Tensor, y: Tensor, opts: PoolOptions = {}): Step[] {
  const g = geometry('avgPoolForward', x, y, opts);
  if (y.size === 0) return [];
  return [bind(gpu, avgPoolForwardSpec, { ax: x.buffer, ay: y.buffer }, { ...g, n: y.size },
    Math.ceil(y.size / 256), `avg_pool_forward ${y.label}`)];
}

/** dx = dy / (window's valid count, 4 in floor mode) over each window, zero in a dropped last row/column (overwrites dx). */
export function avgPoolBackward(gpu: Gpu, dy: Tensor, dx: Tensor, opts: PoolOptions = {}): Step[] {
  const g = geometry('avgPoolBackward', dx, dy, opts);
  return [bind(gpu, avgPoolBackwardSpec, { abdy: dy.buffer, abdx: dx.buffer }, { ...g, n: dx.size },
    Math.ceil(dx.size / 256), `avg_pool_backward ${dx.label}`)];
}
