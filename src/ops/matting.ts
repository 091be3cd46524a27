// Matting-Laplacian regulariser (Levin et al. 2008; Luan et al., "Deep Photo Style Transfer", CVPR 2017) as a
// matrix-free GPU product (shaders/matting.wgsl): M is never built. Per-window statistics of the guide (means and
// the inverse Cholesky factor of Σ_k + ε/9 I₃) are computed once per guide image in float64 on the CPU, since the
// paper's ε = 1e-7 is below float32's resolution of a covariance; each product then costs two passes over the image.
import source from '../../shaders/matting.wgsl';
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { bind, setUniforms, type KernelSpec, type Step } from '../gpu/kernel.ts';
import { createTensor, destroyTensors, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { reduceFinalSpec } from './loss.ts';

/** Levin's and Luan et al.'s ε (their code's value). */
export const MATTING_EPS = 1e-7;

const file = 'shaders/matting.wgsl';
const uniforms = { n: 'u32', H: 'u32', W: 'u32', T: 'u32', scale: 'f32', accumulate: 'u32' } as const;
export const mattingWindowSpec: KernelSpec = {
  file, source, entry: 'matting_window', uniforms,
  bindings: { wp: 'uniform', wI: 'read', wstats: 'read', wv: 'read', wwin: 'read_write' },
};
export const mattingApplySpec: KernelSpec = {
  file, source, entry: 'matting_apply', uniforms,
  bindings: { ap: 'uniform', aI: 'read', astats: 'read', av: 'read', awin: 'read', aout: 'read_write', apartial: 'read_write' },
};

/**
 * Per 3x3 window centre (row-major over H x W; zeros at border centres, which hold no window): μ (3) and the
 * lower-triangular L⁻¹ (00, 10, 11, 20, 21, 22) where L Lᵀ = Σ + ε/9 I₃, Σ the window's colour covariance (÷ 9).
 * `data` is a planar [3,H,W] image. Float64 throughout, rounded to float32 at the end.
 */
export function mattingWindowStats(data: ArrayLike<number>, H: number, W: number, eps = MATTING_EPS): Float32Array {
  const n = H * W;
  const out = new Float32Array(9 * n);
  const d = new Float64Array(27);
  for (let y = 1; y + 1 < H; y++) for (let x = 1; x + 1 < W; x++) {
    const k = y * W + x;
    let m0 = 0, m1 = 0, m2 = 0;
    for (let t = 0, dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++, t++) {
      const j = k + dy * W + dx;
      d[3 * t] = data[j]; d[3 * t + 1] = data[n + j]; d[3 * t + 2] = data[2 * n + j];
      m0 += d[3 * t]; m1 += d[3 * t + 1]; m2 += d[3 * t + 2];
    }
    m0 /= 9; m1 /= 9; m2 /= 9;
    // Centred covariance (no E[II] − μμᵀ cancellation).
    let s00 = 0, s10 = 0, s11 = 0, s20 = 0, s21 = 0, s22 = 0;
    for (let t = 0; t < 9; t++) {
      const a = d[3 * t] - m0, b = d[3 * t + 1] - m1, c = d[3 * t + 2] - m2;
      s00 += a * a; s10 += b * a; s11 += b * b; s20 += c * a; s21 += c * b; s22 += c * c;
    }
    const e = eps / 9;
    s00 = s00 / 9 + e; s10 /= 9; s11 = s11 / 9 + e; s20 /= 9; s21 /= 9; s22 = s22 / 9 + e;
    const l00 = Math.sqrt(s00);
    const l10 = s10 / l00, l20 = s20 / l00;
    const l11 = Math.sqrt(Math.max(s11 - l10 * l10, e * 1e-6));
    const l21 = (s21 - l20 * l10) / l11;
    const l22 = Math.sqrt(Math.max(s22 - l20 * l20 - l21 * l21, e * 1e-6));
    const i00 = 1 / l00, i11 = 1 / l11, i22 = 1 / l22;
    const i10 = -l10 * i00 * i11;
    const i21 = -l21 * i11 * i22;
    const i20 = -(l20 * i00 + l21 * i10) * i22;
    out.set([m0, m1, m2, i00, i10, i11, i20, i21, i22], 9 * k);
  }
  return out;
}

/** A guide image on the GPU with its window statistics: what every product with its M needs. */
export interface MattingGuide {
  I: Tensor;
  stats: Tensor;
  H: number;
  W: number;
  destroy(): void;
}

/** Uploads a planar [3,H,W] guide (values in [0, 1]) and its window statistics. */
export function mattingGuide(gpu: Gpu, image: { data: ArrayLike<number>; width: number; height: number }, eps = MATTING_EPS): MattingGuide {
  const { width: W, height: H } = image;
  if (image.data.length !== 3 * H * W) throw new PainterlyError(`mattingGuide: expected ${3 * H * W} values for a 3x${H}x${W} image, got ${image.data.length}`);
  if (!(eps > 0)) throw new PainterlyError(`mattingGuide: expected eps > 0, got ${eps}`);
  const I = uploadTensor(gpu, image.data, [3, H, W], 'matting.guide');
  const stats = uploadTensor(gpu, mattingWindowStats(image.data, H, W, eps), [H * W, 9], 'matting.stats');
  return { I, stats, H, W, destroy: () => destroyTensors(I, stats) };
}

export interface MattingSteps {
  steps: Step[];
  /** Rewrites `scale` for later submits. */
  setScale(gpu: Gpu, scale: number): void;
  destroy(): void;
}

/**
 * out = (accumulate ? out : 0) + scale · M v_c for each channel c of v [3,H,W] (out [3,H,W]); with `scalars`,
 * scalars[slot] = Σ_c v_cᵀ M v_c. As the regulariser λ Σ_c V_cᵀ M V_c: scale = 2λ, accumulate into the gradient.
 */
export function mattingSteps(gpu: Gpu, g: MattingGuide, a: {
  v: Tensor; out: Tensor; scale?: number; accumulate?: boolean; scalars?: GPUBuffer; slot?: number;
}): MattingSteps {
  const { H, W } = g;
  for (const t of [a.v, a.out]) {
    if (t.size !== 3 * H * W) throw new PainterlyError(`mattingSteps: expected ${t.label} of 3x${H}x${W} values like the guide, got [${t.shape}]`);
  }
  if (a.v.buffer === a.out.buffer) throw new PainterlyError('mattingSteps: v and out must be different buffers');
  const n = H * W;
  const T = Math.min(4096, Math.max(1, Math.ceil(n / 16)));
  const win = createTensor(gpu, [n, 12], 'matting.win');
  const partial = createTensor(gpu, [T], 'matting.partial');
  const u = { n, H, W, T, scale: a.scale ?? 1, accumulate: a.accumulate ? 1 : 0 };
  const apply = bind(gpu, mattingApplySpec, { aI: g.I.buffer, astats: g.stats.buffer, av: a.v.buffer, awin: win.buffer, aout: a.out.buffer, apartial: partial.buffer },
    u, Math.ceil(T / 256), 'matting_apply');
  const steps = [
    bind(gpu, mattingWindowSpec, { wI: g.I.buffer, wstats: g.stats.buffer, wv: a.v.buffer, wwin: win.buffer }, u, Math.ceil(n / 256), 'matting_window'),
    apply,
  ];
  if (a.scalars) {
    const slot = a.slot ?? 0;
    if (!Number.isInteger(slot) || slot < 0 || (slot + 1) * 4 > a.scalars.size) throw new PainterlyError(`mattingSteps: slot ${slot} is outside the scalars buffer`);
    steps.push(bind(gpu, reduceFinalSpec, { partial: partial.buffer, scalars: a.scalars }, { T, slot, factor: 1 }, 1, 'reduce_final matting'));
  }
  return { steps, setScale: (gg, scale) => setUniforms(gg, apply, { ...u, scale }), destroy: () => destroyTensors(win, partial) };
}
