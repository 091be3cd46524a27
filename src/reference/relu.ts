import { t64, type T64 } from './tensor.ts';

export function reluForward(x: T64): T64 {
  return t64(x.shape, x.data.map((v) => Math.max(v, 0)));
}

/** dx = dy * [x > 0] */
export function reluBackward(x: T64, dy: T64): T64 {
  return t64(x.shape, dy.data.map((g, i) => (x.data[i] > 0 ? g : 0)));
}
