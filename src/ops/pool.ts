// Max and average pooling, forward and backward (shaders/pool.wgsl). Layout float32 [C,H,W], batch 1. PyTorch's
// MaxPool2d / AvgPool2d(kernel K, stride S, padding P, ceil_mode), defaults K = S = 2, P = 0: output
// [C, Ho, Wo], Ho = floor((H + 2P - K) / S) + 1 (ceil mode: ceil, less one if the last window would start past
// H + P). 2x2/2 without padding runs dedicated kernels (e.g. floor: [C, floor(H/2), floor(W/2)]; ceil: border windows
// cover only their valid elements, avg divides by their count); anything else the general ones: max pads with -inf,
// avg divides by the window clipped to the padded input (count_include_pad = True, PyTorch's default). Backwards are
// gathers (one invocation per dx element, summing over the windows that hold it): overlapping windows (S < K) need no
// atomics.
import source from '../../shaders/pool.wgsl';
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { bind, fold, type KernelSpec, type Step } from '../gpu/kernel.ts';
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
const guniforms = { n: 'u32', H: 'u32', W: 'u32', Ho: 'u32', Wo: 'u32', K: 'u32', S: 'u32', P: 'u32' } as const;
export const poolGeneralSpecs = {
  maxForward: { file, source, entry: 'max_pool_forward_general', uniforms: guniforms,
    bindings: { gmp: 'uniform', gmx: 'read', gmy: 'read_write', gmargmax: 'read_write' } },
  maxBackward: { file, source, entry: 'max_pool_backward_general', uniforms: guniforms,
    bindings: { gmbp: 'uniform', gmbdy: 'read', gmbargmax: 'read', gmbdx: 'read_write' } },
  avgForward: { file, source, entry: 'avg_pool_forward_general', uniforms: guniforms,
    bindings: { gap: 'uniform', gax: 'read', gay: 'read_write' } },
  avgBackward: { file, source, entry: 'avg_pool_backward_general', uniforms: guniforms,
    bindings: { gabp: 'uniform', gabdy: 'read', gabdx: 'read_write' } },
} satisfies Record<string, KernelSpec>;

export interface PoolOptions {
  /** PyTorch's ceil_mode: round the output size up instead of down. Default false. */
  ceil?: boolean;
  /** Window size K (K x K). Default 2. */
  kernel?: number;
  /** Stride S. Default 2. */
  stride?: number;
  /** Padding P on each side, at most K/2 (as PyTorch); -inf for max, counted in avg's divisor. Default 0. */
  padding?: number;
}

interface PoolGeometry { k: number; s: number; p: number; ceil: boolean }

function poolGeometry(opts: boolean | PoolOptions, what = 'pool'): PoolGeometry {
  const o = typeof opts === 'boolean' ? { ceil: opts } : opts;
  const k = o.kernel ?? 2;
  const s = o.stride ?? 2;
  const p = o.padding ?? 0;
  if (!Number.isInteger(k) || k < 1) throw new PainterlyError(`${what}: kernel must be an integer >= 1, got ${k}`);
  if (!Number.isInteger(s) || s < 1) throw new PainterlyError(`${what}: stride must be an integer >= 1, got ${s}`);
  if (!Number.isInteger(p) || p < 0 || p > k / 2) {
    throw new PainterlyError(`${what}: padding must be an integer in [0, kernel/2] = [0, ${Math.floor(k / 2)}], got ${p}`);
  }
  return { k, s, p, ceil: !!o.ceil };
}

function outSize(n: number, g: PoolGeometry): number {
  const t = (n + 2 * g.p - g.k) / g.s;
  let o = (g.ceil ? Math.ceil(t) : Math.floor(t)) + 1;
  if (g.ceil && (o - 1) * g.s >= n + g.p) o--;
  return Math.max(0, o);
}

/**
 * Output [Ho, Wo] of pooling an H x W plane (PyTorch's formula); the third argument is the options or, as before,
 * just `ceil` for 2x2 stride-2 pooling.
 */
export function pooledShape(h: number, w: number, ceilOrOptions: boolean | PoolOptions = false): [number, number] {
  const g = poolGeometry(ceilOrOptions, 'pooledShape');
  return [outSize(h, g), outSize(w, g)];
}

type Uniforms = { n: number; H: number; W: number; Ho: number; Wo: number; K?: number; S?: number; P?: number };

/**
 * Checks x [C,H,W] against y [C,Ho,Wo] (pooledShape) and returns the kernel's uniforms (n unset; K, S, P only for
 * the general kernels) and whether the 2x2/2 fast path applies.
 */
function geometry(what: string, x: Tensor, y: Tensor, opts: PoolOptions): { u: Uniforms; fast: boolean } {
  if (x.shape.length !== 3) throw new PainterlyError(`${what}: expected input [C,H,W], got [${x.shape}] (${x.label})`);
  const g = poolGeometry(opts, what);
  const [C, H, W] = x.shape;
  const want = [C, ...pooledShape(H, W, opts)];
  if (y.shape.length !== 3 || y.shape.some((v, i) => v !== want[i])) {
    const desc = `${g.k}x${g.k}/${g.s}${g.p ? ` padding ${g.p}` : ''}${g.ceil ? ', ceil mode' : ''}`;
    throw new PainterlyError(`${what}: expected pooled tensor [${want}] for input [${x.shape}] (${desc}), got [${y.shape}] (${y.label})`);
  }
  const fast = g.k === 2 && g.s === 2 && g.p === 0;
  const u: Uniforms = { n: 0, H, W, Ho: want[1], Wo: want[2] };
  return { u: fast ? u : { ...u, K: g.k, S: g.s, P: g.p }, fast };
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

/**
 * y = max over each window's input elements (padding is -inf); argmax[o] = flat index into x of the window's first
 * maximum in row-major window order. `argmax`: createArgmax(gpu, y).
 */
export function maxPoolForward(gpu: Gpu, x: Tensor, y: Tensor, argmax: GPUBuffer, opts: PoolOptions = {}): Step[] {
  const { u, fast } = geometry('maxPoolForward', x, y, opts);
  checkArgmax('maxPoolForward', argmax, y);
  if (y.size === 0) return [];
  return fast
    ? [bind(gpu, maxPoolForwardSpec, { mx: x.buffer, my: y.buffer, margmax: argmax }, { ...u, n: y.size },
      Math.ceil(y.size / 256), `max_pool_forward ${y.label}`)]
    : [bind(gpu, poolGeneralSpecs.maxForward, { gmx: x.buffer, gmy: y.buffer, gmargmax: argmax }, { ...u, n: y.size },
      fold(Math.ceil(y.size / 256)), `max_pool_forward_general ${y.label}`)];
}

/**
 * dx[k] = Σ dy[o] over the windows o whose argmax is k, zero elsewhere (overwrites dx; a gather, so overlapping
 * windows are fine). dx must not be dy.
 */
export function maxPoolBackward(gpu: Gpu, dy: Tensor, argmax: GPUBuffer, dx: Tensor, opts: PoolOptions = {}): Step[] {
  const { u, fast } = geometry('maxPoolBackward', dx, dy, opts);
  checkArgmax('maxPoolBackward', argmax, dy);
  return fast
    ? [bind(gpu, maxPoolBackwardSpec, { mbdy: dy.buffer, mbargmax: argmax, mbdx: dx.buffer }, { ...u, n: dx.size },
      Math.ceil(dx.size / 256), `max_pool_backward ${dx.label}`)]
    : [bind(gpu, poolGeneralSpecs.maxBackward, { gmbdy: dy.buffer, gmbargmax: argmax, gmbdx: dx.buffer }, { ...u, n: dx.size },
      fold(Math.ceil(dx.size / 256)), `max_pool_backward_general ${dx.label}`)];
}

/** y = sum of each window's input elements / its divisor (the 2x2 fast path: their count; see the file header). */
export function avgPoolForward(gpu: Gpu, x: Tensor, y: Tensor, opts: PoolOptions = {}): Step[] {
  const { u, fast } = geometry('avgPoolForward', x, y, opts);
  if (y.size === 0) return [];
  return fast
    ? [bind(gpu, avgPoolForwardSpec, { ax: x.buffer, ay: y.buffer }, { ...u, n: y.size },
      Math.ceil(y.size / 256), `avg_pool_forward ${y.label}`)]
    : [bind(gpu, poolGeneralSpecs.avgForward, { gax: x.buffer, gay: y.buffer }, { ...u, n: y.size },
      fold(Math.ceil(y.size / 256)), `avg_pool_forward_general ${y.label}`)];
}

/**
 * dx[k] = Σ dy[o] / divisor(o) over the windows o holding k; zero in rows/columns no window reads (overwrites dx).
 */
export function avgPoolBackward(gpu: Gpu, dy: Tensor, dx: Tensor, opts: PoolOptions = {}): Step[] {
  const { u, fast } = geometry('avgPoolBackward', dx, dy, opts);
  return fast
    ? [bind(gpu, avgPoolBackwardSpec, { abdy: dy.buffer, abdx: dx.buffer }, { ...u, n: dx.size },
      Math.ceil(dx.size / 256), `avg_pool_backward ${dx.label}`)]
    : [bind(gpu, poolGeneralSpecs.avgBackward, { gabdy: dy.buffer, gabdx: dx.buffer }, { ...u, n: dx.size },
      fold(Math.ceil(dx.size / 256)), `avg_pool_backward_general ${dx.label}`)];
}
