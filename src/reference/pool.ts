// Float64 references for pooling on [C,H,W]: PyTorch's MaxPool2d / AvgPool2d(kernel K, stride S, padding P,
// ceil_mode), defaults K = S = 2, P = 0 (the old 2x2/2 behaviour: floor mode drops an odd last row/col; ceil mode
// clips border windows to the input). Output Ho = floor((H + 2P - K) / S) + 1 (ceil mode: ceil, less one when the
// last window would start at or past H + P). Max pads with -inf (only input elements compete); avg divides by the
// window clipped to the padded input [-P, H+P) (count_include_pad = True, torch's default; with P = 0 that is the
// window's input elements).
import { t64, type T64 } from './tensor.ts';

export interface PoolOptions { ceil?: boolean; kernel?: number; stride?: number; padding?: number }

interface Geo { k: number; s: number; p: number; ceil: boolean }

function geo(opts: boolean | PoolOptions): Geo {
  const o = typeof opts === 'boolean' ? { ceil: opts } : opts;
  return { k: o.kernel ?? 2, s: o.stride ?? 2, p: o.padding ?? 0, ceil: !!o.ceil };
}

function outSize(n: number, g: Geo): number {
  const t = (n + 2 * g.p - g.k) / g.s;
  let o = (g.ceil ? Math.ceil(t) : Math.floor(t)) + 1;
  if (g.ceil && (o - 1) * g.s >= n + g.p) o--;
  return Math.max(0, o);
}

function dims(shape: number[], g: Geo): [number, number, number, number, number] {
  const [C, H, W] = shape;
  return [C, H, W, outSize(H, g), outSize(W, g)];
}

/** Flat x indices of output (c,i,j)'s window elements inside the input, in row-major window order. */
function windowIndices(c: number, i: number, j: number, H: number, W: number, g: Geo): number[] {
  const ks: number[] = [];
  for (let di = 0; di < g.k; di++) for (let dj = 0; dj < g.k; dj++) {
    const h = g.s * i - g.p + di, w = g.s * j - g.p + dj;
    if (h >= 0 && h < H && w >= 0 && w < W) ks.push((c * H + h) * W + w);
  }
  return ks;
}

/** avg's divisor: the window clipped to the padded input. */
function divisor(i: number, j: number, H: number, W: number, g: Geo): number {
  const r0 = g.s * i - g.p, c0 = g.s * j - g.p;
  return (Math.min(r0 + g.k, H + g.p) - r0) * (Math.min(c0 + g.k, W + g.p) - c0);
}

/** y = max over each window; argmax = flat index into x of the first maximum in row-major window order. */
export function maxPoolForward(x: T64, opts: boolean | PoolOptions = false): { y: T64; argmax: Uint32Array } {
  const g = geo(opts);
  const [C, H, W, Ho, Wo] = dims(x.shape, g);
  const y = t64([C, Ho, Wo]);
  const argmax = new Uint32Array(C * Ho * Wo);
  for (let c = 0; c < C; c++) for (let i = 0; i < Ho; i++) for (let j = 0; j < Wo; j++) {
    let best = -Infinity;
    let at = -1;
    for (const k of windowIndices(c, i, j, H, W, g)) {
      if (at < 0 || x.data[k] > best) { best = x.data[k]; at = k; }
    }
    const o = (c * Ho + i) * Wo + j;
    y.data[o] = best;
    argmax[o] = at;
  }
  return { y, argmax };
}

/** dx[k] = Σ dy[o] over the windows o with argmax[o] = k (overlapping windows accumulate). */
export function maxPoolBackward(dy: T64, argmax: Uint32Array, xShape: number[]): T64 {
  const dx = t64(xShape);
  for (let o = 0; o < dy.data.length; o++) dx.data[argmax[o]] += dy.data[o];
  return dx;
}

export function avgPoolForward(x: T64, opts: boolean | PoolOptions = false): T64 {
  const g = geo(opts);
  const [C, H, W, Ho, Wo] = dims(x.shape, g);
  const y = t64([C, Ho, Wo]);
  for (let c = 0; c < C; c++) for (let i = 0; i < Ho; i++) for (let j = 0; j < Wo; j++) {
    const ks = windowIndices(c, i, j, H, W, g);
    y.data[(c * Ho + i) * Wo + j] = ks.reduce((a, k) => a + x.data[k], 0) / divisor(i, j, H, W, g);
  }
  return y;
}

/** dx = Σ over the windows holding each element of dy / divisor; elements no window reads get zero. */
export function avgPoolBackward(dy: T64, xShape: number[], opts: boolean | PoolOptions = false): T64 {
  const g = geo(opts);
  const [C, H, W, Ho, Wo] = dims(xShape, g);
  const dx = t64(xShape);
  for (let c = 0; c < C; c++) for (let i = 0; i < Ho; i++) for (let j = 0; j < Wo; j++) {
    const d = divisor(i, j, H, W, g);
    for (const k of windowIndices(c, i, j, H, W, g)) dx.data[k] += dy.data[(c * Ho + i) * Wo + j] / d;
  }
  return dx;
}
