// Gram matrix G = scale * F Fᵀ of features F (float32 [C,H,W], batch 1, viewed as N = C rows x M = H*W columns),
// its backward dF = (dG + dGᵀ) F, and the symmetric product Y = alpha * S X (+ Y) they share with the style loss
// (shaders/gram.wgsl). The M reduction is split into K chunks (partials) summed in a fixed order: deterministic.
import source from '../../shaders/gram.wgsl';
import subgroupPart from '../../shaders/gram_subgroup.wgsl';
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { bind, fold, type KernelSpec, type Step } from '../gpu/kernel.ts';
import { createTensor, type Tensor } from '../gpu/tensor.ts';
import { shapeBucket, tunedSteps, type Tunable } from '../gpu/tune.ts';

const file = 'shaders/gram.wgsl';
/** gram.wgsl with the subgroup kernel appended behind the `enable` directive it needs (first in a module). */
const subgroupSource = `enable subgroups;\n${source}\n${subgroupPart}`;
/** Rows per sym_matmul workgroup (fixed in the shader). */
const ROWS = 8;

function gramPartialSpec(entry: string, aligned: boolean, jw?: number, rq?: number): KernelSpec {
  const sg = entry === 'gram_sg';
  return {
    file: sg ? 'shaders/gram.wgsl + shaders/gram_subgroup.wgsl' : file, source: sg ? subgroupSource : source, entry, constants: { ALIGNED: aligned ? 1 : 0, ...(jw ? { JW: jw } : {}), ...(rq ? { RQ: rq } : {}) },
    bindings: { gp: 'uniform', F: 'read', part: 'read_write' },
    uniforms: { N: 'u32', M: 'u32', M4: 'u32', chunk4: 'u32', njb: 'u32' },
  };
}

/** A gram_partial variant: its entry, lanes, and the rows x columns of G one workgroup owns. */
interface GramVariant { entry: string; jw?: number; rq?: number; rows: number; cols: number }
const VARIANTS: Record<string, GramVariant> = {
  'sg-quad': { entry: 'gram_sg', rows: 8, cols: 32 },
  'quad-lanes8': { entry: 'gram_quad', jw: 8, rows: 8, cols: 32 },
  'quad-lanes4': { entry: 'gram_quad', jw: 4, rows: 8, cols: 16 },
  'quad4-lanes8': { entry: 'gram_quad', jw: 8, rq: 4, rows: 4, cols: 32 },
  'rows8-lanes8': { entry: 'gram_partial', jw: 8, rows: 8, cols: 8 },
  'tiled64': { entry: 'gram_tiled', rows: 64, cols: 64 },
};
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

/**
 * Chunks the M reduction is split into: enough workgroups for every core, chunks of at least 128 vec4s, partials
 * within the binding limit. `variant` sets the blocks (default: the default variant's).
 */
export function gramChunks(gpu: Gpu, N: number, M: number, variant = 'quad-lanes8'): { K: number; chunk4: number; njb: number } {
  const { rows, cols } = VARIANTS[variant];
  const M4 = Math.ceil(M / 4);
  const njb = Math.ceil(N / cols);
  let pairs = 0;
  for (let ib = 0; ib < Math.ceil(N / rows); ib++) for (let jb = 0; jb < njb; jb++) if ((jb + 1) * cols > ib * rows) pairs++;
  const fit = Math.floor(gpu.maxBindingBytes / (4 * N * N));
  let K = Math.max(1, Math.min(Math.ceil(M4 / 128), Math.ceil(128 / pairs), fit, 65535));
  const chunk4 = Math.ceil(M4 / K);
  K = Math.ceil(M4 / chunk4);
  return { K, chunk4, njb };
}

export interface GramDims { n: number; m: number }


/**
 * The Gram's variants for the autotuner (src/gpu/tune.ts); the first that applies is the deterministic default (the
 * subgroup kernel where 8-lane subgroups exist).
 */
export const gramTunable: Tunable<GramDims> = {
  name: 'gram',
  source: subgroupSource,
  variants: [
    { id: 'sg-quad', note: '8 rows x 32 columns per workgroup of 8, the rows loaded once per subgroup and broadcast (subgroups)' },
    { id: 'quad-lanes8', note: '8 rows x 32 columns per workgroup of 8, 4 columns per lane, no shared memory' },
    { id: 'quad-lanes4', note: '8 rows x 16 columns per workgroup of 4, 4 columns per lane, no shared memory' },
    { id: 'quad4-lanes8', note: '4 rows x 32 columns per workgroup of 8, 4 columns per lane, no shared memory' },
    { id: 'rows8-lanes8', note: '8 rows x 8 columns per workgroup of 8, one column per lane (the kernel before tuning)' },
    { id: 'tiled64', note: '64x64 block per 16x16 workgroup, 4x4 per thread, 16-m tiles in shared memory' },
  ],
  shapeClass: (d) => `n${shapeBucket(d.n, 4096)}.m${shapeBucket(d.m, 1 << 24)}`,
  applies: (gpu, d, v) => {
    const { rows, cols } = VARIANTS[v];
    if (Math.ceil(d.n / rows) * Math.ceil(d.n / cols) > 65535 * 65535) return false;
    if (v === 'sg-quad') return gpu.subgroups8;
    if (v === 'tiled64') return gpu.limits.maxComputeInvocationsPerWorkgroup >= 256 && gpu.limits.maxComputeWorkgroupStorageSize >= 8192;
    return true;
  },
  bench: (gpu, d, v) => {
    const F = createTensor(gpu, [d.n, d.m], 'tune.F');
    const G = createTensor(gpu, [d.n, d.n], 'tune.G');
    const c = gpu.collect();
    const steps = gramVariantSteps(gpu, v, F, G, 1, 'tune gram');
    c.stop();
    return { steps, destroy: () => { c.destroy(); F.buffer.destroy(); G.buffer.destroy(); } };
  },
  flops: (d) => 2 * d.n * d.n * d.m,
  standard: [
    { label: 'relu1_1 @256', dims: { n: 64, m: 65536 } },
    { label: 'relu2_1 @256', dims: { n: 128, m: 16384 } },
    { label: 'relu3_1 @256', dims: { n: 256, m: 4096 } },
    { label: 'relu4_1 @256', dims: { n: 512, m: 1024 } },
    { label: 'relu5_1 @256', dims: { n: 512, m: 256 } },
  ],
};

function gramVariantSteps(gpu: Gpu, variant: string, F: Tensor, G: Tensor, scale: number, what: string): Step[] {
  const [N, M] = featureDims(what, F);
  const v = VARIANTS[variant];
  const { K, chunk4, njb } = gramChunks(gpu, N, M, variant);
  const part = createTensor(gpu, [K, N, N], `${G.label}.partials`);
  const aligned = M % 4 === 0;
  const [bx, bz] = fold(Math.ceil(N / v.rows) * njb); // blocks fold into x and z (y holds the chunks)
  return [
    bind(gpu, gramPartialSpec(v.entry, aligned, v.jw, v.rq), { F: F.buffer, part: part.buffer },
      { N, M, M4: Math.ceil(M / 4), chunk4, njb }, [bx, K, bz], `${v.entry} ${G.label}`),
    bind(gpu, gramReduceSpec, { rpart: part.buffer, G: G.buffer }, { N, K, scale }, Math.ceil((N * N) / 64), `gram_reduce ${G.label}`),
  ];
}

/**
 * Steps for G = scale * F Fᵀ with scratch allocated now (reused by every encode). `G` must hold N*N floats.
 */
function gramSteps(gpu: Gpu, F: Tensor, G: Tensor, scale: number, what: string): Step[] {
  const [N, M] = featureDims(what, F);
  checkSquare(what, G, N);
  return tunedSteps(gpu, gramTunable, { n: N, m: M }, (v) => gramVariantSteps(gpu, v, F, G, scale, what));
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
