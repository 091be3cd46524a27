// Float64 reference of the colour guided filter (He et al.), written from the definition with explicit 2-D window
// sums (no separable or sliding sums), so it checks the GPU's decomposition too. I, p: [3,H,W]; windows of radius r
// clipped to the image; the 3x3 systems solved by Gaussian elimination with partial pivoting.
import { t64, type T64 } from './tensor.ts';

/** Solves A x = b for a 3x3 A (row-major 9 values) by Gaussian elimination with partial pivoting. */
export function solve3(A: ArrayLike<number>, b: ArrayLike<number>): number[] {
  const m = [[A[0], A[1], A[2], b[0]], [A[3], A[4], A[5], b[1]], [A[6], A[7], A[8], b[2]]];
  for (let col = 0; col < 3; col++) {
    let piv = col;
    for (let r = col + 1; r < 3; r++) if (Math.abs(m[r][col]) > Math.abs(m[piv][col])) piv = r;
    [m[col], m[piv]] = [m[piv], m[col]];
    for (let r = col + 1; r < 3; r++) {
      const f = m[r][col] / m[col][col];
      for (let c = col; c < 4; c++) m[r][c] -= f * m[col][c];
    }
  }
  const x = [0, 0, 0];
  for (let r = 2; r >= 0; r--) {
    let s = m[r][3];
    for (let c = r + 1; c < 3; c++) s -= m[r][c] * x[c];
    x[r] = s / m[r][r];
  }
  return x;
}

/** q = guided filter of p with guide I: per window a_c = (Σ + eps I)⁻¹ cov(I, p_c), b_c = mean p_c − a_c·mean I. */
export function guidedFilter(I: T64, p: T64, r: number, eps: number): T64 {
  const [, H, W] = I.shape;
  const n = H * W;
  const a = new Float64Array(9 * n), b = new Float64Array(3 * n);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    const k = y * W + x;
    let cnt = 0;
    const mI = [0, 0, 0], mP = [0, 0, 0], II = new Array(9).fill(0), IP = new Array(9).fill(0);
    for (let yy = Math.max(0, y - r); yy <= Math.min(H - 1, y + r); yy++) for (let xx = Math.max(0, x - r); xx <= Math.min(W - 1, x + r); xx++) {
      const j = yy * W + xx;
      cnt++;
      for (let u = 0; u < 3; u++) {
        mI[u] += I.data[u * n + j];
        mP[u] += p.data[u * n + j];
        for (let v = 0; v < 3; v++) {
          II[3 * u + v] += I.data[u * n + j] * I.data[v * n + j];
          IP[3 * u + v] += I.data[u * n + j] * p.data[v * n + j];
        }
      }
    }
    for (let u = 0; u < 3; u++) { mI[u] /= cnt; mP[u] /= cnt; }
    const S = II.map((v, i) => v / cnt - mI[Math.floor(i / 3)] * mI[i % 3] + (Math.floor(i / 3) === i % 3 ? eps : 0));
    for (let c = 0; c < 3; c++) {
      const cov = [0, 1, 2].map((u) => IP[3 * u + c] / cnt - mI[u] * mP[c]);
      const ac = solve3(S, cov);
      for (let u = 0; u < 3; u++) a[(3 * c + u) * n + k] = ac[u];
      b[c * n + k] = mP[c] - (ac[0] * mI[0] + ac[1] * mI[1] + ac[2] * mI[2]);
    }
  }
  const q = t64([3, H, W]);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    const i = y * W + x;
    let cnt = 0;
    const sa = new Array(9).fill(0), sb = [0, 0, 0];
    for (let yy = Math.max(0, y - r); yy <= Math.min(H - 1, y + r); yy++) for (let xx = Math.max(0, x - r); xx <= Math.min(W - 1, x + r); xx++) {
      const k = yy * W + xx;
      cnt++;
      for (let m = 0; m < 9; m++) sa[m] += a[m * n + k];
      for (let c = 0; c < 3; c++) sb[c] += b[c * n + k];
    }
    for (let c = 0; c < 3; c++) {
      let v = sb[c];
      for (let u = 0; u < 3; u++) v += sa[3 * c + u] * I.data[u * n + i];
      q.data[c * n + i] = v / cnt;
    }
  }
  return q;
}
