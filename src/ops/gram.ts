// Gram matrix G = scale * F Fᵀ of features F (float32 [C,H,W], batch 1, viewed as N = C rows x M = H*W columns),
// its backward dF = (dG + dGᵀ) F, and the symmetric product Y = alpha * S X (+ Y) they share with the style loss
// (shaders/gram.wgsl). The M reduction is split into K chunks (partials) summed in a fixed order: deterministic.
import source from '../../shaders/gram.wgsl';
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { bind, fold, type KernelSpec, type Step } from '../gpu/kernel.ts';
import { createTensor, type Tensor } from '../gpu/tensor.ts';

const file = 'shaders/gram.wgsl';
/** Rows per gram_partial / sym_matmul workgroup (fixed in the shader). */
const ROWS = 8;
/** Columns (lanes) per gram_partial workgroup: one SIMD pass on lavapipe, and the finest symmetric skipping. */
const JW = 8;

function gramPartialSpec(aligned: boolean, jw: number): KernelSpec {
  return {
    file, source, entry: 'gram_partial', constants: { ALIGNED: aligned ? 1 : 0, JW: jw },
    bindings: { gp: 'uniform', F: 'read', part: 'read_write' },
    uniforms: { N: 'u32', M: 'u32', M4: 'u32', chunk4: 'u32', njb: 'u32' },
  };
}
export const gramReduceSpec: KernelSpec = {
  file, source, entry: 'gram_reduce', bindings: { rp: 'uniform', rpart: 'read', G: 'read_write' },
  uniforms: { N: 'u32', K: 'u32', scale: 'f32' },
};
export const gramSymmetrizeSpec: KernelSpec = {
  file, source, entry: 'gram_symmetrize', bindings: { sp: 'uniform', sx: 'read', ss: 'read_write' }, uniforms: { N: 'u32' },
};
export const symMatmulSpec: KernelSpec = {
  file, source, entry: 'sym_matmul', bindings: { mm: 'uniform', S: 'read', X: 'read', Y: 'read_write' },
  uniforms: { N: 'u32', M: 'u32', alpha: 'f32', accumulate: 'u32' },
};

/** N (rows) and M (columns) of features F viewed as [C, H*W]. */
export function featureDims(what: string, F: Tensor): [number, number] {
  if (F.shape.length < 1 || F.size === 0) throw new PainterlyError(`${what}: expected non-empty features [C,H,W], got [${F.shape}] (${F.label})`);
  return [F.shape[0], F.size / F.shape[0]];
}

function checkSquare(what: string, t: Tensor, N: number): void {
  if (t.size !== N * N || (t.shape.length === 2 && (t.shape[0] !== N || t.shape[1] !== N))) {
    throw new PainterlyError(`${what}: expected [${N},${N}] for ${N} channels, got [${t.shape}] (${t.label})`);
  }
}

/** Chunks the M reduction is split into: enough workgroups for every core, chunks of at least 128 vec4s, partials within the binding limit. */
export function gramChunks(gpu: Gpu, N: number, M: number, jw = JW): { K: number; chunk4: number; njb: number } {
  const M4 = Math.ceil(M / 4);
  const njb = Math.ceil(N / jw);
  let pairs = 0;
  for (let ib = 0; ib < Math.ceil(N / ROWS); ib++) for (let jb = 0; jb < njb; jb++) if ((jb + 1) * jw > ib * ROWS) pairs++;
  const fit = Math.floor(gpu.maxBindingBytes / (4 * N * N));
  let K = Math.max(1, Math.min(Math.ceil(M4 / 128), Math.ceil(128 / pairs), fit, 65535));
  const chunk4 = Math.ceil(M4 / K);
  K = Math.ceil(M4 / chunk4);
  return { K, chunk4, njb };
}

/**
 * Steps for G = scale * F Fᵀ with scratch allocated now (reused by every encode). `G` must hold N*N floats.
 */
function gramSteps(gpu: Gpu, F: Tensor, G: Tensor, scale: number, what: string): Step[] {
  const [N, M] = featureDims(what, F);
  checkSquare(what, G, N);
  const jw = JW;
  const { K, chunk4, njb } = gramChunks(gpu, N, M, jw);
  const part = createTensor(gpu, [K, N, N], `${G.label}.partials`);
  const aligned = M % 4 === 0;
  const [bx, bz] = fold(Math.ceil(N / ROWS) * njb); // blocks fold into x and z (y holds the chunks)
  return [
    bind(gpu, gramPartialSpec(aligned, jw), { F: F.buffer, part: part.buffer },
      { N, M, M4: Math.ceil(M / 4), chunk4, njb }, [bx, K, bz], `gram_partial ${G.label}`),
    bind(gpu, gramReduceSpec, { rpart: part.buffer, G: G.buffer }, { N, K, scale }, Math.ceil((N * N) / 64), `gram_reduce ${G.label}`),
  ];
}

/** G = scale * F Fᵀ  (F [C,H,W] as [N = C, M = H*W]; G [N,N], exactly symmetric). Overwrites G. */
export function gram(gpu: Gpu, F: Tensor, G: Tensor, scale = 1): Step[] {
  return gramSteps(gpu, F, G, scale, 'gram');
}

/**
 * Y = alpha * S X, or Y += alpha * S X when `accumulate`; S [N,N] must be symmetric (it is read transposed),
 * X and Y [N, M]. `alpha` lives in the step's uniforms: change it with setUniforms(gpu, step, {...}).
 */
export function symMatmul(gpu: Gpu, S: Tensor, X: Tensor, Y: Tensor, alpha: number, accumulate: boolean, what = 'symMatmul'): Step {
  const [N, M] = featureDims(what, X);
  checkSquare(what, S, N);
  if (Y.size !== X.size) throw new PainterlyError(`${what}: expected output of ${X.size} values like [${X.shape}], got [${Y.shape}] (${Y.label})`);
  const [my, mz] = fold(Math.ceil(M / 64)); // m blocks fold into y and z
  return bind(gpu, symMatmulSpec, { S: S.buffer, X: X.buffer, Y: Y.buffer }, { N, M, alpha, accumulate: accumulate ? 1 : 0 },
    [Math.ceil(N / ROWS), my, mz], `sym_matmul ${Y.label}`);
}

/** dF = (dG + dGᵀ) F, the gradient through G = F Fᵀ (scale 1; scale dG yourself otherwise). Overwrites dF. */
export function gramBackward(gpu: Gpu, F: Tensor, dG: Tensor, dF: Tensor): Step[] {
  const [N] = featureDims('gramBackward', F);
  checkSquare('gramBackward', dG, N);
  const S = createTensor(gpu, [N, N], `${dF.label}.dGsym`);
  return [
    bind(gpu, gramSymmetrizeSpec, { sx: dG.buffer, ss: S.buffer }, { N }, Math.ceil((N * N) / 64), `gram_symmetrize ${dF.label}`),
    symMatmul(gpu, S, F, dF, 1, false, 'gramBackward'),
  ];
}

export { gramSteps };
