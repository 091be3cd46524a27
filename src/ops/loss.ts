// Content, style (Gatys et al. 2016) and total-variation losses on float32 [C,H,W] tensors (batch 1)
// (shaders/loss.wgsl, reduce.wgsl, gram.wgsl). Each loss WRITES its unweighted value to scalars[slot] and
// ACCUMULATES weight * dLoss/dInput into `grad`. Sums are two-level in a fixed order: values are bit-identical
// run to run. All scratch is allocated here, at bind time; encode the steps every iteration.
import lossSource from '../../shaders/loss.wgsl';
import reduceSource from '../../shaders/reduce.wgsl';
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { bind, setUniforms, type KernelSpec, type Step } from '../gpu/kernel.ts';
import { createTensor, type Tensor } from '../gpu/tensor.ts';
import { featureDims, gramSteps, symMatmul } from './gram.ts';
import { bindMatmul, MATMUL_COLS } from './matmul.ts';
import { createScalars as createVectorScalars, vecAxpy } from './vector.ts';

const file = 'shaders/loss.wgsl';
export const contentLossSpec: KernelSpec = {
  file, source: lossSource, entry: 'content_loss',
  bindings: { cp: 'uniform', cF: 'read', cP: 'read', cgrad: 'read_write', cpartial: 'read_write' },
  uniforms: { n: 'u32', T: 'u32', weight: 'f32' },
};
export const styleDiffSpec: KernelSpec = {
  file, source: lossSource, entry: 'style_diff',
  bindings: { stp: 'uniform', sG: 'read', sA: 'read', sD: 'read_write', spartial: 'read_write' },
  uniforms: { N: 'u32', T: 'u32', inv: 'f32' },
};
export const tvLossSpec: KernelSpec = {
  file, source: lossSource, entry: 'tv_loss',
  bindings: { tp: 'uniform', tx: 'read', tgrad: 'read_write', tpartial: 'read_write' },
  uniforms: { n: 'u32', T: 'u32', H: 'u32', W: 'u32', weight: 'f32' },
};
export const reduceFinalSpec: KernelSpec = {
  file: 'shaders/reduce.wgsl', source: reduceSource, entry: 'reduce_final',
  bindings: { fp: 'uniform', partial: 'read', scalars: 'read_write' }, uniforms: { T: 'u32', slot: 'u32', factor: 'f32' },
};

/** Loss steps to encode every iteration; setWeight rewrites the weight in their uniforms (for later submits). */
export interface LossSteps { steps: Step[]; setWeight(gpu: Gpu, weight: number): void }

/** A buffer of `slots` f32 loss values (the vector ops' scalars buffer, used here as a bare GPUBuffer). */
export function createScalars(gpu: Gpu, slots: number): GPUBuffer {
  if (!Number.isInteger(slots) || slots < 1) throw new PainterlyError(`createScalars: expected a positive slot count, got ${slots}`);
  return createVectorScalars(gpu, slots, 'loss scalars').buffer;
}

/** Invocations of a loss kernel: a few elements each, at most 4096 partials for reduce_final's serial sum. */
function threadsFor(n: number): number {
  return Math.min(4096, Math.max(1, Math.ceil(n / 16)));
}

function checkSlot(what: string, scalars: GPUBuffer, slot: number): void {
  if (!Number.isInteger(slot) || slot < 0 || (slot + 1) * 4 > scalars.size) {
    throw new PainterlyError(`${what}: expected a slot in 0..${scalars.size / 4 - 1} of the scalars buffer, got ${slot}`);
  }
}

function checkSame(what: string, a: Tensor, b: Tensor): void {
  if (a.size !== b.size || a.shape.join() !== b.shape.join()) {
    throw new PainterlyError(`${what}: expected ${b.label} [${b.shape}] to match ${a.label} [${a.shape}]`);
  }
}

function finalStep(gpu: Gpu, partial: Tensor, T: number, scalars: GPUBuffer, slot: number, factor: number, label: string): Step {
  return bind(gpu, reduceFinalSpec, { partial: partial.buffer, scalars }, { T, slot, factor }, 1, `reduce_final ${label}`);
}

/** L = 1/2 Σ (F - P)² ; grad += weight * (F - P). setWeight rewrites the content_loss step's uniforms. */
export function contentLoss(gpu: Gpu, a: { F: Tensor; P: Tensor; grad: Tensor; weight: number; scalars: GPUBuffer; slot: number }): LossSteps {
  checkSame('contentLoss', a.F, a.P);
  checkSame('contentLoss', a.F, a.grad);
  checkSlot('contentLoss', a.scalars, a.slot);
  const n = a.F.size, T = threadsFor(n);
  const partial = createTensor(gpu, [T], `${a.F.label}.content.partial`);
  const u = { n, T, weight: a.weight };
  const main = bind(gpu, contentLossSpec, { cF: a.F.buffer, cP: a.P.buffer, cgrad: a.grad.buffer, cpartial: partial.buffer },
    u, Math.ceil(T / 256), `content_loss ${a.F.label}`);
  return {
    steps: [main, finalStep(gpu, partial, T, a.scalars, a.slot, 0.5, `content ${a.F.label}`)],
    setWeight: (g, weight) => setUniforms(g, main, { ...u, weight }),
  };
}

/**
 * G = F Fᵀ (F [C,H,W] as N = C by M = H*W), E = 1/(4 N² M²) Σ (G - A)² ; grad += weight * 1/(N² M²) (G - A) F.
 * A [N,N] is the target Gram on the same scale as F Fᵀ (symmetric; an asymmetric A acts as (A + Aᵀ)/2 in the
 * gradient, which is exact). The F > 0 gate is the ReLU backward after this. setWeight rewrites the sym_matmul step.
 */
export function styleLoss(gpu: Gpu, a: { F: Tensor; A: Tensor; grad: Tensor; weight: number; scalars: GPUBuffer; slot: number }): LossSteps {
  const [N, M] = featureDims('styleLoss', a.F);
  if (a.A.size !== N * N) throw new PainterlyError(`styleLoss: expected target Gram A [${N},${N}] for ${N} channels, got [${a.A.shape}] (${a.A.label})`);
  checkSame('styleLoss', a.F, a.grad);
  checkSlot('styleLoss', a.scalars, a.slot);
  const inv = 1 / (N * M);
  const G = createTensor(gpu, [N, N], `${a.F.label}.style.G`);
  const D = createTensor(gpu, [N, N], `${a.F.label}.style.D`);
  const T = threadsFor(N * N);
  const partial = createTensor(gpu, [T], `${a.F.label}.style.partial`);
  const head = [
    // G' = F Fᵀ / (NM) keeps float32 well inside range at any image size.
    ...gramSteps(gpu, a.F, G, inv, 'styleLoss'),
    bind(gpu, styleDiffSpec, { sG: G.buffer, sA: a.A.buffer, sD: D.buffer, spartial: partial.buffer }, { N, T, inv },
      Math.ceil(T / 256), `style_diff ${a.F.label}`),
    finalStep(gpu, partial, T, a.scalars, a.slot, 0.25, `style ${a.F.label}`),
  ];
  // The blocked matmul's grid has M / 64 columns in x, unfolded: past 65,535 of them (M > 4.19 M, 2048x2048 at
  // relu1_1) the folded symmetric product takes over.
  if (N % 4 === 0 && M % 4 === 0 && Math.ceil(M / MATMUL_COLS) <= 65535) {
    // grad += (weight/(NM)) · D F as the blocked matmul into a scratch, then an axpy: 2-3x faster on lavapipe than
    // the symmetric product for N >= 128 (measured 143 vs 383 ms at N=512, M=4096; 360 vs 428 ms at 64x262144).
    const DF = createTensor(gpu, [N * M], `${a.F.label}.style.DF`);
    const flatGrad = { ...a.grad, shape: [N * M] };
    const axpy = vecAxpy(gpu, a.weight * inv, DF, flatGrad);
    return {
      steps: [...head, bindMatmul(gpu, D.buffer, a.F.buffer, DF.buffer, { m: N, n: M, k: N }, `style DF ${a.F.label}`), axpy],
      setWeight: (g, weight) => setUniforms(g, axpy, { n: N * M, mode: 0, i: 0, j: 0, c: weight * inv, b: 0 }),
    };
  }
  const matmul = symMatmul(gpu, D, a.F, a.grad, a.weight * inv, true, 'styleLoss');
  return {
    steps: [...head, matmul],
    setWeight: (g, weight) => setUniforms(g, matmul, { N, M, alpha: weight * inv, accumulate: 1 }),
  };
}

/**
 * L = Σ_c Σ_{i<H-1,j} (x[c,i+1,j] - x[c,i,j])² + Σ_c Σ_{i,j<W-1} (x[c,i,j+1] - x[c,i,j])² ; grad += weight * dL/dx.
 * setWeight rewrites the tv_loss step's uniforms.
 */
export function tvLoss(gpu: Gpu, a: { x: Tensor; grad: Tensor; weight: number; scalars: GPUBuffer; slot: number }): LossSteps {
  if (a.x.shape.length !== 3) throw new PainterlyError(`tvLoss: expected x [C,H,W], got [${a.x.shape}] (${a.x.label})`);
  checkSame('tvLoss', a.x, a.grad);
  checkSlot('tvLoss', a.scalars, a.slot);
  const [, H, W] = a.x.shape;
  const n = a.x.size, T = threadsFor(n);
  const partial = createTensor(gpu, [T], `${a.x.label}.tv.partial`);
  const u = { n, T, H, W, weight: a.weight };
  const main = bind(gpu, tvLossSpec, { tx: a.x.buffer, tgrad: a.grad.buffer, tpartial: partial.buffer }, u,
    Math.ceil(T / 256), `tv_loss ${a.x.label}`);
  return {
    steps: [main, finalStep(gpu, partial, T, a.scalars, a.slot, 1, `tv ${a.x.label}`)],
    setWeight: (g, weight) => setUniforms(g, main, { ...u, weight }),
  };
}
