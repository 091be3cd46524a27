// Float64 references for the per-channel ops on features [C, M] (a [C,H,W] tensor with M = H*W).
import { t64, type T64 } from './tensor.ts';

function cm(x: T64): [number, number] {
  return [x.shape[0], x.data.length / x.shape[0]];
}

/** [mean_0..mean_{C-1}, var_0..var_{C-1}], unbiased variance (M - 1), 0 when M = 1. */
export function channelMoments(x: T64): Float64Array {
  const [C, M] = cm(x);
  const out = new Float64Array(2 * C);
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let p = 0; p < M; p++) s += x.data[c * M + p];
    const mean = s / M;
    let d2 = 0;
    for (let p = 0; p < M; p++) d2 += (x.data[c * M + p] - mean) ** 2;
    out[c] = mean;
    out[C + c] = M > 1 ? d2 / (M - 1) : 0;
  }
  return out;
}

/** y[c,p] = a[c] x[c,p] + b[c], coef = [a..., b...]. */
export function channelAffine(x: T64, coef: ArrayLike<number>): T64 {
  const [C, M] = cm(x);
  const y = t64(x.shape);
  for (let c = 0; c < C; c++) for (let p = 0; p < M; p++) y.data[c * M + p] = coef[c] * x.data[c * M + p] + coef[C + c];
  return y;
}

/** dx[c,p] = a[c] dy[c,p]. */
export function channelAffineBackward(dy: T64, coef: ArrayLike<number>): T64 {
  const [C, M] = cm(dy);
  const dx = t64(dy.shape);
  for (let c = 0; c < C; c++) for (let p = 0; p < M; p++) dx.data[c * M + p] = coef[c] * dy.data[c * M + p];
  return dx;
}

/** y[o,p] = Σ_i T[o,i] x[i,p] + bias[o]; T row-major [Co, Ci]; y has shape [Co, ...x.shape[1:]]. */
export function channelMix(x: T64, T: ArrayLike<number>, bias: ArrayLike<number> | null, Co: number): T64 {
  const [Ci, M] = cm(x);
  const y = t64([Co, ...x.shape.slice(1)]);
  for (let o = 0; o < Co; o++) for (let p = 0; p < M; p++) {
    let s = bias ? bias[o] : 0;
    for (let i = 0; i < Ci; i++) s += T[o * Ci + i] * x.data[i * M + p];
    y.data[o * M + p] = s;
  }
  return y;
}

/** dx[i,p] = Σ_o T[o,i] dy[o,p]; dx has shape [Ci, ...dy.shape[1:]]. */
export function channelMixBackward(dy: T64, T: ArrayLike<number>, Ci: number): T64 {
  const [Co, M] = cm(dy);
  const dx = t64([Ci, ...dy.shape.slice(1)]);
  for (let i = 0; i < Ci; i++) for (let p = 0; p < M; p++) {
    let s = 0;
    for (let o = 0; o < Co; o++) s += T[o * Ci + i] * dy.data[o * M + p];
    dx.data[i * M + p] = s;
  }
  return dx;
}
