// Semantic masks for the Gatys loss (Luan et al., "Deep Photo Style Transfer", CVPR 2017): colour-coded segmentation
// images of the content and the style, each colour region of the content matched with the same colour of the style.
// CPU-side preparation, plain data (safe in browsers): colour labels, nearest-neighbour resizing, and each label's
// soft mask at a layer's resolution. The GPU side is ops/mask.ts (the masked style loss) and targets.ts.
//
// Labels (the rule, for JPEG noise and anti-aliased edges): pixels are taken as 8-bit RGB; the distinct colours of
// both masks, most frequent first (each mask's counts as a share of its pixels, so the two weigh the same), either
// join the first more frequent colour within MASK_COLOR_TOLERANCE (Euclidean, 0-255 RGB) or start a new label; a
// label that covers less than MASK_MIN_SHARE of both masks is merged into the nearest other label. A label is
// present in a mask when it covers at least MASK_MIN_SHARE of it; labels present in only one mask are unmatched.
//
// Masks at a layer (the paper's code: the masks follow the image through the network): a 3x3 (k x k) convolution
// averages each mask over the same window, clipped to the image (so the labels' masks still sum to 1 everywhere),
// a 2x2 pooling averages the window (clipped in ceil mode), upsampling repeats, other layers leave it. The masks are
// soft at a layer's resolution.
import { PainterlyError } from '../gpu/device.ts';
import type { RgbImage } from '../image/image.ts';
import type { NetDescription } from '../nets/describe.ts';
import { deepest, layerShapes, layersUpTo, pooledSize } from '../nets/executor.ts';

/** Colours closer than this (Euclidean distance in 0-255 RGB) are one label. */
export const MASK_COLOR_TOLERANCE = 48;
/** Smallest share of a mask's pixels for a label of its own, and for a label to count as present in a mask. */
export const MASK_MIN_SHARE = 0.005;
/** Most labels accepted (a photograph given as a mask would make hundreds). */
export const MAX_MASK_LABELS = 32;

/** One label per pixel (row-major), indices into MaskLabels.colors. */
export interface LabelMap {
  width: number;
  height: number;
  labels: Uint8Array;
}

export interface MaskLabels {
  /** Each label's colour (its most frequent member), 0-255 RGB. */
  colors: [number, number, number][];
  content: LabelMap;
  style: LabelMap;
  /** Labels present in both masks (the regions matched), in label order. */
  matched: number[];
  /** Labels present in only the content mask (their content region gets no style loss), or only the style mask. */
  contentOnly: number[];
  styleOnly: number[];
}

function colorKeys(img: RgbImage): Uint32Array {
  const n = img.width * img.height;
  const keys = new Uint32Array(n);
  const q = (v: number) => Math.min(255, Math.max(0, Math.round(v * 255)));
  for (let i = 0; i < n; i++) keys[i] = (q(img.data[i]) << 16) | (q(img.data[n + i]) << 8) | q(img.data[2 * n + i]);
  return keys;
}

const rgb = (k: number): [number, number, number] => [(k >> 16) & 255, (k >> 8) & 255, k & 255];
const dist2 = (a: [number, number, number], b: [number, number, number]) => (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 + (a[2] - b[2]) ** 2;

/** Labels of a content and a style segmentation image (any sizes), by the rule at the top of this file. */
export function labelMasks(content: RgbImage, style: RgbImage): MaskLabels {
  const kc = colorKeys(content), ks = colorKeys(style);
  const counts = new Map<number, [number, number]>();
  for (const k of kc) { const c = counts.get(k); if (c) c[0]++; else counts.set(k, [1, 0]); }
  for (const k of ks) { const c = counts.get(k); if (c) c[1]++; else counts.set(k, [0, 1]); }
  const nc = kc.length, ns = ks.length;
  const colours = [...counts].map(([k, [a, b]]) => ({ k, c: rgb(k), a, b, w: a / nc + b / ns })).sort((x, y) => y.w - x.w || x.k - y.k);
  // Greedy clustering, most frequent first.
  const tol2 = MASK_COLOR_TOLERANCE ** 2;
  const centres: { c: [number, number, number]; a: number; b: number }[] = [];
  const cluster = new Map<number, number>();
  for (const col of colours) {
    let best = -1, bd = Infinity;
    centres.forEach((z, i) => { const d = dist2(z.c, col.c); if (d < bd) { bd = d; best = i; } });
    if (best < 0 || bd > tol2) {
      if (centres.length >= 4096) throw new PainterlyError('content/style masks: too many distinct colours; expected segmentation images of a few flat colours');
      best = centres.push({ c: col.c, a: 0, b: 0 }) - 1;
    }
    centres[best].a += col.a;
    centres[best].b += col.b;
    cluster.set(col.k, best);
  }
  // Small clusters join the nearest kept one (by each colour's own distance).
  const keep = centres.map((z) => Math.max(z.a / nc, z.b / ns) >= MASK_MIN_SHARE);
  if (!keep.some(Boolean)) keep[0] = true;
  const kept = centres.map((_, i) => i).filter((i) => keep[i]);
  if (kept.length > MAX_MASK_LABELS) {
    throw new PainterlyError(`content/style masks: ${kept.length} colour labels, at most ${MAX_MASK_LABELS}; expected segmentation images of a few flat colours`);
  }
  const index = new Map(kept.map((i, j) => [i, j]));
  const labelOf = new Map<number, number>();
  for (const col of colours) {
    const c = cluster.get(col.k)!;
    if (keep[c]) { labelOf.set(col.k, index.get(c)!); continue; }
    let best = 0, bd = Infinity;
    kept.forEach((i, j) => { const d = dist2(centres[i].c, col.c); if (d < bd) { bd = d; best = j; } });
    labelOf.set(col.k, best);
  }
  const map = (img: RgbImage, keys: Uint32Array): LabelMap => ({ width: img.width, height: img.height, labels: Uint8Array.from(keys, (k) => labelOf.get(k)!) });
  const cm = map(content, kc), sm = map(style, ks);
  const shares = (m: LabelMap) => {
    const s = new Float64Array(kept.length);
    for (const l of m.labels) s[l]++;
    return s.map((v) => v / m.labels.length);
  };
  const sc = shares(cm), ss = shares(sm);
  const all = kept.map((_, j) => j);
  return {
    colors: kept.map((i) => centres[i].c),
    content: cm,
    style: sm,
    matched: all.filter((j) => sc[j] >= MASK_MIN_SHARE && ss[j] >= MASK_MIN_SHARE),
    contentOnly: all.filter((j) => sc[j] >= MASK_MIN_SHARE && ss[j] < MASK_MIN_SHARE),
    styleOnly: all.filter((j) => sc[j] < MASK_MIN_SHARE && ss[j] >= MASK_MIN_SHARE),
  };
}

const hex = (c: [number, number, number]) => `#${c.map((v) => v.toString(16).padStart(2, '0')).join('')}`;

/** The one message about unmatched labels, or undefined when every label is in both masks. */
export function unmatchedMessage(l: MaskLabels): string | undefined {
  const parts: string[] = [];
  if (l.contentOnly.length) parts.push(`content-mask colours ${l.contentOnly.map((j) => hex(l.colors[j])).join(', ')} are not in the style mask: those regions get no style loss`);
  if (l.styleOnly.length) parts.push(`style-mask colours ${l.styleOnly.map((j) => hex(l.colors[j])).join(', ')} are not in the content mask and are ignored`);
  return parts.length ? `masks: ${parts.join('; ')}` : undefined;
}

/** Nearest-neighbour resize of a label map (pixel centres: source index floor((i + ½) · old / new)). */
export function resizeLabels(m: LabelMap, width: number, height: number): LabelMap {
  if (m.width === width && m.height === height) return m;
  const labels = new Uint8Array(width * height);
  const xs = Array.from({ length: width }, (_, x) => Math.min(m.width - 1, Math.floor(((x + 0.5) * m.width) / width)));
  for (let y = 0; y < height; y++) {
    const sy = Math.min(m.height - 1, Math.floor(((y + 0.5) * m.height) / height));
    for (let x = 0; x < width; x++) labels[y * width + x] = m.labels[sy * m.width + xs[x]];
  }
  return { width, height, labels };
}

/** Mean over a k-wide window centred on each element, clipped to [0, n): along rows (stride 1) or columns (stride W). */
function box1d(src: Float64Array, H: number, W: number, k: number, alongRows: boolean): Float64Array {
  const out = new Float64Array(H * W);
  const r = (k - 1) / 2;
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    const [pos, n] = alongRows ? [x, W] : [y, H];
    let s = 0, c = 0;
    for (let d = -r; d <= r; d++) {
      const q = pos + d;
      if (q < 0 || q >= n) continue;
      s += alongRows ? src[y * W + q] : src[q * W + x];
      c++;
    }
    out[y * W + x] = s / c;
  }
  return out;
}

/**
 * Each label's soft mask at each of `layers` for an image labelled by `map` (at the image's size), following the
 * network as described at the top of this file: Map layer → one Float64Array [H_l W_l] per entry of `labels`.
 */
export function maskPyramid(desc: NetDescription, map: LabelMap, labels: number[], layers: string[]): Map<string, Float64Array[]> {
  const out = new Map<string, Float64Array[]>();
  if (layers.length === 0) return out;
  let H = map.height, W = map.width;
  let planes: Float64Array[] = labels.map((l) => Float64Array.from(map.labels, (v) => (v === l ? 1 : 0)));
  const want = new Set(layers);
  const shapes = layerShapes(desc, map.height, map.width, deepest(desc, layers));
  for (const l of layersUpTo(desc, deepest(desc, layers))) {
    if (l.op === 'conv' && l.k > 1) {
      planes = planes.map((p) => box1d(box1d(p, H, W, l.k, true), H, W, l.k, false));
    } else if (l.op === 'pool') {
      const [h, w] = pooledSize(H, W, l.ceil);
      planes = planes.map((p) => {
        const q = new Float64Array(h * w);
        for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) {
          let s = 0, c = 0;
          for (let di = 0; di < 2; di++) for (let dj = 0; dj < 2; dj++) {
            const y = 2 * i + di, x = 2 * j + dj;
            if (y < H && x < W) { s += p[y * W + x]; c++; }
          }
          q[i * w + j] = s / c;
        }
        return q;
      });
      [H, W] = [h, w];
    } else if (l.op === 'upsample') {
      planes = planes.map((p) => {
        const q = new Float64Array(4 * H * W);
        for (let y = 0; y < 2 * H; y++) for (let x = 0; x < 2 * W; x++) q[y * 2 * W + x] = p[(y >> 1) * W + (x >> 1)];
        return q;
      });
      [H, W] = [2 * H, 2 * W];
    }
    const s = shapes.get(l.name)!;
    if (s[1] !== H || s[2] !== W) throw new PainterlyError(`maskPyramid: ${l.name} is ${s[2]}x${s[1]}, the masks ${W}x${H}`);
    if (want.has(l.name)) out.set(l.name, planes);
  }
  return out;
}

/** Σ of a mask's values (its area in positions). */
export function maskArea(m: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < m.length; i++) s += m[i];
  return s;
}
