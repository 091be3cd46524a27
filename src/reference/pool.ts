// Float64 references for 2x2 stride-2 pooling on [C,H,W], padding 0. Floor mode (default): output
// floor(H/2) x floor(W/2), an odd last row/col dropped. Ceil mode (PyTorch's ceil_mode=True): output
// ceil(H/2) x ceil(W/2), border windows clipped to the input; avg divides by the clipped window's element count
// (torch's divisor with padding 0 and count_include_pad: the window clipped to the padded input, i.e. the input).
import { t64, type T64 } from './tensor.ts';

function dims(shape: number[], ceil: boolean): [number, number, number, number, number] {
  const [C, H, W] = shape;
  const r = ceil ? Math.ceil : Math.floor;
  return [C, H, W, r(H / 2), r(W / 2)];
}

/** Flat x indices of output (c,i,j)'s window elements inside the input, in row-major window order. */
function windowIndices(c: number, i: number, j: number, H: number, W: number): number[] {
  const ks: number[] = [];
  for (let di = 0; di < 2; di++) for (let dj = 0; dj < 2; dj++) {
    const h = 2 * i + di, w = 2 * j + dj;
    if (h < H && w < W) ks.push((c * H + h) * W + w);
  }
  return ks;
}

/** y = max over each window; argmax = flat index into x of the first maximum in row-major window order. */
export function maxPoolForward(x: T64, ceil = false): { y: T64; argmax: Uint32Array } {
  const [C, H, W, Ho, Wo] = dims(x.shape, ceil);
  const y = t64([C, Ho, Wo]);
  const argmax = new Uint32Array(C * Ho * Wo);
  for (let c = 0; c < C; c++) for (let i = 0; i < Ho; i++) for (let j = 0; j < Wo; j++) {
    let best = -Infinity;
    let at = -1;
    for (const k of windowIndices(c, i, j, H, W)) {
      if (at < 0 || x.data[k] > best) { best = x.data[k]; at = k; }
    }
    const o = (c * Ho + i) * Wo + j;
    y.data[o] = best;
    argmax[o] = at;
  }
  return { y, argmax };
}

/** dx[argmax[o]] = dy[o]; zero elsewhere (windows do not overlap, so nothing accumulates). */
export function maxPoolBackward(dy: T64, argmax: Uint32Array, xShape: number[]): T64 {
  const dx = t64(xShape);
  for (let o = 0; o < dy.data.length; o++) dx.data[argmax[o]] += dy.data[o];
  return dx;
}

export function avgPoolForward(x: T64, ceil = false): T64 {
  const [C, H, W, Ho, Wo] = dims(x.shape, ceil);
  const y = t64([C, Ho, Wo]);
  for (let c = 0; c < C; c++) for (let i = 0; i < Ho; i++) for (let j = 0; j < Wo; j++) {
    const ks = windowIndices(c, i, j, H, W);
    y.data[(c * Ho + i) * Wo + j] = ks.reduce((a, k) => a + x.data[k], 0) / ks.length;
  }
  return y;
}

/** dx = dy / (window's element count) spread over each window; dropped last row/col (floor mode) get zero. */
export function avgPoolBackward(dy: T64, xShape: number[], ceil = false): T64 {
  const [C, H, W, Ho, Wo] = dims(xShape, ceil);
  const dx = t64(xShape);
  for (let c = 0; c < C; c++) for (let i = 0; i < Ho; i++) for (let j = 0; j < Wo; j++) {
    const ks = windowIndices(c, i, j, H, W);
    for (const k of ks) dx.data[k] = dy.data[(c * Ho + i) * Wo + j] / ks.length;
  }
  return dx;
}
