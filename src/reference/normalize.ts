import { t64, type T64 } from './tensor.ts';

export function normalizeForward(x: T64, mean: readonly number[], std: readonly number[]): T64 {
  const plane = x.shape[1] * x.shape[2];
  return t64(x.shape, x.data.map((v, i) => (v - mean[Math.floor(i / plane)]) / std[Math.floor(i / plane)]));
}

export function normalizeBackward(dy: T64, std: readonly number[]): T64 {
  const plane = dy.shape[1] * dy.shape[2];
  return t64(dy.shape, dy.data.map((g, i) => g / std[Math.floor(i / plane)]));
}
