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

/**
 * dst with dst[dstC0 + c, p] = (accumulate ? dst[dstC0 + c, p] : 0) + src[srcC0 + c, p] for c < channels (a new
 * tensor; dst is not modified). channels defaults to src's channels from srcC0 on.
 */
export function channelCopy(
  src: T64, dst: T64, opts: { srcC0?: number; dstC0?: number; channels?: number; accumulate?: boolean } = {},
): T64 {
  const M = src.data.length / src.shape[0];
  if (dst.data.length / dst.shape[0] !== M) throw new Error(`channelCopy reference: [${src.shape}] -> [${dst.shape}]`);
  const s0 = opts.srcC0 ?? 0, d0 = opts.dstC0 ?? 0;
  const n = opts.channels ?? src.shape[0] - s0;
  const out = t64(dst.shape, dst.data);
  for (let c = 0; c < n; c++) {
    for (let p = 0; p < M; p++) {
      const e = (d0 + c) * M + p;
      out.data[e] = (opts.accumulate ? out.data[e] : 0) + src.data[(s0 + c) * M + p];
    }
  }
  return out;
}

/** Concatenation along channels of [C_i, ...] tensors with equal positions. */
export function concatChannels(xs: T64[]): T64 {
  const C = xs.reduce((a, x) => a + x.shape[0], 0);
  let y = t64([C, ...xs[0].shape.slice(1)]);
  let c0 = 0;
  for (const x of xs) { y = channelCopy(x, y, { dstC0: c0 }); c0 += x.shape[0]; }
  return y;
}
