// Vector ops on flat float32 vectors (shaders/vector.wgsl): fill, scale, copy, axpy, axpby, deterministic
// dot / sum|x| / max|x| reductions into a GPU "scalars" buffer, a scalar select, and the Adam and SGD updates.
// Any Tensor is a vector of its `size` elements (layout does not matter). Each function returns Step(s) to encode;
// nothing is submitted or read back here except by readScalars.
import source from '../../shaders/vector.wgsl';
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { bind, type KernelSpec, type Step } from '../gpu/kernel.ts';
import { createTensor, type Tensor } from '../gpu/tensor.ts';

const file = 'shaders/vector.wgsl';
const NONE = 0xffffffff;
/** Elements per workgroup of the elementwise kernels (64 invocations x vec4). */
const PER_GROUP = 256;
/** Elements per workgroup of the reduction's first stage (64 invocations x 64 vec4), each writing 64 partials. */
const PER_REDUCE_GROUP = 64 * 64 * 4;

const vecUniforms = { n: 'u32', mode: 'u32', i: 'u32', j: 'u32', c: 'f32', b: 'f32' } as const;
const spec = (entry: string, bindings: KernelSpec['bindings'], uniforms: KernelSpec['uniforms']): KernelSpec =>
  ({ file, source, entry, bindings, uniforms });
export const vectorSpecs = {
  fill: spec('vec_fill', { u: 'uniform', sc: 'read', ay: 'read_write' }, vecUniforms),
  scaleInPlace: spec('vec_scale_inplace', { u: 'uniform', sc: 'read', ay: 'read_write' }, vecUniforms),
  scale: spec('vec_scale', { u: 'uniform', sc: 'read', bx: 'read', by: 'read_write' }, vecUniforms),
  axpy: spec('vec_axpy', { u: 'uniform', sc: 'read', bx: 'read', by: 'read_write' }, vecUniforms),
  axpby: spec('vec_axpby', { u: 'uniform', sc: 'read', bx: 'read', cy: 'read', cout: 'read_write' }, vecUniforms),
  reducePartial: spec('vec_reduce_partial', { ru: 'uniform', rx: 'read', ry: 'read', rpart: 'read_write' },
    { n: 'u32', kind: 'u32' }),
  reduceFinish: spec('vec_reduce_finish', { fu: 'uniform', fpart: 'read', fsc: 'read_write' },
    { count: 'u32', kind: 'u32', dst: 'u32', mul: 'u32', c: 'f32' }),
  select: spec('scalar_select', { su: 'uniform', ssc: 'read_write' },
    { dst: 'u32', ci: 'u32', cmp: 'u32', a: 'u32', b: 'u32', e: 'u32', c0: 'f32', k1: 'f32', k2: 'f32' }),
  adam: spec('adam_update', { adu: 'uniform', ag: 'read', am: 'read_write', av: 'read_write', ax: 'read_write' },
    { n: 'u32', b2: 'f32', omb1: 'f32', omb2: 'f32', stepSize: 'f32', bc2sqrt: 'f32', eps: 'f32' }),
  sgdMomentum: spec('sgd_momentum_update', { sgu: 'uniform', sg: 'read', sbuf: 'read_write', sx: 'read_write' },
    { n: 'u32', first: 'u32', nesterov: 'u32', lr: 'f32', mu: 'f32', omd: 'f32' }),
};

/** A small GPU buffer of float32 scalars that kernels read coefficients from and write reductions into. */
export interface Scalars {
  buffer: GPUBuffer;
  count: number;
  label: string;
}

export function createScalars(gpu: Gpu, count: number, label = 'scalars'): Scalars {
  if (!(Number.isInteger(count) && count >= 1)) throw new PainterlyError(`${label}: expected a positive scalar count, got ${count}`);
  const buffer = gpu.device.createBuffer({
    label, size: Math.ceil(count / 4) * 16,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
  return { buffer, count, label };
}

export function writeScalars(gpu: Gpu, s: Scalars, values: ArrayLike<number>, at = 0): void {
  checkIndex(s, at, 'writeScalars');
  checkIndex(s, at + values.length - 1, 'writeScalars');
  const f = Float32Array.from(values);
  gpu.device.queue.writeBuffer(s.buffer, at * 4, f.buffer, 0, f.byteLength);
}

/** Reads scalars [at, at + count) back (one submit, one map: use rarely). */
export async function readScalars(gpu: Gpu, s: Scalars, at = 0, count = s.count - at): Promise<Float32Array> {
  checkIndex(s, at, 'readScalars');
  checkIndex(s, at + count - 1, 'readScalars');
  const staging = gpu.device.createBuffer({ label: `${s.label}.read`, size: count * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = gpu.device.createCommandEncoder({ label: `${s.label}.read` });
  enc.copyBufferToBuffer(s.buffer, at * 4, staging, 0, count * 4);
  gpu.device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  gpu.checkAlive();
  const out = new Float32Array(staging.getMappedRange().slice(0));
  staging.unmap();
  staging.destroy();
  return out;
}

/**
 * A coefficient: a constant, or read on the GPU when the kernel runs: c * sc[i] (default), c * sc[i] * sc[j] ('mul'),
 * c * sc[i] / sc[j] ('div'), c * (sc[i] - sc[j]) ('sub'). c defaults to 1.
 */
export type Coef = number | { s: Scalars; i: number; j?: number; op?: 'mul' | 'div' | 'sub'; c?: number };

/** Where a reduction goes: s[i] = c * r, times s[mul] when given (and exactly 0 when s[mul] is 0). */
export interface ReduceTarget {
  s: Scalars;
  i: number;
  c?: number;
  mul?: number;
}

const dummies = new WeakMap<Gpu, GPUBuffer>();
/** Bound in place of a scalars buffer when every coefficient is a constant. */
function dummyScalars(gpu: Gpu): GPUBuffer {
  let b = dummies.get(gpu);
  if (!b) {
    b = gpu.persist(gpu.device.createBuffer({ label: 'scalars.none', size: 16, usage: GPUBufferUsage.STORAGE }));
    dummies.set(gpu, b);
  }
  return b;
}

function checkIndex(s: Scalars, i: number, what: string): void {
  if (!(Number.isInteger(i) && i >= 0 && i < s.count)) {
    throw new PainterlyError(`${what}: scalar index ${i} outside ${s.label} [0, ${s.count})`);
  }
}

function checkVec(t: Tensor, n: number, what: string): void {
  if (t.size !== n) throw new PainterlyError(`${what}: ${t.label} has ${t.size} elements, expected ${n}`);
  if (t.buffer.size < Math.ceil(n / 4) * 16) {
    throw new PainterlyError(`${what}: ${t.label} buffer of ${t.buffer.size} bytes, expected >= ${Math.ceil(n / 4) * 16} (16-byte padded)`);
  }
}

function noAlias(what: string, ...ts: Tensor[]): void {
  for (let i = 0; i < ts.length; i++) for (let j = i + 1; j < ts.length; j++) {
    if (ts[i].buffer === ts[j].buffer) {
      throw new PainterlyError(`${what}: ${ts[i].label} and ${ts[j].label} share a buffer; WebGPU forbids aliasing a written binding`);
    }
  }
}

function coefUniforms(gpu: Gpu, a: Coef, what: string): { sc: GPUBuffer; mode: number; i: number; j: number; c: number } {
  if (typeof a === 'number') return { sc: dummyScalars(gpu), mode: 0, i: 0, j: 0, c: a };
  checkIndex(a.s, a.i, what);
  const op = a.op;
  if (op !== undefined && a.j === undefined) throw new PainterlyError(`${what}: coefficient op '${op}' needs j`);
  if (a.j !== undefined) checkIndex(a.s, a.j, what);
  const mode = op === undefined ? (a.j === undefined ? 1 : 4) : { div: 2, sub: 3, mul: 4 }[op];
  return { sc: a.s.buffer, mode, i: a.i, j: a.j ?? 0, c: a.c ?? 1 };
}

function elementwise(
  gpu: Gpu, spec: KernelSpec, n: number, a: Coef, b: number, buffers: Record<string, GPUBuffer>, label: string,
): Step {
  const { sc, ...u } = coefUniforms(gpu, a, label);
  return bind(gpu, spec, { sc, ...buffers }, { n, ...u, b }, Math.ceil(n / PER_GROUP), label);
}

/** y = a */
export function vecFill(gpu: Gpu, y: Tensor, a: Coef): Step {
  checkVec(y, y.size, 'vecFill');
  return elementwise(gpu, vectorSpecs.fill, y.size, a, 0, { ay: y.buffer }, `fill ${y.label}`);
}

/** y = a * y */
export function vecScaleInPlace(gpu: Gpu, y: Tensor, a: Coef): Step {
  checkVec(y, y.size, 'vecScaleInPlace');
  return elementwise(gpu, vectorSpecs.scaleInPlace, y.size, a, 0, { ay: y.buffer }, `scale ${y.label}`);
}

/** y = a * x (x and y distinct). */
export function vecScale(gpu: Gpu, x: Tensor, y: Tensor, a: Coef): Step {
  checkVec(x, x.size, 'vecScale'); checkVec(y, x.size, 'vecScale'); noAlias('vecScale', x, y);
  return elementwise(gpu, vectorSpecs.scale, x.size, a, 0, { bx: x.buffer, by: y.buffer }, `scale ${x.label}->${y.label}`);
}

/** y = x, bit for bit (finite values). */
export function vecCopy(gpu: Gpu, x: Tensor, y: Tensor): Step {
  return vecScale(gpu, x, y, 1);
}

/** y += a * x. When a evaluates to exactly 0 on the GPU, y is left untouched (even where x is not finite). */
export function vecAxpy(gpu: Gpu, a: Coef, x: Tensor, y: Tensor): Step {
  checkVec(x, x.size, 'vecAxpy'); checkVec(y, x.size, 'vecAxpy'); noAlias('vecAxpy', x, y);
  return elementwise(gpu, vectorSpecs.axpy, x.size, a, 0, { bx: x.buffer, by: y.buffer }, `axpy ${x.label}->${y.label}`);
}

/** out = a * x + b * y (out distinct from x and y; x and y may be the same). */
export function vecAxpby(gpu: Gpu, a: Coef, x: Tensor, b: number, y: Tensor, out: Tensor): Step {
  checkVec(x, x.size, 'vecAxpby'); checkVec(y, x.size, 'vecAxpby'); checkVec(out, x.size, 'vecAxpby');
  noAlias('vecAxpby', x, out); noAlias('vecAxpby', y, out);
  return elementwise(gpu, vectorSpecs.axpby, x.size, a, b, { bx: x.buffer, cy: y.buffer, cout: out.buffer },
    `axpby ${x.label},${y.label}->${out.label}`);
}

/** Number of first-stage partials a reduction over n elements writes. */
export function reducePartials(n: number): number {
  return Math.max(1, Math.ceil(n / PER_REDUCE_GROUP)) * 64;
}

/** Scratch for reductions over vectors of up to n elements (reusable by any number of reductions in one submit). */
export function createReduceWork(gpu: Gpu, n: number, label = 'reduce.work'): Tensor {
  return createTensor(gpu, [reducePartials(n)], label);
}

function reduce(gpu: Gpu, kind: number, x: Tensor, y: Tensor, out: ReduceTarget, work: Tensor, label: string): Step[] {
  const n = x.size;
  checkVec(x, n, label); checkVec(y, n, label);
  checkIndex(out.s, out.i, label);
  if (out.mul !== undefined) checkIndex(out.s, out.mul, label);
  const count = reducePartials(n);
  if (work.size < count) throw new PainterlyError(`${label}: reduction work ${work.label} has ${work.size} elements, expected >= ${count}`);
  if (work.buffer === x.buffer || work.buffer === y.buffer) throw new PainterlyError(`${label}: work buffer aliases an input`);
  return [
    bind(gpu, vectorSpecs.reducePartial, { rx: x.buffer, ry: y.buffer, rpart: work.buffer }, { n, kind },
      count / 64, `${label} partial`),
    bind(gpu, vectorSpecs.reduceFinish, { fpart: work.buffer, fsc: out.s.buffer },
      { count, kind, dst: out.i, mul: out.mul ?? NONE, c: out.c ?? 1 }, 1, `${label} finish`),
  ];
}

/** out = x . y (float32 accumulation, fixed order: deterministic). */
export function vecDot(gpu: Gpu, x: Tensor, y: Tensor, out: ReduceTarget, work: Tensor): Step[] {
  return reduce(gpu, 0, x, y, out, work, `dot ${x.label}.${y.label}`);
}

/** out = sum |x| */
export function vecAsum(gpu: Gpu, x: Tensor, out: ReduceTarget, work: Tensor): Step[] {
  return reduce(gpu, 1, x, x, out, work, `asum ${x.label}`);
}

/** out = max |x| */
export function vecAmax(gpu: Gpu, x: Tensor, out: ReduceTarget, work: Tensor): Step[] {
  return reduce(gpu, 2, x, x, out, work, `amax ${x.label}`);
}

export type Cmp = '>' | '>=' | '<' | '<=';
/** A scalar operand: an index into the scalars buffer, or undefined for the constant 1. */
export type Operand = number | undefined;

/**
 * s[dst] = (s[test] CMP c0) ? k1 * s[a] / s[b] : k2 * s[e], on the GPU (one invocation). Operands left undefined
 * read as 1, so e.g. { test: undefined, cmp: '>', c0: 0, k1: v } writes the constant v.
 */
export function scalarSelect(
  gpu: Gpu, s: Scalars, dst: number,
  o: { test: Operand; cmp: Cmp; c0: number; k1: number; a?: Operand; b?: Operand; k2: number; e?: Operand },
): Step {
  const idx = (v: Operand): number => {
    if (v === undefined) return NONE;
    checkIndex(s, v, 'scalarSelect');
    return v;
  };
  checkIndex(s, dst, 'scalarSelect');
  const cmp = ['>', '>=', '<', '<='].indexOf(o.cmp);
  return bind(gpu, vectorSpecs.select, { ssc: s.buffer }, {
    dst, ci: idx(o.test), cmp, a: idx(o.a), b: idx(o.b), e: idx(o.e), c0: o.c0, k1: o.k1, k2: o.k2,
  }, 1, `select ${s.label}[${dst}]`);
}

export interface AdamHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
}

/** Uniform values of the Adam kernel for 1-based step t (bias corrections in float64, as torch computes them). */
export function adamUniforms(n: number, h: AdamHyper, t: number): Record<string, number> {
  return {
    n, b2: h.beta2, omb1: 1 - h.beta1, omb2: 1 - h.beta2,
    stepSize: h.lr / (1 - h.beta1 ** t), bc2sqrt: Math.sqrt(1 - h.beta2 ** t), eps: h.eps,
  };
}

/** One torch.optim.Adam update of x from gradient g and moments m, v (all distinct, same size); t is 1-based. */
export function adamUpdate(gpu: Gpu, g: Tensor, m: Tensor, v: Tensor, x: Tensor, h: AdamHyper, t: number): Step {
  const n = x.size;
  for (const a of [g, m, v, x]) checkVec(a, n, 'adamUpdate');
  noAlias('adamUpdate', g, m, v, x);
  return bind(gpu, vectorSpecs.adam, { ag: g.buffer, am: m.buffer, av: v.buffer, ax: x.buffer }, adamUniforms(n, h, t),
    Math.ceil(n / PER_GROUP), `adam ${x.label}`);
}

export interface SgdHyper {
  lr: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
}

export function sgdUniforms(n: number, h: SgdHyper, first: boolean): Record<string, number> {
  return { n, first: first ? 1 : 0, nesterov: h.nesterov ? 1 : 0, lr: h.lr, mu: h.momentum, omd: 1 - h.dampening };
}

/** One torch.optim.SGD momentum update (buf initialised to g when first); plain SGD is vecAxpy(-lr, g, x). */
export function sgdMomentumUpdate(gpu: Gpu, g: Tensor, buf: Tensor, x: Tensor, h: SgdHyper, first: boolean): Step {
  const n = x.size;
  for (const a of [g, buf, x]) checkVec(a, n, 'sgdMomentumUpdate');
  noAlias('sgdMomentumUpdate', g, buf, x);
  return bind(gpu, vectorSpecs.sgdMomentum, { sg: g.buffer, sbuf: buf.buffer, sx: x.buffer }, sgdUniforms(n, h, first),
    Math.ceil(n / PER_GROUP), `sgd ${x.label}`);
}
