import { t64, type T64 } from './tensor.ts';
import type { Rect } from '../ops/crop.ts';

/** dst[c, to + (i, j)] = alpha * src[c, from + (i, j)] + beta * dst[c, to + (i, j)]; returns a new tensor. */
export function windowCopy(src: T64, dst: T64, from: Rect, to: { y0: number; x0: number }, alpha = 1, beta = 0): T64 {
  const [C, sH, sW] = src.shape;
  const [, dH, dW] = dst.shape;
  const out = t64(dst.shape, dst.data);
  for (let c = 0; c < C; c++) {
    for (let i = 0; i < from.h; i++) {
      for (let j = 0; j < from.w; j++) {
        const d = (c * dH + to.y0 + i) * dW + to.x0 + j;
        const s = alpha * src.data[(c * sH + from.y0 + i) * sW + from.x0 + j];
        out.data[d] = beta === 0 ? s : s + beta * dst.data[d];
      }
    }
  }
  return out;
}
