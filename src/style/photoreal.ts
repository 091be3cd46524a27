// Photorealistic transfer, the glue: options and defaults of the two routes (plain data, safe in browsers) and the
// smoothing post-process run on an image.
//  - Smoothing (Li et al., ECCV 2018, the fast variant): the stylised image through the colour guided filter
//    (He et al.) guided by the content photograph; any method. ops/guided.ts.
//  - Matting-Laplacian regularisation (Luan et al., CVPR 2017): λ_m Σ_c V_cᵀ M V_c added to the Gatys loss;
//    gatys only. ops/matting.ts, style/objective.ts.
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { readTensor, uploadTensor, destroyTensors, createTensor } from '../gpu/tensor.ts';
import { run } from '../gpu/kernel.ts';
import { guidedFilter } from '../ops/guided.ts';
import type { RgbImage } from '../image/image.ts';
import { resize } from '../image/resize.ts';

/**
 * Guided-filter radius at a 512 px longest side, scaled with the image, and ε: chosen by looking at wct-16x output
 * (Tübingen in rocket.jpg's light, r 4-32, ε 1e-4..1e-1): small windows or a large ε hold too little of the guide's
 * variance, so a → 0 and the result is a blur of the stylised image; r 32 is close to one global colour map.
 */
export const DEFAULT_SMOOTH_RADIUS = 16;
/** Guided-filter ε on the colour covariance (images in [0, 1]). */
export const DEFAULT_SMOOTH_EPS = 1e-3;
/**
 * --photorealistic's λ_m as a multiple of the backbone's default TV weight γ. Luan et al. use λ_m = 1e4 (images in
 * [0, 1]) beside neural-style's TV weight 1e-3 on the gradient of ½ Σ Δ² over 0-255 values, i.e. γ' = 1e-3 · ½ · 255²
 * = 32.5 in our units: λ_m / γ' ≈ 300. Both terms are pixel-space regularisers, so the ratio carries over to any
 * backbone and either loss normalisation (both are divided by the pixel count under 'scale-free').
 */
export const PHOTOREAL_MATTING_PER_TV = 300;

export interface PhotorealOptions {
  /** Guided-filter smoothing of the result by the content photograph (any method). */
  smooth: boolean;
  /** Window radius at a 512 px longest side; scaled with the output size (at least 1). */
  smoothRadius: number;
  smoothEps: number;
  /** λ_m of the matting regulariser (gatys; 0 = off). */
  mattingWeight: number;
  /** Gatys: content initialisation and the matting regulariser at PHOTOREAL_MATTING_PER_TV × the TV default. */
  photorealistic: boolean;
}

export const PHOTOREAL_KEYS = ['smooth', 'smoothRadius', 'smoothEps', 'mattingWeight', 'photorealistic'] as const;

/**
 * Resolves the photorealism options (called by resolveStylizeOptions with its accessors): `get` reads the raw
 * input, `bad` throws the one-line error naming the option, `defaultTv` is the backbone's default TV weight.
 */
export function resolvePhotoreal(
  get: (k: (typeof PHOTOREAL_KEYS)[number]) => unknown, bad: (k: (typeof PHOTOREAL_KEYS)[number], what: string) => never, defaultTv: number,
): PhotorealOptions {
  const flag = (k: 'smooth' | 'photorealistic'): boolean => {
    const v = get(k) ?? false;
    if (typeof v !== 'boolean') bad(k, `expected true or false, got ${String(v)}`);
    return v as boolean;
  };
  const num = (k: 'smoothRadius' | 'smoothEps' | 'mattingWeight', def: number, ok: (v: number) => boolean, expect: string): number => {
    const v = get(k) ?? def;
    if (typeof v !== 'number' || !ok(v)) bad(k, `expected ${expect}, got ${typeof v === 'string' ? JSON.stringify(v) : String(v)}`);
    return v as number;
  };
  const smooth = flag('smooth');
  for (const k of ['smoothRadius', 'smoothEps'] as const) if (get(k) !== undefined && !smooth) bad(k, 'only applies with smoothing on (--smooth)');
  const photorealistic = flag('photorealistic');
  return {
    smooth,
    smoothRadius: num('smoothRadius', DEFAULT_SMOOTH_RADIUS, (v) => Number.isInteger(v) && v >= 1 && v <= 1024, 'an integer from 1 to 1024'),
    smoothEps: num('smoothEps', DEFAULT_SMOOTH_EPS, (v) => Number.isFinite(v) && v >= 1e-6 && v <= 100, 'a number from 1e-6 to 100'),
    mattingWeight: num('mattingWeight', photorealistic ? PHOTOREAL_MATTING_PER_TV * defaultTv : 0, (v) => Number.isFinite(v) && v >= 0, 'a non-negative number'),
    photorealistic,
  };
}

/** The guided filter's radius for an image: `radius512` at a 512 px longest side, proportional, at least 1. */
export function smoothRadiusFor(radius512: number, width: number, height: number): number {
  return Math.max(1, Math.round((radius512 * Math.max(width, height)) / 512));
}

/**
 * Li et al.'s fast photorealistic smoothing: `stylised` through the colour guided filter guided by `content` (resized
 * to the stylised image's size), radius scaled from `radius512`; the result clamped to [0, 1].
 */
export async function smoothImage(gpu: Gpu, content: RgbImage, stylised: RgbImage, radius512 = DEFAULT_SMOOTH_RADIUS, eps = DEFAULT_SMOOTH_EPS): Promise<RgbImage> {
  const { width: w, height: h } = stylised;
  if (!(w > 0 && h > 0)) throw new PainterlyError(`smoothing: empty image ${w}x${h}`);
  const guide = content.width === w && content.height === h ? content : resize(content, w, h);
  const I = uploadTensor(gpu, guide.data, [3, h, w], 'smooth.guide');
  const p = uploadTensor(gpu, stylised.data, [3, h, w], 'smooth.input');
  const q = createTensor(gpu, [3, h, w], 'smooth.output');
  const f = guidedFilter(gpu, { I, p, q, radius: smoothRadiusFor(radius512, w, h), eps });
  try {
    run(gpu, f.steps, 'smooth');
    const data = await readTensor(gpu, q);
    for (let i = 0; i < data.length; i++) data[i] = Math.min(1, Math.max(0, data[i]));
    return { width: w, height: h, data: new Float32Array(data) };
  } finally {
    f.destroy();
    destroyTensors(I, p, q);
  }
}
