// Window copies between float32 [C,H,W] tensors (batch 1) (shaders/crop.wgsl): crop a tile out of an image, paste
// a tile's core back, add a loss gradient into a window of a layer's gradient.
import source from '../../shaders/crop.wgsl';
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { bind, type KernelSpec, type Step } from '../gpu/kernel.ts';
import type { Tensor } from '../gpu/tensor.ts';

export const windowCopySpec: KernelSpec = {
  file: 'shaders/crop.wgsl', source, entry: 'window_copy', bindings: { p: 'uniform', src: 'read', dst: 'read_write' },
  uniforms: {
    C: 'u32', h: 'u32', w: 'u32', sH: 'u32', sW: 'u32', sy0: 'u32', sx0: 'u32',
    dH: 'u32', dW: 'u32', dy0: 'u32', dx0: 'u32', alpha: 'f32', beta: 'f32',
  },
};

/** A rectangle of rows [y0, y0 + h) and columns [x0, x0 + w). */
export interface Rect { y0: number; x0: number; h: number; w: number }

export interface WindowCopy {
  /** Source window (default: all of src). */
  from?: Rect;
  /** Top-left corner of the destination window (default 0, 0); its size is the source window's. */
  to?: { y0: number; x0: number };
  /** dst = alpha * src + beta * dst over the window (defaults 1 and 0; beta = 0 does not read dst). */
  alpha?: number;
  beta?: number;
}

function chw(t: Tensor, what: string): [number, number, number] {
  if (t.shape.length !== 3 || t.size !== t.shape[0] * t.shape[1] * t.shape[2]) {
    throw new PainterlyError(`windowCopy: expected ${what} [C,H,W], got [${t.shape}] (${t.label})`);
  }
  return t.shape as [number, number, number];
}

function inside(r: Rect, H: number, W: number): boolean {
  return [r.y0, r.x0, r.h, r.w].every((v) => Number.isInteger(v) && v >= 0) && r.y0 + r.h <= H && r.x0 + r.w <= W;
}

/**
 * dst[c, to + (i, j)] = alpha * src[c, from + (i, j)] + beta * dst[c, to + (i, j)] over the window (src and dst
 * distinct buffers, same channel count). Elements of dst outside the window are untouched.
 */
export function windowCopy(gpu: Gpu, src: Tensor, dst: Tensor, o: WindowCopy = {}): Step {
  const [C, sH, sW] = chw(src, 'src');
  const [dC, dH, dW] = chw(dst, 'dst');
  const from = o.from ?? { y0: 0, x0: 0, h: sH, w: sW };
  const to = { ...(o.to ?? { y0: 0, x0: 0 }), h: from.h, w: from.w };
  if (dC !== C) throw new PainterlyError(`windowCopy: expected ${dst.label} to have ${C} channels like ${src.label}, got [${dst.shape}]`);
  if (!inside(from, sH, sW)) throw new PainterlyError(`windowCopy: source window ${JSON.stringify(from)} is not inside ${src.label} [${src.shape}]`);
  if (!inside(to, dH, dW)) throw new PainterlyError(`windowCopy: destination window ${JSON.stringify(to)} is not inside ${dst.label} [${dst.shape}]`);
  if (src.buffer === dst.buffer) throw new PainterlyError(`windowCopy: ${src.label} and ${dst.label} share a buffer`);
  const n = C * from.h * from.w;
  return bind(gpu, windowCopySpec, { src: src.buffer, dst: dst.buffer }, {
    C, h: from.h, w: from.w, sH, sW, sy0: from.y0, sx0: from.x0, dH, dW, dy0: to.y0, dx0: to.x0,
    alpha: o.alpha ?? 1, beta: o.beta ?? 0,
  }, Math.ceil(n / 256), `window_copy ${src.label}->${dst.label}`);
}
