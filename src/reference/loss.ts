// Float64 references for the content, style (Gatys et al. 2016) and total-variation losses and their gradients.
import { gram, symMatmul } from './gram.ts';
import { t64, type T64 } from './tensor.ts';

/** L = 1/2 Σ (F - P)², dL/dF = F - P */
export function contentLoss(F: T64, P: T64): { loss: number; grad: T64 } {
  const grad = t64(F.shape);
  let loss = 0;
  for (let i = 0; i < F.data.length; i++) {
    const d = F.data[i] - P.data[i];
    grad.data[i] = d;
    loss += 0.5 * d * d;
  }
  return { loss, grad };
}

/** G = F Fᵀ, E = 1/(4 N² M²) Σ (G - A)², dE/dF = 1/(N² M²) (G - A) F  (A symmetric) */
export function styleLoss(F: T64, A: T64): { loss: number; grad: T64 } {
  const N = F.shape[0];
  const M = F.data.length / N;
  const G = gram(F);
  const D = t64([N, N]);
  let loss = 0;
  for (let i = 0; i < N * N; i++) {
    D.data[i] = G.data[i] - A.data[i];
    loss += D.data[i] * D.data[i];
  }
  const c = 1 / (N * N * M * M);
  return { loss: 0.25 * c * loss, grad: symMatmul(D, F, c, false) };
}

/** L = Σ (x[c,i+1,j] - x[c,i,j])² + Σ (x[c,i,j+1] - x[c,i,j])², and dL/dx. */
export function tvLoss(x: T64): { loss: number; grad: T64 } {
  const [C, H, W] = x.shape;
  const grad = t64(x.shape);
  let loss = 0;
  const at = (c: number, i: number, j: number) => (c * H + i) * W + j;
  for (let c = 0; c < C; c++) for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) {
    const k = at(c, i, j);
    if (i + 1 < H) {
      const d = x.data[at(c, i + 1, j)] - x.data[k];
      loss += d * d; grad.data[at(c, i + 1, j)] += 2 * d; grad.data[k] -= 2 * d;
    }
    if (j + 1 < W) {
      const d = x.data[at(c, i, j + 1)] - x.data[k];
      loss += d * d; grad.data[at(c, i, j + 1)] += 2 * d; grad.data[k] -= 2 * d;
    }
  }
  return { loss, grad };
}
