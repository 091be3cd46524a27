// Float64 reference of the channel softmax (src/ops/softmax.ts) on [C,H,W] or [C,M]: at each position p,
//   y[c,p] = exp(x[c,p]/T) / Σ_c' exp(x[c',p]/T),   dx[c,p] = (1/T) y[c,p] (dy[c,p] - Σ_c' y[c',p] dy[c',p]).
import { t64, type T64 } from './tensor.ts';

export function softmaxChannels(x: T64, T: number): T64 {
  const C = x.shape[0];
  const M = x.data.length / C;
  const y = t64(x.shape);
  for (let p = 0; p < M; p++) {
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, x.data[c * M + p]);
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp((x.data[c * M + p] - m) / T);
    for (let c = 0; c < C; c++) y.data[c * M + p] = Math.exp((x.data[c * M + p] - m) / T) / s;
  }
  return y;
}

export function softmaxChannelsBackward(y: T64, dy: T64, T: number): T64 {
  const C = y.shape[0];
  const M = y.data.length / C;
  const dx = t64(y.shape);
  for (let p = 0; p < M; p++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += y.data[c * M + p] * dy.data[c * M + p];
    for (let c = 0; c < C; c++) dx.data[c * M + p] = (y.data[c * M + p] * (dy.data[c * M + p] - s)) / T;
  }
  return dx;
}
