// The image type every Painterly module passes around, and conversions to and from interleaved 8-bit RGBA.
// Environment-neutral (no Node APIs): browsers get RGBA from canvas ImageData.
import { PainterlyError } from '../gpu/device.ts';

/** Largest accepted width or height. */
export const MAX_IMAGE_SIDE = 16384;
/** Largest accepted width x height (64 Mpixel: ~0.8 GB as planar float32 RGB, ~256 MB as RGBA bytes). */
export const MAX_IMAGE_PIXELS = 64 * 1024 * 1024;

/** An RGB image: planar float32 [3, H, W] (all R, then all G, then all B), values in [0, 1]. */
export interface RgbImage {
  width: number;
  height: number;
  data: Float32Array;
}

/** A zero-filled image of the given size. */
export function createImage(width: number, height: number): RgbImage {
  return { width, height, data: new Float32Array(3 * width * height) };
}

/** A copy with every value clamped to [0, 1] (what results are written as). */
export function clampImage(img: RgbImage): RgbImage {
  const out = createImage(img.width, img.height);
  for (let i = 0; i < img.data.length; i++) out.data[i] = Math.min(1, Math.max(0, img.data[i]));
  return out;
}

/**
 * Interleaved 8-bit RGBA (canvas ImageData layout) to planar RGB, compositing over white:
 * c = (c8 / 255) * a + (1 - a), a = a8 / 255. Opaque pixels become exactly c8 / 255.
 */
export function fromRgba(rgba: Uint8Array | Uint8ClampedArray, width: number, height: number): RgbImage {
  const n = width * height;
  if (rgba.length !== 4 * n) {
    throw new TypeError(`fromRgba: expected ${4 * n} bytes for ${width}x${height} RGBA, got ${rgba.length}`);
  }
  const img = createImage(width, height);
  const d = img.data;
  for (let i = 0; i < n; i++) {
    const a = rgba[4 * i + 3];
    if (a === 255) {
      d[i] = rgba[4 * i] / 255; d[n + i] = rgba[4 * i + 1] / 255; d[2 * n + i] = rgba[4 * i + 2] / 255;
    } else {
      const af = a / 255, w = 1 - af;
      d[i] = (rgba[4 * i] / 255) * af + w;
      d[n + i] = (rgba[4 * i + 1] / 255) * af + w;
      d[2 * n + i] = (rgba[4 * i + 2] / 255) * af + w;
    }
  }
  return img;
}

/** Planar RGB to interleaved opaque 8-bit RGBA; values are clamped to [0, 1] and rounded to the nearest level. */
export function toRgba(img: RgbImage): Uint8ClampedArray {
  const n = img.width * img.height;
  const d = img.data;
  const out = new Uint8ClampedArray(4 * n);
  for (let i = 0; i < n; i++) {
    // Uint8ClampedArray clamps and rounds half to even; NaN becomes 0.
    out[4 * i] = d[i] * 255;
    out[4 * i + 1] = d[n + i] * 255;
    out[4 * i + 2] = d[2 * n + i] * 255;
    out[4 * i + 3] = 255;
  }
  return out;
}

/** Throws unless `img` is a well-formed RgbImage (positive integer size, data of length 3*W*H). */
export function checkImage(img: RgbImage, what: string): void {
  const ok = img && Number.isInteger(img.width) && Number.isInteger(img.height) && img.width > 0 && img.height > 0 &&
    img.data instanceof Float32Array && img.data.length === 3 * img.width * img.height;
  if (!ok) {
    throw new PainterlyError(`${what}: expected an RgbImage {width, height, data: Float32Array of 3*width*height}, got ` +
      (img ? `${img.width}x${img.height} with ${img.data?.length} values` : String(img)));
  }
}
