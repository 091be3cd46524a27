// Per-position masks on float32 features (shaders/mask.wgsl), and the masked (per-region) style loss of Luan et al.,
// "Deep Photo Style Transfer" (CVPR 2017), built from it and the Gatys style loss (loss.ts).
//  - maskMul:          y[c,p] = m[p] x[c,p]  (m [M] shared by the C channels of x [C,H,W] or [C,M]);
//  - maskMulBackward:  dx[c,p] += m[p] dy[c,p]  (the map is its own adjoint; accumulates).
import source from '../../shaders/mask.wgsl';
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { bind, type KernelSpec, type Step } from '../gpu/kernel.ts';
import { createTensor, type Tensor } from '../gpu/tensor.ts';
import { styleLoss } from './loss.ts';
import { vecFill } from './vector.ts';

export const maskMulSpec: KernelSpec = {
  file: 'shaders/mask.wgsl', source, entry: 'mask_mul',
  bindings: { mp: 'uniform', mm: 'read', mx: 'read', my: 'read_write' }, uniforms: { n: 'u32', M: 'u32', accumulate: 'u32' },
};

function positions(what: string, x: Tensor, m: Tensor): number {
  if (x.shape.length !== 2 && x.shape.length !== 3) throw new PainterlyError(`${what}: expected features [C,H,W] or [C,M], got [${x.shape}] (${x.label})`);
  const M = x.size / x.shape[0];
  if (m.size !== M || (x.shape.length === 3 && m.shape.length === 2 && (m.shape[0] !== x.shape[1] || m.shape[1] !== x.shape[2]))) {
    throw new PainterlyError(`${what}: expected a mask of ${M} positions like ${x.label} [${x.shape}], got [${m.shape}] (${m.label})`);
  }
  return M;
}

function steps(what: string, gpu: Gpu, x: Tensor, m: Tensor, y: Tensor, accumulate: boolean): Step[] {
  const M = positions(what, x, m);
  if (y.size !== x.size) throw new PainterlyError(`${what}: expected ${y.label} of ${x.size} values like ${x.label} [${x.shape}], got [${y.shape}]`);
  if (y.buffer === x.buffer || y.buffer === m.buffer) throw new PainterlyError(`${what}: output ${y.label} must not be an input (not in place)`);
  return [bind(gpu, maskMulSpec, { mm: m.buffer, mx: x.buffer, my: y.buffer }, { n: x.size, M, accumulate: accumulate ? 1 : 0 },
    Math.ceil(x.size / 256), `mask_mul ${y.label}`)];
}

/** y = m ⊙ x: y[c,p] = m[p] x[c,p] for x [C,H,W] or [C,M] and a mask m of M = H*W values (overwrites y). */
export function maskMul(gpu: Gpu, x: Tensor, m: Tensor, y: Tensor): Step[] {
  return steps('maskMul', gpu, x, m, y, false);
}

/** dx += m ⊙ dy: maskMul's gradient w.r.t. x, accumulated into dx. */
export function maskMulBackward(gpu: Gpu, dy: Tensor, m: Tensor, dx: Tensor): Step[] {
  return steps('maskMulBackward', gpu, dy, m, dx, true);
}

/** One region of a masked style layer: the content's mask at the layer, its area, and the target on F Fᵀ's scale. */
export interface MaskedRegion {
  /** m_r at the layer's resolution [H_l, W_l] (soft, in [0, 1]): the content (output) image's mask. */
  mask: Tensor;
  /** a_r = Σ_p m_r[p] of that mask (computed on the CPU in float64). */
  area: number;
  /** a_r Â_r [N, N]: the style's normalised region Gram Â_r = G^s_r / a^s_r, scaled to the output region's area. */
  A: Tensor;
}

/**
 * The masked style loss of one region r at one layer, as GPU steps (Luan et al. 2017, with Gatys et al.'s E_l):
 *
 *   F_r = m_r ⊙ F,  G_r = F_r F_rᵀ,  E_r = (a_r / M) · 1/(4 N²) Σ_ij (G_r/a_r − Â_r)²_ij
 *
 * (N channels, M positions, a_r = Σ_p m_r[p]). G_r/a_r is the region's Gram per unit of area, comparable with the
 * style region's Â_r whatever the two regions' sizes; the factor a_r/M weights each region by its share of the image,
 * so that one region covering everything (m = 1) is exactly the unmasked E_l = 1/(4N²M²) Σ (G − A)².
 * It is Gatys' style loss on F_r with target a_r Â_r, times M/a_r:
 *   E'_r = 1/(4N²M²) Σ (G_r − a_r Â_r)² = (a_r/M)² · 1/(4N²) Σ (G_r/a_r − Â_r)² = (a_r/M) E_r,
 * so styleLoss runs on F_r and reports E'_r in `slot`: to weight E_r by w, pass weight = w·M/a_r (regionWeight), which
 * also weights the reported E'_r into w·E_r.
 * Gradient: ∂E_r/∂G_r = (a_r/M) · 1/(2N² a_r) D_r with D_r = G_r/a_r − Â_r (symmetric), ∂E_r/∂F_r = 2 ∂E_r/∂G_r F_r
 * = 1/(N² M) D_r F_r (what styleLoss accumulates into the scratch dF_r, times the weight), and through F_r = m_r ⊙ F:
 *   ∂E_r/∂F[c,p] = m_r[p] ∂E_r/∂F_r[c,p],   i.e.  grad += m_r ⊙ dF_r.
 * `Fr` and `dFr` are scratch of F's shape, shared by the regions of a layer (the steps run in order).
 */
export function maskedStyleLoss(gpu: Gpu, a: {
  F: Tensor; region: MaskedRegion; grad: Tensor; weight: number; scalars: GPUBuffer; slot: number; Fr: Tensor; dFr: Tensor;
}): Step[] {
  const { F, region, Fr, dFr } = a;
  if (!(region.area > 0)) throw new PainterlyError(`maskedStyleLoss: expected a region of positive area, got ${region.area} (${region.mask.label})`);
  return [
    ...maskMul(gpu, F, region.mask, Fr),
    vecFill(gpu, dFr, 0),
    ...styleLoss(gpu, { F: Fr, A: region.A, grad: dFr, weight: a.weight, scalars: a.scalars, slot: a.slot }).steps,
    ...maskMulBackward(gpu, dFr, region.mask, a.grad),
  ];
}

/** The weight to pass maskedStyleLoss so that it weights E_r by w: w · M / a_r (M: the layer's positions). */
export function regionWeight(w: number, region: Pick<MaskedRegion, 'area' | 'mask'>): number {
  return (w * region.mask.size) / region.area;
}

/** Scratch for maskedStyleLoss at a layer: F_r and dF_r of F's shape. */
export function maskedScratch(gpu: Gpu, F: Tensor): { Fr: Tensor; dFr: Tensor } {
  return { Fr: createTensor(gpu, F.shape, `${F.label}.masked.F`), dFr: createTensor(gpu, F.shape, `${F.label}.masked.dF`) };
}
