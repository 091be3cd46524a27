// Softmax over channels at every position, forward and backward (shaders/softmax.wgsl): the feature transform of
// Wang et al., "Rethinking and Improving the Robustness of Image Style Transfer" (CVPR 2021, "SWAG"), which makes
// Gram-matrix style losses work on ResNet-like backbones. Features [C,H,W] or [C,M] (batch 1), temperature T > 0:
//   y[c,p] = exp(x[c,p]/T) / Σ_c' exp(x[c',p]/T)       (stable: the column maximum is subtracted first)
//   dx[c,p] = (1/T) y[c,p] (dy[c,p] - Σ_c' y[c',p] dy[c',p])
// Aliasing: the forward may run in place (y = x); the backward may run in place on the gradient (dx = dy); dx = y and
// dy = y are refused.
import source from '../../shaders/softmax.wgsl';
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { bind, fold, type KernelSpec, type Step } from '../gpu/kernel.ts';
import type { Tensor } from '../gpu/tensor.ts';

const file = 'shaders/softmax.wgsl';
const uniforms = { C: 'u32', M: 'u32', inv_t: 'f32' } as const;
export const softmaxSpecs = {
  forward: { file, source, entry: 'softmax_channels', uniforms, bindings: { smp: 'uniform', sm_x: 'read', sm_y: 'read_write' } },
  forwardInPlace: { file, source, entry: 'softmax_channels_inplace', uniforms, bindings: { smip: 'uniform', smi_y: 'read_write' } },
  backward: { file, source, entry: 'softmax_channels_backward', uniforms,
    bindings: { smbp: 'uniform', smb_y: 'read', smb_dy: 'read', smb_dx: 'read_write' } },
  backwardInPlace: { file, source, entry: 'softmax_channels_backward_inplace', uniforms,
    bindings: { smbip: 'uniform', smbi_y: 'read', smbi_g: 'read_write' } },
} satisfies Record<string, KernelSpec>;

function features(what: string, x: Tensor): { C: number; M: number } {
  if ((x.shape.length !== 2 && x.shape.length !== 3) || x.size < 1) {
    throw new PainterlyError(`${what}: expected features [C,H,W] or [C,M], got [${x.shape}] (${x.label})`);
  }
  return { C: x.shape[0], M: x.size / x.shape[0] };
}

function checkLike(what: string, a: Tensor, b: Tensor): void {
  if (a.shape.join() !== b.shape.join()) throw new PainterlyError(`${what}: expected ${b.label} [${a.shape}] like ${a.label}, got [${b.shape}]`);
}

function checkT(what: string, T: number): number {
  if (!(T > 0) || !Number.isFinite(T)) throw new PainterlyError(`${what}: temperature T must be a finite number > 0, got ${T}`);
  return 1 / T;
}

/** y = softmax over channels of x / T at each position (overwrites y; y may be x itself). */
export function softmaxChannels(gpu: Gpu, x: Tensor, y: Tensor, T: number): Step[] {
  const what = 'softmaxChannels';
  const { C, M } = features(what, x);
  checkLike(what, x, y);
  const u = { C, M, inv_t: checkT(what, T) };
  const groups = fold(Math.ceil(M / 64));
  return x.buffer === y.buffer
    ? [bind(gpu, softmaxSpecs.forwardInPlace, { smi_y: y.buffer }, u, groups, `softmax_channels_inplace ${y.label}`)]
    : [bind(gpu, softmaxSpecs.forward, { sm_x: x.buffer, sm_y: y.buffer }, u, groups, `softmax_channels ${y.label}`)];
}

/**
 * dx = (1/T) y ⊙ (dy - Σ_c y dy) from the forward's output y (overwrites dx; dx may be dy itself, not y; dy must
 * not be y).
 */
export function softmaxChannelsBackward(gpu: Gpu, y: Tensor, dy: Tensor, dx: Tensor, T: number): Step[] {
  const what = 'softmaxChannelsBackward';
  const { C, M } = features(what, y);
  checkLike(what, y, dy);
  checkLike(what, y, dx);
  if (dx.buffer === y.buffer || dy.buffer === y.buffer) {
    throw new PainterlyError(`${what}: the gradients (${dy.label}, ${dx.label}) must not be the softmax output ${y.label}; dx may be dy`);
  }
  const u = { C, M, inv_t: checkT(what, T) };
  const groups = fold(Math.ceil(M / 64));
  return dx.buffer === dy.buffer
    ? [bind(gpu, softmaxSpecs.backwardInPlace, { smbi_y: y.buffer, smbi_g: dx.buffer }, u, groups, `softmax_channels_backward_inplace ${dx.label}`)]
    : [bind(gpu, softmaxSpecs.backward, { smb_y: y.buffer, smb_dy: dy.buffer, smb_dx: dx.buffer }, u, groups, `softmax_channels_backward ${dx.label}`)];
}
