// Float64 references for per-position masks and the masked (per-region) style loss of Luan et al., "Deep Photo Style
// Transfer" (CVPR 2017), written for clarity. See ops/mask.ts for the derivation.
import { gram } from './gram.ts';
import { t64, type T64 } from './tensor.ts';

/** y[c,p] = m[p] x[c,p] (x [C,H,W] or [C,M], m of M values). */
export function maskMul(x: T64, m: ArrayLike<number>): T64 {
  const M = m.length;
  const y = t64(x.shape);
  for (let e = 0; e < x.data.length; e++) y.data[e] = m[e % M] * x.data[e];
  return y;
}

/** dx = m ⊙ dy: the gradient of Σ maskMul(x, m) ⊙ dy w.r.t. x. */
export function maskMulBackward(dy: T64, m: ArrayLike<number>): T64 {
  return maskMul(dy, m);
}

/** The region Gram per unit of area, G_r / a_r with G_r = (m ⊙ F)(m ⊙ F)ᵀ and a_r = Σ_p m[p]; and a_r. */
export function regionGram(F: T64, m: ArrayLike<number>): { G: T64; area: number } {
  let area = 0;
  for (let p = 0; p < m.length; p++) area += m[p];
  return { G: gram(maskMul(F, m), 1 / area), area };
}

/**
 * E = Σ_r (a_r/M) · 1/(4N²) Σ_ij (G_r/a_r − Â_r)²_ij over the regions r (mask m_r, target Â_r: the style region's
 * G^s_r/a^s_r), and dE/dF = Σ_r m_r ⊙ (1/(N² M)) D_r (m_r ⊙ F) with D_r = G_r/a_r − Â_r (Â_r symmetric).
 * `terms` holds each region's E_r.
 */
export function maskedStyleLoss(F: T64, regions: { mask: ArrayLike<number>; target: T64 }[]): { loss: number; grad: T64; terms: number[] } {
  const N = F.shape[0];
  const M = F.data.length / N;
  const grad = t64(F.shape);
  const terms: number[] = [];
  for (const r of regions) {
    const { G, area } = regionGram(F, r.mask);
    const D = t64([N, N]);
    let s = 0;
    for (let i = 0; i < N * N; i++) {
      D.data[i] = G.data[i] - r.target.data[i];
      s += D.data[i] * D.data[i];
    }
    terms.push((area / M) * s / (4 * N * N));
    const Fr = maskMul(F, r.mask);
    // (1/(N² M)) D_r F_r, then through F_r = m ⊙ F.
    const c = 1 / (N * N * M);
    const dFr = t64(F.shape);
    for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) {
      const d = c * D.data[i * N + j];
      if (d === 0) continue;
      for (let p = 0; p < M; p++) dFr.data[i * M + p] += d * Fr.data[j * M + p];
    }
    const g = maskMulBackward(dFr, r.mask);
    g.data.forEach((v, k) => { grad.data[k] += v; });
  }
  return { loss: terms.reduce((a, b) => a + b, 0), grad, terms };
}
