// Nearest-neighbour 2x upsampling, forward and backward (shaders/upsample.wgsl). Layout float32 [C,H,W], batch 1;
// output [C,2H,2W] (PyTorch's F.interpolate(scale_factor=2, mode='nearest'), as in the AdaIN/WCT decoders).
import source from '../../shaders/upsample.wgsl';
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { bind, type KernelSpec, type Step } from '../gpu/kernel.ts';
import type { Tensor } from '../gpu/tensor.ts';

const file = 'shaders/upsample.wgsl';
const uniforms = { n: 'u32', H: 'u32', W: 'u32' } as const;
export const upsampleForwardSpec: KernelSpec = {
  file, source, entry: 'upsample_forward', uniforms, bindings: { up: 'uniform', ux: 'read', uy: 'read_write' },
};
export const upsampleBackwardSpec: KernelSpec = {
  file, source, entry: 'upsample_backward', uniforms, bindings: { ubp: 'uniform', ubdy: 'read', ubdx: 'read_write' },
};

/** Checks small [C,H,W] against big [C,2H,2W]; returns the kernel's uniforms. */
function geometry(what: string, small: Tensor, big: Tensor): { n: number; H: number; W: number } {
  if (small.shape.length !== 3) throw new PainterlyError(`${what}: expected input [C,H,W], got [${small.shape}] (${small.label})`);
  const [C, H, W] = small.shape;
  const want = [C, 2 * H, 2 * W];
  if (big.shape.length !== 3 || big.shape.some((v, i) => v !== want[i])) {
    throw new PainterlyError(`${what}: expected upsampled tensor [${want}] for [${small.shape}], got [${big.shape}] (${big.label})`);
  }
  return { n: small.size, H, W };
}

/** y [C,2H,2W] = x [C,H,W] with each element repeated over a 2x2 block (overwrites y). */
export function upsampleForward(gpu: Gpu, x: Tensor, y: Tensor): Step[] {
  const u = geometry('upsampleForward', x, y);
  if (u.n === 0) return [];
  return [bind(gpu, upsampleForwardSpec, { ux: x.buffer, uy: y.buffer }, u, Math.ceil(u.n / 256), `upsample_forward ${y.label}`)];
}

/** dx [C,H,W] = sum of dy [C,2H,2W] over each 2x2 block (overwrites dx). */
export function upsampleBackward(gpu: Gpu, dy: Tensor, dx: Tensor): Step[] {
  const u = geometry('upsampleBackward', dx, dy);
  if (u.n === 0) return [];
  return [bind(gpu, upsampleBackwardSpec, { ubdy: dy.buffer, ubdx: dx.buffer }, u, Math.ceil(u.n / 256), `upsample_backward ${dx.label}`)];
}
