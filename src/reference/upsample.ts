// Float64 references for nearest-neighbour 2x upsampling on [C,H,W] -> [C,2H,2W].
import { t64, type T64 } from './tensor.ts';

/** y[c, r, s] = x[c, floor(r/2), floor(s/2)]. */
export function upsampleForward(x: T64): T64 {
  const [C, H, W] = x.shape;
  const y = t64([C, 2 * H, 2 * W]);
  for (let c = 0; c < C; c++) for (let r = 0; r < 2 * H; r++) for (let s = 0; s < 2 * W; s++) {
    y.data[(c * 2 * H + r) * 2 * W + s] = x.data[(c * H + (r >> 1)) * W + (s >> 1)];
  }
  return y;
}

/** dx[c, i, j] = sum of dy over the 2x2 block (2i..2i+1, 2j..2j+1). */
export function upsampleBackward(dy: T64): T64 {
  const [C, H2, W2] = dy.shape;
  const dx = t64([C, H2 / 2, W2 / 2]);
  const H = H2 / 2, W = W2 / 2;
  for (let c = 0; c < C; c++) for (let r = 0; r < H2; r++) for (let s = 0; s < W2; s++) {
    dx.data[(c * H + (r >> 1)) * W + (s >> 1)] += dy.data[(c * H2 + r) * W2 + s];
  }
  return dx;
}
