// Colour controls of Gatys et al. 2017, "Controlling Perceptual Factors in Neural Style Transfer", section 5:
// luminance-only transfer (work in YIQ, keep the content's chrominance) and colour histogram matching (recolour the
// style image with a linear map so its pixel mean and covariance equal the content's). Plain CPU float64 math.
import { PainterlyError } from '../gpu/device.ts';
import { checkImage, type RgbImage } from './image.ts';

type Mat3 = number[]; // row-major 3x3

/** NTSC (FCC 1953) RGB -> YIQ; Y is luma in [0, 1], I and Q are signed chrominance. */
export const RGB_TO_YIQ: readonly number[] = [
  0.299, 0.587, 0.114,
  0.595716, -0.274453, -0.321263,
  0.211456, -0.522591, 0.311135,
];

function inverse3(m: readonly number[]): Mat3 {
  const [a, b, c, d, e, f, g, h, i] = m;
  const A = e * i - f * h, B = -(d * i - f * g), C = d * h - e * g;
  const det = a * A + b * B + c * C;
  return [
    A / det, -(b * i - c * h) / det, (b * f - c * e) / det,
    B / det, (a * i - c * g) / det, -(a * f - c * d) / det,
    C / det, -(a * h - b * g) / det, (a * e - b * d) / det,
  ];
}

/** The exact (float64) inverse of RGB_TO_YIQ, so the two conversions round-trip to float32 precision. */
export const YIQ_TO_RGB: readonly number[] = inverse3(RGB_TO_YIQ);

const mul3 = (a: readonly number[], b: readonly number[]): Mat3 =>
  [0, 1, 2].flatMap((r) => [0, 1, 2].map((c) => a[3 * r] * b[c] + a[3 * r + 1] * b[3 + c] + a[3 * r + 2] * b[6 + c]));
const transpose3 = (m: readonly number[]): Mat3 => [m[0], m[3], m[6], m[1], m[4], m[7], m[2], m[5], m[8]];

/** out[:, p] = m (in[:, p] - sub) + add for every pixel p (planar channels). */
function affine(img: RgbImage, m: readonly number[], sub = [0, 0, 0], add = [0, 0, 0]): RgbImage {
  const n = img.width * img.height, s = img.data;
  const out = new Float32Array(3 * n);
  for (let p = 0; p < n; p++) {
    const x = s[p] - sub[0], y = s[n + p] - sub[1], z = s[2 * n + p] - sub[2];
    out[p] = m[0] * x + m[1] * y + m[2] * z + add[0];
    out[n + p] = m[3] * x + m[4] * y + m[5] * z + add[1];
    out[2 * n + p] = m[6] * x + m[7] * y + m[8] * z + add[2];
  }
  return { width: img.width, height: img.height, data: out };
}

/** Planar RGB -> planar YIQ (channel 0 = Y). Not clamped: I and Q are signed. */
export function rgbToYiq(img: RgbImage): RgbImage {
  checkImage(img, 'rgbToYiq');
  return affine(img, RGB_TO_YIQ);
}

/** Planar YIQ -> planar RGB. Not clamped (an edited Y may leave the RGB cube; clamp when writing). */
export function yiqToRgb(img: RgbImage): RgbImage {
  checkImage(img, 'yiqToRgb');
  return affine(img, YIQ_TO_RGB);
}

/**
 * Luminance-only transfer, last step: the luma Y of `styled` with the chrominance I, Q of `content` (same size),
 * back in RGB, clamped to [0, 1].
 */
export function transferLuminance(styled: RgbImage, content: RgbImage): RgbImage {
  checkImage(styled, 'transferLuminance'); checkImage(content, 'transferLuminance');
  if (styled.width !== content.width || styled.height !== content.height) {
    throw new PainterlyError(`transferLuminance: sizes differ (${styled.width}x${styled.height} vs ` +
      `${content.width}x${content.height})`);
  }
  const n = styled.width * styled.height;
  const y = rgbToYiq(styled), iq = rgbToYiq(content);
  iq.data.set(y.data.subarray(0, n), 0);
  const out = yiqToRgb(iq);
  for (let i = 0; i < out.data.length; i++) out.data[i] = Math.min(1, Math.max(0, out.data[i]));
  return out;
}

/** Pixel mean (3) and covariance (3x3, divided by N) of an image, in float64. */
export function colorMoments(img: RgbImage): { mean: number[]; cov: Mat3 } {
  const n = img.width * img.height, d = img.data;
  const mean = [0, 0, 0];
  for (let c = 0; c < 3; c++) { let s = 0; for (let p = 0; p < n; p++) s += d[c * n + p]; mean[c] = s / n; }
  const cov = new Array<number>(9).fill(0);
  for (let a = 0; a < 3; a++) {
    for (let b = a; b < 3; b++) {
      let s = 0;
      for (let p = 0; p < n; p++) s += (d[a * n + p] - mean[a]) * (d[b * n + p] - mean[b]);
      cov[3 * a + b] = cov[3 * b + a] = s / n;
    }
  }
  return { mean, cov };
}

/** Lower-triangular L with L L^T = m (m symmetric positive definite). */
function cholesky3(m: readonly number[]): Mat3 {
  const L = new Array<number>(9).fill(0);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j <= i; j++) {
      let s = m[3 * i + j];
      for (let k = 0; k < j; k++) s -= L[3 * i + k] * L[3 * j + k];
      L[3 * i + j] = i === j ? Math.sqrt(Math.max(s, 0)) : s / L[3 * j + j];
    }
  }
  return L;
}

/** Eigen-decomposition of a symmetric 3x3 by cyclic Jacobi rotations: m = V diag(w) V^T (columns of V). */
function eigSym3(m: readonly number[]): { w: number[]; V: Mat3 } {
  const a = [...m];
  const V = [1, 0, 0, 0, 1, 0, 0, 0, 1];
  for (let sweep = 0; sweep < 50; sweep++) {
    const off = a[1] * a[1] + a[2] * a[2] + a[5] * a[5];
    if (off <= 1e-30 * (a[0] * a[0] + a[4] * a[4] + a[8] * a[8]) || off === 0) break;
    for (const [p, q] of [[0, 1], [0, 2], [1, 2]]) {
      const apq = a[3 * p + q];
      if (apq === 0) continue;
      const theta = (a[3 * q + q] - a[3 * p + p]) / (2 * apq);
      const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
      const c = 1 / Math.sqrt(t * t + 1), s = t * c;
      // a <- J^T a J, V <- V J, with J the rotation in the (p, q) plane.
      for (let k = 0; k < 3; k++) {
        const akp = a[3 * k + p], akq = a[3 * k + q];
        a[3 * k + p] = c * akp - s * akq; a[3 * k + q] = s * akp + c * akq;
      }
      for (let k = 0; k < 3; k++) {
        const apk = a[3 * p + k], aqk = a[3 * q + k];
        a[3 * p + k] = c * apk - s * aqk; a[3 * q + k] = s * apk + c * aqk;
      }
      for (let k = 0; k < 3; k++) {
        const vkp = V[3 * k + p], vkq = V[3 * k + q];
        V[3 * k + p] = c * vkp - s * vkq; V[3 * k + q] = s * vkp + c * vkq;
      }
    }
  }
  return { w: [a[0], a[4], a[8]], V };
}

/** m^power for symmetric positive (semi)definite m, via its eigen-decomposition. */
function symPow(m: readonly number[], power: number): Mat3 {
  const { w, V } = eigSym3(m);
  const D = [0, 1, 2].map((i) => Math.max(w[i], 0) ** power);
  const VD = V.map((v, idx) => v * D[idx % 3]);
  return mul3(VD, transpose3(V));
}

export type ColorMatchMethod = 'image-analogies' | 'cholesky';

/**
 * Recolours `source` with x' = A (x - mu_s) + mu_t so that its pixel mean and covariance equal `target`'s
 * (A Sigma_s A^T = Sigma_t). Gatys et al. give two choices of A: 'cholesky' A = L_t L_s^-1 (Sigma = L L^T), and
 * 'image-analogies' (default, the one they prefer) A = Sigma_t^1/2 Sigma_s^-1/2 with symmetric square roots, which
 * rotates colours least. A tiny ridge (1e-8 x mean variance) keeps flat or grey sources invertible. The result is
 * not clamped, so its moments match exactly; clamp when writing.
 */
export function matchColorHistogram(source: RgbImage, target: RgbImage, method: ColorMatchMethod = 'image-analogies'): RgbImage {
  checkImage(source, 'matchColorHistogram'); checkImage(target, 'matchColorHistogram');
  const s = colorMoments(source), t = colorMoments(target);
  const ridge = (m: Mat3) => {
    const eps = 1e-8 * ((m[0] + m[4] + m[8]) / 3) + 1e-12;
    return m.map((v, i) => (i % 4 === 0 ? v + eps : v));
  };
  const cs = ridge(s.cov);
  let A: Mat3;
  if (method === 'cholesky') A = mul3(cholesky3(t.cov), inverse3(cholesky3(cs)));
  else if (method === 'image-analogies') A = mul3(symPow(t.cov, 0.5), symPow(cs, -0.5));
  else throw new PainterlyError(`matchColorHistogram: expected method image-analogies or cholesky, got "${String(method)}"`);
  return affine(source, A, s.mean, t.mean);
}
