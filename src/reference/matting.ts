// Float64 references for the matting Laplacian M of a guide I [3,H,W] (Levin et al. 2008, 3x3 windows whose centre is
// at least one pixel from every border, |w| = 9):
//   M_ij = Σ_{k: i,j ∈ w_k} (δ_ij − (1 + (I_i − μ_k)ᵀ Δ_k (I_j − μ_k)) / 9),  Δ_k = (Σ_k + ε/9 I₃)⁻¹,
// Σ_k = E_k[I Iᵀ] − μ_k μ_kᵀ as in Levin's code. Two independent forms: M assembled explicitly as a sparse matrix,
// and the matrix-free product (the GPU's algorithm, but with Δ_k itself rather than its Cholesky factor).
import { t64, type T64 } from './tensor.ts';

/** Inverse of a 3x3 matrix (row-major) by the adjugate. */
export function inverse3(m: ArrayLike<number>): number[] {
  const [a, b, c, d, e, f, g, h, i] = Array.from(m);
  const A = e * i - f * h, B = -(d * i - f * g), C = d * h - e * g;
  const det = a * A + b * B + c * C;
  return [A, -(b * i - c * h), b * f - c * e, B, a * i - c * g, -(a * f - c * d), C, -(a * h - b * g), a * e - b * d].map((v) => v / det);
}

interface Window { k: number; pixels: number[]; mu: number[]; delta: number[] }

/** Every window: its 9 pixel indices, mean colour and Δ. */
function windows(I: T64, eps: number): Window[] {
  const [, H, W] = I.shape;
  const n = H * W;
  const out: Window[] = [];
  for (let y = 1; y + 1 < H; y++) for (let x = 1; x + 1 < W; x++) {
    const pixels: number[] = [];
    for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) pixels.push((y + dy) * W + x + dx);
    const mu = [0, 1, 2].map((c) => pixels.reduce((s, j) => s + I.data[c * n + j], 0) / 9);
    const S: number[] = [];
    for (let u = 0; u < 3; u++) for (let v = 0; v < 3; v++) {
      S.push(pixels.reduce((s, j) => s + I.data[u * n + j] * I.data[v * n + j], 0) / 9 - mu[u] * mu[v] + (u === v ? eps / 9 : 0));
    }
    out.push({ k: y * W + x, pixels, mu, delta: inverse3(S) });
  }
  return out;
}

/** M as a sparse matrix: row i -> (column j -> value). */
export function mattingLaplacianSparse(I: T64, eps: number): { n: number; rows: Map<number, number>[] } {
  const [, H, W] = I.shape;
  const n = H * W;
  const rows = Array.from({ length: n }, () => new Map<number, number>());
  for (const w of windows(I, eps)) {
    const d = w.pixels.map((j) => [0, 1, 2].map((c) => I.data[c * n + j] - w.mu[c]));
    w.pixels.forEach((i, a) => w.pixels.forEach((j, b) => {
      let q = 0;
      for (let u = 0; u < 3; u++) for (let v = 0; v < 3; v++) q += d[a][u] * w.delta[3 * u + v] * d[b][v];
      rows[i].set(j, (rows[i].get(j) ?? 0) + (i === j ? 1 : 0) - (1 + q) / 9);
    }));
  }
  return { n, rows };
}

/** y = M x for a sparse M. */
export function sparseMatVec(M: { n: number; rows: Map<number, number>[] }, x: ArrayLike<number>): Float64Array {
  const y = new Float64Array(M.n);
  M.rows.forEach((row, i) => { for (const [j, v] of row) y[i] += v * x[j]; });
  return y;
}

/**
 * Matrix-free M v_c for each channel of v [3,H,W]:
 * (M v)_i = n_i v_i − Σ_{k ∋ i} (mean_k v + (I_i − μ_k)ᵀ Δ_k Σ_{j∈w_k} (I_j − μ_k) v_j / 9).
 */
export function mattingProduct(I: T64, v: T64, eps: number): T64 {
  const [, H, W] = I.shape;
  const n = H * W;
  const out = t64([3, H, W]);
  for (const w of windows(I, eps)) {
    const d = w.pixels.map((j) => [0, 1, 2].map((c) => I.data[c * n + j] - w.mu[c]));
    for (let c = 0; c < 3; c++) {
      const vs = w.pixels.map((j) => v.data[c * n + j]);
      const mean = vs.reduce((a, b) => a + b, 0) / 9;
      const T = [0, 1, 2].map((u) => vs.reduce((s, vj, b) => s + d[b][u] * vj, 0) / 9);
      const a = [0, 1, 2].map((u) => w.delta[3 * u] * T[0] + w.delta[3 * u + 1] * T[1] + w.delta[3 * u + 2] * T[2]);
      w.pixels.forEach((i, b) => {
        out.data[c * n + i] += vs[b] - mean - (d[b][0] * a[0] + d[b][1] * a[1] + d[b][2] * a[2]);
      });
    }
  }
  return out;
}

/** E = Σ_c V_cᵀ M V_c and its gradient 2 M V_c. */
export function mattingEnergy(I: T64, V: T64, eps: number): { energy: number; grad: T64 } {
  const MV = mattingProduct(I, V, eps);
  let energy = 0;
  for (let i = 0; i < V.data.length; i++) energy += V.data[i] * MV.data[i];
  return { energy, grad: t64(V.shape, MV.data.map((x) => 2 * x)) };
}
