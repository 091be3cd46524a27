// Colour guided filter (He et al.) on float32 [3,H,W] images (shaders/guided.wgsl): q = the filter of p guided by I,
// window radius r (windows clipped to the image), regulariser eps on the 3x3 colour covariance. Used as Li et al.'s
// (ECCV 2018) fast photorealistic smoothing: p the stylised image, I the content photograph.
import source from '../../shaders/guided.wgsl';
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { bind, type KernelSpec, type Step } from '../gpu/kernel.ts';
import { createTensor, destroyTensors, type Tensor } from '../gpu/tensor.ts';

const file = 'shaders/guided.wgsl';
const pix = { n: 'u32', eps: 'f32' } as const;
export const gfStackSpec: KernelSpec = { file, source, entry: 'gf_stack', uniforms: pix, bindings: { sp: 'uniform', sI: 'read', sP: 'read', sout: 'read_write' } };
export const boxMeanSpec: KernelSpec = {
  file, source, entry: 'box_mean', bindings: { bp: 'uniform', bx: 'read', by: 'read_write' },
  uniforms: { planes: 'u32', H: 'u32', W: 'u32', r: 'u32', axis: 'u32', S: 'u32', nseg: 'u32', total: 'u32' },
};
export const gfCoeffsSpec: KernelSpec = { file, source, entry: 'gf_coeffs', uniforms: pix, bindings: { cp: 'uniform', cm: 'read', cco: 'read_write' } };
export const gfOutputSpec: KernelSpec = { file, source, entry: 'gf_output', uniforms: pix, bindings: { op: 'uniform', oI: 'read', oab: 'read', oq: 'read_write' } };

/** Positions per box-mean invocation: each sums its first window directly and slides over the rest. */
const SEGMENT = 32;

/**
 * Steps for y = the clipped (2r+1)-box mean of every plane of x [planes,H,W] along rows then columns; `tmp` holds
 * the row pass (same size as x). x and y may be the same tensor.
 */
export function boxMeanSteps(gpu: Gpu, x: Tensor, tmp: Tensor, y: Tensor, planes: number, H: number, W: number, r: number): Step[] {
  const steps: Step[] = [];
  for (const [axis, from, to] of [[0, x, tmp], [1, tmp, y]] as const) {
    const L = axis === 0 ? W : H, lines = axis === 0 ? H : W;
    const nseg = Math.ceil(L / SEGMENT);
    const total = planes * nseg * lines;
    steps.push(bind(gpu, boxMeanSpec, { bx: from.buffer, by: to.buffer }, { planes, H, W, r, axis, S: SEGMENT, nseg, total },
      Math.ceil(total / 256), `box_mean axis ${axis} ${from.label}`));
  }
  return steps;
}

export interface GuidedFilter {
  steps: Step[];
  destroy(): void;
}

function dims(what: string, t: Tensor): [number, number] {
  if (t.shape.length !== 3 || t.shape[0] !== 3) throw new PainterlyError(`${what}: expected an image [3,H,W], got [${t.shape}] (${t.label})`);
  return [t.shape[1], t.shape[2]];
}

/**
 * q = guided filter of p with guide I (all [3,H,W]), radius r >= 0 (integer), eps > 0. Allocates its scratch
 * (54 planes of H x W float32); the steps may be encoded many times. destroy() frees the scratch.
 */
export function guidedFilter(gpu: Gpu, a: { I: Tensor; p: Tensor; q: Tensor; radius: number; eps: number }): GuidedFilter {
  const [H, W] = dims('guidedFilter', a.I);
  for (const t of [a.p, a.q]) {
    const [h, w] = dims('guidedFilter', t);
    if (h !== H || w !== W) throw new PainterlyError(`guidedFilter: expected ${t.label} [3,${H},${W}] like the guide ${a.I.label}, got [${t.shape}]`);
  }
  if (!Number.isInteger(a.radius) || a.radius < 0) throw new PainterlyError(`guidedFilter: expected an integer radius >= 0, got ${a.radius}`);
  if (!(a.eps > 0) || !Number.isFinite(a.eps)) throw new PainterlyError(`guidedFilter: expected eps > 0, got ${a.eps}`);
  const n = H * W;
  const stack = createTensor(gpu, [21, H, W], 'guided.stack');
  const tmp = createTensor(gpu, [21, H, W], 'guided.tmp');
  const coef = createTensor(gpu, [12, H, W], 'guided.coef');
  const g = Math.ceil(n / 256);
  const steps = [
    bind(gpu, gfStackSpec, { sI: a.I.buffer, sP: a.p.buffer, sout: stack.buffer }, { n, eps: a.eps }, g, 'gf_stack'),
    ...boxMeanSteps(gpu, stack, tmp, stack, 21, H, W, a.radius),
    bind(gpu, gfCoeffsSpec, { cm: stack.buffer, cco: coef.buffer }, { n, eps: a.eps }, g, 'gf_coeffs'),
    ...boxMeanSteps(gpu, coef, tmp, coef, 12, H, W, a.radius),
    bind(gpu, gfOutputSpec, { oI: a.I.buffer, oab: coef.buffer, oq: a.q.buffer }, { n, eps: a.eps }, g, 'gf_output'),
  ];
  return { steps, destroy: () => destroyTensors(stack, tmp, coef) };
}
