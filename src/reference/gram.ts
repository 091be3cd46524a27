// Float64 references for the Gram matrix of features F viewed as [N, M] (N channels, M = H*W positions).
import { t64, type T64 } from './tensor.ts';

function nm(F: T64): [number, number] {
  const N = F.shape[0];
  return [N, F.data.length / N];
}

/** G = scale * F Fᵀ */
export function gram(F: T64, scale = 1): T64 {
  const [N, M] = nm(F);
  const G = t64([N, N]);
  for (let i = 0; i < N; i++) for (let j = i; j < N; j++) {
    let s = 0;
    for (let m = 0; m < M; m++) s += F.data[i * M + m] * F.data[j * M + m];
    G.data[i * N + j] = G.data[j * N + i] = scale * s;
  }
  return G;
}

/** out = alpha * (S + t Sᵀ) F  with S [N,N], F [N,M] (t = 0 or 1). */
export function symMatmul(S: T64, F: T64, alpha: number, transposeAdd: boolean): T64 {
  const [N, M] = nm(F);
  const out = t64(F.shape);
  for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) {
    const s = alpha * (S.data[i * N + j] + (transposeAdd ? S.data[j * N + i] : 0));
    if (s === 0) continue;
    for (let m = 0; m < M; m++) out.data[i * M + m] += s * F.data[j * M + m];
  }
  return out;
}

/** For L(G) with G = F Fᵀ (scale 1) and dG = dL/dG: dF = (dG + dGᵀ) F */
export function gramBackward(F: T64, dG: T64): T64 {
  return symMatmul(dG, F, 1, true);
}
