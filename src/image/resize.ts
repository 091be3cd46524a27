// Antialiased resampling of planar RGB images (CPU, float64 accumulation).
import { PainterlyError } from '../gpu/device.ts';
import { MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE, checkImage, type RgbImage } from './image.ts';

const LANCZOS_A = 3;

/** Lanczos-3 kernel: sinc(x) sinc(x/3) for |x| < 3. */
function lanczos(x: number): number {
  x = Math.abs(x);
  if (x < 1e-9) return 1;
  if (x >= LANCZOS_A) return 0;
  const px = Math.PI * x;
  return (LANCZOS_A * Math.sin(px) * Math.sin(px / LANCZOS_A)) / (px * px);
}

interface Taps { start: Int32Array; count: Int32Array; weights: Float64Array; stride: number }

/**
 * Filter taps mapping `inN` samples to `outN`. Pixel i covers [i, i+1) in both grids, so output o is centred at
 * (o + 0.5) * inN / outN in input coordinates. When downscaling, the kernel is stretched by the scale factor
 * (support 3 * scale), which low-passes below the new Nyquist rate: that is the antialiasing. Taps falling outside
 * the image are dropped and the rest renormalised to sum 1, so a constant image stays exactly constant.
 */
function makeTaps(inN: number, outN: number): Taps {
  const scale = inN / outN;
  const fscale = Math.max(scale, 1);
  const support = LANCZOS_A * fscale;
  const stride = Math.ceil(support) * 2 + 2;
  const start = new Int32Array(outN), count = new Int32Array(outN);
  const weights = new Float64Array(outN * stride);
  for (let o = 0; o < outN; o++) {
    const center = (o + 0.5) * scale;
    const lo = Math.max(0, Math.floor(center - support));
    const hi = Math.min(inN, Math.ceil(center + support));
    let sum = 0, k = 0;
    for (let i = lo; i < hi; i++, k++) {
      const w = lanczos((i + 0.5 - center) / fscale);
      weights[o * stride + k] = w;
      sum += w;
    }
    for (let j = 0; j < k; j++) weights[o * stride + j] /= sum;
    start[o] = lo; count[o] = k;
  }
  return { start, count, weights, stride };
}

function checkSize(width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 ||
    width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE || width * height > MAX_IMAGE_PIXELS) {
    throw new PainterlyError(`resize: expected a size of 1 to ${MAX_IMAGE_SIDE} pixels per side and at most ` +
      `${MAX_IMAGE_PIXELS} pixels, got ${width}x${height}`);
  }
}

/**
 * Resamples to width x height with a separable Lanczos-3 filter, antialiased when downscaling. Each channel of the
 * result is clamped to that channel's input range, which removes Lanczos ringing (overshoot) but keeps any value
 * range (e.g. YIQ). The same size returns `img` itself, not resampled.
 */
export function resize(img: RgbImage, width: number, height: number): RgbImage {
  checkImage(img, 'resize');
  checkSize(width, height);
  if (width === img.width && height === img.height) return img;
  const { width: w0, height: h0, data: src } = img;
  const hx = makeTaps(w0, width), hy = makeTaps(h0, height);
  const out = new Float32Array(3 * width * height);
  const mid = new Float64Array(width * h0); // one channel after the horizontal pass
  const acc = new Float64Array(width);
  for (let c = 0; c < 3; c++) {
    const base = c * w0 * h0;
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < w0 * h0; i++) {
      const v = src[base + i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    // Horizontal: mid[y, x] = sum_k wx[x, k] src[y, sx(x) + k]
    for (let y = 0; y < h0; y++) {
      const row = base + y * w0;
      for (let x = 0; x < width; x++) {
        const s = row + hx.start[x], wo = x * hx.stride, n = hx.count[x];
        let sum = 0;
        for (let k = 0; k < n; k++) sum += hx.weights[wo + k] * src[s + k];
        mid[y * width + x] = sum;
      }
    }
    // Vertical, a whole row at a time (contiguous): out[y, :] = sum_k wy[y, k] mid[sy(y) + k, :]
    for (let y = 0; y < height; y++) {
      acc.fill(0);
      const wo = y * hy.stride, n = hy.count[y];
      for (let k = 0; k < n; k++) {
        const w = hy.weights[wo + k], r = (hy.start[y] + k) * width;
        for (let x = 0; x < width; x++) acc[x] += w * mid[r + x];
      }
      const o = (c * height + y) * width;
      for (let x = 0; x < width; x++) out[o + x] = Math.min(hi, Math.max(lo, acc[x]));
    }
  }
  return { width, height, data: out };
}

/**
 * Scales so the longer side becomes `size` (up or down), keeping the aspect ratio; the shorter side is rounded
 * and at least 1. Returns `img` itself when the longer side already is `size`.
 */
export function fitLongestSide(img: RgbImage, size: number): RgbImage {
  checkImage(img, 'fitLongestSide');
  if (!Number.isInteger(size) || size < 1 || size > MAX_IMAGE_SIDE) {
    throw new PainterlyError(`fitLongestSide: expected a size of 1 to ${MAX_IMAGE_SIDE}, got ${size}`);
  }
  const [w, h] = fittedSize(img.width, img.height, size);
  return resize(img, w, h);
}

/** The [width, height] fitLongestSide gives a width x height image (to check sizes without resizing). */
export function fittedSize(width: number, height: number, size: number): [number, number] {
  if (width >= height) return [size, Math.max(1, Math.round((height * size) / width))];
  return [Math.max(1, Math.round((width * size) / height)), size];
}
