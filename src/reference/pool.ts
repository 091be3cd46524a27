// Float64 references for 2x2 stride-2 pooling on [C,H,W] (output floor(H/2) x floor(W/2), odd last row/col dropped).
import { t64, type T64 } from './tensor.ts';

function dims(x: T64): [number, number, number, number, number] {
  const [C, H, W] = x.shape;
  return [C, H, W, Math.floor(H / 2), Math.floor(W / 2)];
}

/** y = max over each window; argmax = flat index into x of the first maximum in row-major window order. */
export function maxPoolForward(x: T64): { y: T64; argmax: Uint32Array } {
  const [C, H, W, Ho, Wo] = dims(x);
  const y = t64([C, Ho, Wo]);
  const argmax = new Uint32Array(C * Ho * Wo);
  for (let c = 0; c < C; c++) for (let i = 0; i < Ho; i++) for (let j = 0; j < Wo; j++) {
    let best = -Infinity;
    let at = -1;
    for (const [di, dj] of [[0, 0], [0, 1], [1, 0], [1, 1]]) {
      const k = (c * H + 2 * i + di) * W + 2 * j + dj;
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

export function avgPoolForward(x: T64): T64 {
  const [C, H, W, Ho, Wo] = dims(x);
  const y = t64([C, Ho, Wo]);
  for (let c = 0; c < C; c++) for (let i = 0; i < Ho; i++) for (let j = 0; j < Wo; j++) {
    const k = (c * H + 2 * i) * W + 2 * j;
    y.data[(c * Ho + i) * Wo + j] = 0.25 * (x.data[k] + x.data[k + 1] + x.data[k + W] + x.data[k + W + 1]);
  }
  return y;
}

/** dx = dy / 4 spread over each window; dropped last row/col get zero. */
export function avgPoolBackward(dy: T64, xShape: number[]): T64 {
  const [C, H, W] = xShape;
  const Ho = Math.floor(H / 2), Wo = Math.floor(W / 2);
  const dx = t64(xShape);
  for (let c = 0; c < C; c++) for (let i = 0; i < Ho; i++) for (let j = 0; j < Wo; j++) {
    const g = 0.25 * dy.data[(c * Ho + i) * Wo + j];
    const k = (c * H + 2 * i) * W + 2 * j;
    dx.data[k] = g; dx.data[k + 1] = g; dx.data[k + W] = g; dx.data[k + W + 1] = g;
  }
  return dx;
}
