// The feature transforms of the feed-forward methods, in float64 on the CPU (C <= 512 channels: the GPU computes the
// statistics and applies the result). Both are affine maps of content features F (C x M):
//   y = T F + b     (per position; T is C x C for WCT, diagonal for AdaIN)
// so the α blend and several styles' interpolation fold into T and b.
//
// WCT (Li et al., NeurIPS 2017), as the reference PyTorch code computes it:
//   Σc = F̄c F̄cᵀ/(M−1) + I,  Σs = F̄s F̄sᵀ/(M−1)      (F̄: centred)
//   Σc = Ec Dc Ecᵀ,  Σs = Es Ds Esᵀ (eigen-decompositions; eigenvalues below 1e-5 dropped)
//   W = Ec Dc^-1/2 Ecᵀ (whitening),  K = Es Ds^1/2 Esᵀ (colouring)
//   wct(F) = K W (F − μc) + μs;   y = α wct(F) + (1 − α) F  =>  T = α K W + (1 − α) I,  b = α (μs − K W μc)
// AdaIN (Huang & Belongie, ICCV 2017): per channel, σ = sqrt(unbiased variance + 1e-5),
//   adain(F) = σs/σc (F − μc) + μs;  y = α adain(F) + (1 − α) F  =>  a = α σs/σc + 1 − α,  b = α (μs − σs/σc μc)
import { EigenvalueDecomposition, Matrix } from 'ml-matrix';
import { PainterlyError } from '../gpu/device.ts';

/** Per-channel mean and the centred covariance F̄F̄ᵀ/(M−1) (C x C, row-major) of features. */
export interface FeatureStats {
  channels: number;
  mean: Float64Array;
  cov: Float64Array;
}

/** The colouring half of WCT for a style: K = Es Ds^1/2 Esᵀ and μs (what is kept to reuse a style). */
export interface StyleColoring {
  channels: number;
  mean: Float64Array;
  color: Float64Array;
}

/** An affine map of features: y = T x + b (T row-major C x C). */
export interface FeatureMap {
  channels: number;
  T: Float64Array;
  b: Float64Array;
}

const EIG_FLOOR = 1e-5;

/** E f(D) Eᵀ over the eigenpairs with eigenvalue >= 1e-5 (the reference code's threshold). */
function spectralFunction(cov: Float64Array, c: number, f: (lambda: number) => number): Float64Array {
  const m = new Matrix(c, c);
  for (let i = 0; i < c; i++) for (let j = 0; j < c; j++) m.set(i, j, 0.5 * (cov[i * c + j] + cov[j * c + i]));
  const e = new EigenvalueDecomposition(m, { assumeSymmetric: true });
  const vals = e.realEigenvalues;
  const vecs = e.eigenvectorMatrix;
  const out = new Float64Array(c * c);
  for (let k = 0; k < c; k++) {
    const l = vals[k];
    if (!(l >= EIG_FLOOR)) continue;
    const s = f(l);
    for (let i = 0; i < c; i++) {
      const vi = vecs.get(i, k) * s;
      if (vi === 0) continue;
      for (let j = 0; j < c; j++) out[i * c + j] += vi * vecs.get(j, k);
    }
  }
  return out;
}

function checkStats(s: FeatureStats, what: string): void {
  const c = s.channels;
  if (s.mean.length !== c || s.cov.length !== c * c) throw new PainterlyError(`${what}: expected ${c} means and a ${c}x${c} covariance`);
  for (const v of s.cov) if (!Number.isFinite(v)) throw new PainterlyError(`${what}: the feature covariance is not finite`);
}

export function styleColoring(style: FeatureStats): StyleColoring {
  checkStats(style, 'style features');
  return { channels: style.channels, mean: style.mean.slice(), color: spectralFunction(style.cov, style.channels, Math.sqrt) };
}

/**
 * WCT of content statistics towards one or more styles' colourings with interpolation weights (summing to 1),
 * blended with the content by α.
 */
export function wctMap(content: FeatureStats, styles: StyleColoring[], weights: number[], alpha: number): FeatureMap {
  checkStats(content, 'content features');
  const c = content.channels;
  if (styles.some((s) => s.channels !== c)) throw new PainterlyError(`WCT: style features have ${styles.map((s) => s.channels)} channels, content ${c}`);
  const withEye = content.cov.slice();
  for (let i = 0; i < c; i++) withEye[i * c + i] += 1;
  const W = spectralFunction(withEye, c, (l) => 1 / Math.sqrt(l));
  const T = new Float64Array(c * c);
  const b = new Float64Array(c);
  styles.forEach((s, k) => {
    const wk = weights[k] * alpha;
    // KW = K · W; b += wk (μs − KW μc)
    for (let i = 0; i < c; i++) {
      let kwMu = 0;
      for (let j = 0; j < c; j++) {
        let acc = 0;
        for (let t = 0; t < c; t++) acc += s.color[i * c + t] * W[t * c + j];
        T[i * c + j] += wk * acc;
        kwMu += acc * content.mean[j];
      }
      b[i] += wk * (s.mean[i] - kwMu);
    }
  });
  for (let i = 0; i < c; i++) T[i * c + i] += 1 - alpha;
  return { channels: c, T, b };
}

/** Per-channel mean and σ = sqrt(unbiased variance + 1e-5), as AdaIN's calc_mean_std. */
export interface ChannelMoments {
  channels: number;
  mean: Float64Array;
  std: Float64Array;
}

export const ADAIN_EPS = 1e-5;

export function momentsFromVariance(mean: ArrayLike<number>, variance: ArrayLike<number>): ChannelMoments {
  const c = mean.length;
  return {
    channels: c,
    mean: Float64Array.from(mean),
    std: Float64Array.from(variance, (v) => Math.sqrt(Math.max(0, v) + ADAIN_EPS)),
  };
}

/** AdaIN towards one or more styles (interpolated), blended by α: a diagonal map, returned as (a, b) per channel. */
export function adainMap(content: ChannelMoments, styles: ChannelMoments[], weights: number[], alpha: number): { a: Float64Array; b: Float64Array } {
  const c = content.channels;
  if (styles.some((s) => s.channels !== c)) throw new PainterlyError(`AdaIN: style features have ${styles.map((s) => s.channels)} channels, content ${c}`);
  const a = new Float64Array(c).fill(1 - alpha);
  const b = new Float64Array(c);
  styles.forEach((s, k) => {
    const wk = weights[k] * alpha;
    for (let i = 0; i < c; i++) {
      const r = s.std[i] / content.std[i];
      a[i] += wk * r;
      b[i] += wk * (s.mean[i] - r * content.mean[i]);
    }
  });
  return { a, b };
}

/** Float64 statistics of features F (C x M, row-major): means and F̄F̄ᵀ/(M−1). The reference the GPU is tested against. */
export function featureStats(F: ArrayLike<number>, c: number): FeatureStats {
  const m = F.length / c;
  const mean = new Float64Array(c);
  for (let i = 0; i < c; i++) { let s = 0; for (let p = 0; p < m; p++) s += F[i * m + p]; mean[i] = s / m; }
  const cov = new Float64Array(c * c);
  for (let i = 0; i < c; i++) {
    for (let j = i; j < c; j++) {
      let s = 0;
      for (let p = 0; p < m; p++) s += (F[i * m + p] - mean[i]) * (F[j * m + p] - mean[j]);
      cov[i * c + j] = cov[j * c + i] = s / Math.max(1, m - 1);
    }
  }
  return { channels: c, mean, cov };
}

/** y = T F + b in float64 (the reference of the GPU's application). */
export function applyMap(map: FeatureMap, F: ArrayLike<number>): Float64Array {
  const c = map.channels;
  const m = F.length / c;
  const y = new Float64Array(F.length);
  for (let i = 0; i < c; i++) {
    for (let p = 0; p < m; p++) {
      let s = map.b[i];
      for (let j = 0; j < c; j++) s += map.T[i * c + j] * F[j * m + p];
      y[i * m + p] = s;
    }
  }
  return y;
}
