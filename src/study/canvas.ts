// A tiny RGBA raster for report pictures (contact sheets, PNG loss plots): rectangles, images, anti-aliased
// polylines and 5x7 text. Plain CPU code; encoded to PNG with the project's codec.
import { encodeImage } from '../image/codec.ts';
import { fromRgba, type RgbImage } from '../image/image.ts';
import { resize } from '../image/resize.ts';
import { ADVANCE, GLYPH_H, GLYPH_W, glyphPixel, textWidth } from './font.ts';

export type Rgb = readonly [number, number, number];

export interface Canvas {
  width: number;
  height: number;
  /** Interleaved RGBA bytes, opaque. */
  data: Uint8ClampedArray;
}

export function createCanvas(width: number, height: number, bg: Rgb = [255, 255, 255]): Canvas {
  const c = { width, height, data: new Uint8ClampedArray(4 * width * height) };
  fillRect(c, 0, 0, width, height, bg);
  return c;
}

/** Blends `color` over pixel (x, y) with coverage a in [0, 1]; outside the canvas does nothing. */
export function blend(c: Canvas, x: number, y: number, color: Rgb, a = 1): void {
  if (x < 0 || y < 0 || x >= c.width || y >= c.height || !(a > 0)) return;
  const i = 4 * (y * c.width + x);
  const k = Math.min(1, a);
  for (let j = 0; j < 3; j++) c.data[i + j] = c.data[i + j] * (1 - k) + color[j] * k;
  c.data[i + 3] = 255;
}

export function fillRect(c: Canvas, x: number, y: number, w: number, h: number, color: Rgb): void {
  const x0 = Math.max(0, Math.round(x)), y0 = Math.max(0, Math.round(y));
  const x1 = Math.min(c.width, Math.round(x + w)), y1 = Math.min(c.height, Math.round(y + h));
  for (let yy = y0; yy < y1; yy++) {
    for (let xx = x0; xx < x1; xx++) {
      const i = 4 * (yy * c.width + xx);
      c.data[i] = color[0]; c.data[i + 1] = color[1]; c.data[i + 2] = color[2]; c.data[i + 3] = 255;
    }
  }
}

/** Draws an RgbImage with its top-left corner at (x, y), resized (Lanczos) to w x h when those differ. */
export function drawImage(c: Canvas, img: RgbImage, x: number, y: number, w = img.width, h = img.height): void {
  const src = w === img.width && h === img.height ? img : resize(img, w, h);
  const n = src.width * src.height;
  for (let yy = 0; yy < h; yy++) {
    for (let xx = 0; xx < w; xx++) {
      const s = yy * src.width + xx;
      blend(c, x + xx, y + yy, [src.data[s] * 255, src.data[n + s] * 255, src.data[2 * n + s] * 255]);
    }
  }
}

/**
 * Text in the 5x7 font, each font pixel a scale x scale block; (x, y) is the top-left of the first glyph.
 * Returns the width drawn.
 */
export function drawText(c: Canvas, text: string, x: number, y: number, color: Rgb, scale = 1): number {
  x = Math.round(x); y = Math.round(y);
  for (let k = 0; k < text.length; k++) {
    for (let col = 0; col < GLYPH_W; col++) {
      for (let row = 0; row < GLYPH_H; row++) {
        if (glyphPixel(text[k], col, row)) fillRect(c, x + (k * ADVANCE + col) * scale, y + row * scale, scale, scale, color);
      }
    }
  }
  return textWidth(text, scale);
}

/** Text rotated 90 degrees counter-clockwise (reads bottom to top); (x, y) is the bottom-left of the first glyph. */
export function drawTextUp(c: Canvas, text: string, x: number, y: number, color: Rgb, scale = 1): void {
  x = Math.round(x); y = Math.round(y);
  for (let k = 0; k < text.length; k++) {
    for (let col = 0; col < GLYPH_W; col++) {
      for (let row = 0; row < GLYPH_H; row++) {
        if (glyphPixel(text[k], col, row)) fillRect(c, x + row * scale, y - (k * ADVANCE + col + 1) * scale, scale, scale, color);
      }
    }
  }
}

/**
 * An anti-aliased polyline of the given width: each pixel near the path gets coverage from its distance to the
 * nearest segment (1 inside width/2, fading over one pixel), so joins are round and nothing is drawn twice.
 */
export function drawPolyline(c: Canvas, pts: readonly (readonly [number, number])[], color: Rgb, width = 1.5): void {
  if (pts.length === 0) return;
  const r = width / 2;
  const path = pts.length === 1 ? [pts[0], pts[0]] : pts;
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const [x, y] of path) { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); }
  const pad = r + 1;
  const bx0 = Math.max(0, Math.floor(x0 - pad)), by0 = Math.max(0, Math.floor(y0 - pad));
  const bx1 = Math.min(c.width - 1, Math.ceil(x1 + pad)), by1 = Math.min(c.height - 1, Math.ceil(y1 + pad));
  // Per segment, only the pixels in its own box are visited; coverage is kept per pixel as the max over segments.
  const bw = bx1 - bx0 + 1, bh = by1 - by0 + 1;
  if (bw <= 0 || bh <= 0) return;
  const cover = new Float32Array(bw * bh);
  for (let s = 0; s + 1 < path.length; s++) {
    const [ax, ay] = path[s], [qx, qy] = path[s + 1];
    const dx = qx - ax, dy = qy - ay, len2 = dx * dx + dy * dy;
    const sx0 = Math.max(bx0, Math.floor(Math.min(ax, qx) - pad)), sx1 = Math.min(bx1, Math.ceil(Math.max(ax, qx) + pad));
    const sy0 = Math.max(by0, Math.floor(Math.min(ay, qy) - pad)), sy1 = Math.min(by1, Math.ceil(Math.max(ay, qy) + pad));
    for (let y = sy0; y <= sy1; y++) {
      for (let x = sx0; x <= sx1; x++) {
        const px = x + 0.5, py = y + 0.5;
        const t = len2 > 0 ? Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / len2)) : 0;
        const ex = px - (ax + t * dx), ey = py - (ay + t * dy);
        const a = Math.max(0, Math.min(1, r + 0.5 - Math.sqrt(ex * ex + ey * ey)));
        const i = (y - by0) * bw + (x - bx0);
        if (a > cover[i]) cover[i] = a;
      }
    }
  }
  for (let y = 0; y < bh; y++) for (let x = 0; x < bw; x++) blend(c, bx0 + x, by0 + y, color, cover[y * bw + x]);
}

/** PNG bytes of the canvas. */
export function encodeCanvasPng(c: Canvas): Uint8Array {
  return encodeImage(fromRgba(c.data, c.width, c.height), 'png');
}
