// Batched row-major matmul (shaders/matmul.wgsl): the GEMM under the Winograd convolution and the style loss, and a
// benchmark yardstick. Its variants are picked per adapter and shape by the autotuner (src/gpu/tune.ts).
import source from '../../shaders/matmul.wgsl';
import subgroupPart from '../../shaders/matmul_subgroup.wgsl';
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { bind, type BufferRef, type KernelSpec, type Step } from '../gpu/kernel.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { shapeBucket, tunedSteps, type Tunable } from '../gpu/tune.ts';

export const MATMUL_ROWS = 8; // ROWS in the shader
/** Columns of one matmul workgroup in the default variant (16 threads x vec4); the style loss checks its grid with it. */
export const MATMUL_COLS = 64;

export const matmulSpec: KernelSpec = {
  file: 'shaders/matmul.wgsl', source, entry: 'matmul',
  bindings: { mp: 'uniform', mm_a: 'read', mm_b: 'read', mm_c: 'read_write' },
  uniforms: { m: 'u32', n: 'u32', k: 'u32', stride_a: 'u32', stride_b: 'u32', stride_c: 'u32' },
};
export const matmulTiledSpec: KernelSpec = { ...matmulSpec, entry: 'matmul_tiled' };
/** 8 rows x 64 columns per workgroup of 16 with A shared through 8-lane subgroup broadcasts ('subgroups' only). */
/** matmul.wgsl with the subgroup kernel appended behind the `enable` directive it needs (first in a module). */
const subgroupSource = `enable subgroups;\n${source}\n${subgroupPart}`;
export const matmulSubgroupSpec: KernelSpec = {
  ...matmulSpec, file: 'shaders/matmul.wgsl + shaders/matmul_subgroup.wgsl', source: subgroupSource, entry: 'matmul_sg',
};
export const matmulTnSpec: KernelSpec = { ...matmulSpec, entry: 'matmul_tn' };

export interface MatmulDims {
  m: number; n: number; k: number;
  /** Number of independent products; matrix b of A starts at b * m * k floats (likewise B, C). */
  batch?: number;
}

/** How a variant runs: which entry, its constants, and the rows x columns of C one workgroup owns. */
interface MatmulVariant { spec: KernelSpec; rows: number; cols: number }
const VARIANTS: Record<string, MatmulVariant> = {
  // Short A (M <= rows: Winograd GEMMs of deep layers at small sizes, where 8-row blocks would mostly compute
  // clamped duplicates): listed first, so they are the default for the shapes they apply to.
  'rows1-wg16': { spec: { ...matmulSpec, constants: { WG: 16, RM: 1 } }, rows: 1, cols: 64 },
  'rows2-wg16': { spec: { ...matmulSpec, constants: { WG: 16, RM: 2 } }, rows: 2, cols: 64 },
  'rows4-wg16': { spec: { ...matmulSpec, constants: { WG: 16, RM: 4 } }, rows: 4, cols: 64 },
  'sg-rows8': { spec: matmulSubgroupSpec, rows: MATMUL_ROWS, cols: 64 },
  'rows8-wg16': { spec: { ...matmulSpec, constants: { WG: 16 } }, rows: MATMUL_ROWS, cols: 64 },
  'rows8-wg32': { spec: { ...matmulSpec, constants: { WG: 32 } }, rows: MATMUL_ROWS, cols: 128 },
  'rows8-wg64': { spec: { ...matmulSpec, constants: { WG: 64 } }, rows: MATMUL_ROWS, cols: 256 },
  'tiled64': { spec: matmulTiledSpec, rows: 64, cols: 64 },
};


function bench(gpu: Gpu, d: MatmulDims, variant: string): { steps: Step[]; destroy(): void } {
  const batch = d.batch ?? 1;
  const mk = (n: number, label: string) => gpu.device.createBuffer({ label, size: Math.max(16, n * 4), usage: GPUBufferUsage.STORAGE });
  const a = mk(batch * d.m * d.k, 'tune.a'), b = mk(batch * d.k * d.n, 'tune.b'), c = mk(batch * d.m * d.n, 'tune.c');
  return {
    steps: [bindVariant(gpu, variant, a, b, c, d, 'tune matmul')],
    destroy: () => { a.destroy(); b.destroy(); c.destroy(); },
  };
}

/**
 * The matmul's variants for the autotuner; the first that applies is the deterministic default: the short-row ones for
 * M <= 4, then the subgroup kernel where 8-lane subgroups exist, then lavapipe's 8-row blocking.
 */
export const matmulTunable: Tunable<MatmulDims> = {
  name: 'matmul',
  source: subgroupSource,
  variants: [
    { id: 'rows1-wg16', note: 'M = 1: one row x 64 columns per workgroup of 16' },
    { id: 'rows2-wg16', note: 'M <= 2: 2 rows x 64 columns per workgroup of 16' },
    { id: 'rows4-wg16', note: 'M <= 4: 4 rows x 64 columns per workgroup of 16' },
    { id: 'sg-rows8', note: '8 rows x 64 columns per workgroup of 16, A loaded once per 8-lane subgroup and broadcast (subgroups)' },
    { id: 'rows8-wg16', note: '8 rows x 64 columns per workgroup of 16, no shared memory' },
    { id: 'rows8-wg32', note: '8 rows x 128 columns per workgroup of 32, no shared memory' },
    { id: 'rows8-wg64', note: '8 rows x 256 columns per workgroup of 64, no shared memory' },
    { id: 'tiled64', note: '64x64 block per 16x16 workgroup, 4x4 per thread, 16-k tiles in shared memory' },
  ],
  shapeClass: (d) => `m${shapeBucket(d.m, 65536)}.n${shapeBucket(d.n, 65536)}.k${shapeBucket(d.k, 4096)}.b${shapeBucket(d.batch ?? 1, 64)}`,
  applies: (gpu, d, v) => {
    if (Math.ceil(d.m / VARIANTS[v].rows) > 65535) return false;
    if (VARIANTS[v].rows < MATMUL_ROWS && d.m > VARIANTS[v].rows) return false;   // the short-A variants
    if (v === 'sg-rows8') return gpu.subgroups8;
    if (v === 'tiled64') return gpu.limits.maxComputeInvocationsPerWorkgroup >= 256 && gpu.limits.maxComputeWorkgroupStorageSize >= 8192;
    return (VARIANTS[v].spec.constants?.WG ?? 0) <= gpu.limits.maxComputeInvocationsPerWorkgroup;
  },
  bench,
  flops: (d) => 2 * d.m * d.n * d.k * (d.batch ?? 1),
  standard: [
    { label: 'plain 1024', dims: { m: 1024, n: 1024, k: 1024 } },
    // The Winograd GEMMs of VGG19 at 256x256: 36 products [tiles, Cin] x [Cin, Cout].
    { label: 'wino conv1_2 @256', dims: { m: 4096, n: 64, k: 64, batch: 36 } },
    { label: 'wino conv2_1 @128', dims: { m: 1024, n: 128, k: 64, batch: 36 } },
    { label: 'wino conv2_2 @128', dims: { m: 1024, n: 128, k: 128, batch: 36 } },
    { label: 'wino conv3_x @64', dims: { m: 256, n: 256, k: 256, batch: 36 } },
    { label: 'wino conv4_x @32', dims: { m: 64, n: 512, k: 512, batch: 36 } },
    { label: 'wino conv5_x @16', dims: { m: 16, n: 512, k: 512, batch: 36 } },
    // At 64x64: conv4_x (8x8, 4 tiles) and conv5_1 (4x4, one tile).
    { label: 'wino conv4_x @8', dims: { m: 4, n: 512, k: 512, batch: 36 } },
    { label: 'wino conv5_1 @4', dims: { m: 1, n: 512, k: 512, batch: 36 } },
    // The style loss's D F products, [N, N] x [N, M].
    { label: 'style DF relu1_1 @256', dims: { m: 64, n: 65536, k: 64 } },
    { label: 'style DF relu3_1 @256', dims: { m: 256, n: 4096, k: 256 } },
  ],
};

function bindVariant(gpu: Gpu, variant: string, a: BufferRef, b: BufferRef, c: BufferRef, d: MatmulDims, label: string): Step {
  const v = VARIANTS[variant];
  const batch = d.batch ?? 1;
  return bind(gpu, v.spec, { mm_a: a, mm_b: b, mm_c: c },
    { m: d.m, n: d.n, k: d.k, stride_a: d.m * d.k, stride_b: d.k * d.n, stride_c: d.m * d.n },
    [Math.ceil(d.n / v.cols), Math.ceil(d.m / v.rows), batch], label);
}

/** Largest N whose column grid stays within 65,535 workgroups in x for every variant (MATMUL_COLS is the narrowest). */
export const MATMUL_MAX_N = 65535 * MATMUL_COLS;

/** Binds C[b] = A[b] B[b] on raw buffers (row-major; K and N multiples of 4), in the variant tuned for this shape. */
export function bindMatmul(gpu: Gpu, a: BufferRef, b: BufferRef, c: BufferRef, d: MatmulDims, label = 'matmul'): Step {
  if (d.k % 4 !== 0 || d.n % 4 !== 0 || d.m < 1 || d.k < 4 || d.n < 4) {
    throw new PainterlyError(`${label}: matmul needs K and N multiples of 4 and M >= 1, got M ${d.m} N ${d.n} K ${d.k}`);
  }
  if (d.n > MATMUL_MAX_N) throw new PainterlyError(`${label}: matmul supports N up to ${MATMUL_MAX_N}, got ${d.n}`);
  return tunedSteps(gpu, matmulTunable, d, (v) => [bindVariant(gpu, v, a, b, c, d, label)])[0];
}

/** c = a b for tensors a [M,K], b [K,N], c [M,N] (K and N multiples of 4). */
export function matmul(gpu: Gpu, a: Tensor, b: Tensor, c: Tensor): Step {
  const [m, k] = a.shape;
  const [k2, n] = b.shape;
  if (a.shape.length !== 2 || b.shape.length !== 2 || k !== k2 || c.size !== m * n) {
    throw new PainterlyError(`matmul: expected a [M,K], b [K,N], c [M,N], got [${a.shape}], [${b.shape}], [${c.shape}]`);
  }
  return bindMatmul(gpu, a.buffer, b.buffer, c.buffer, { m, n, k }, `matmul ${c.label}`);
}

/**
 * Binds C[b] = A[b]^T B[b] (or C[b] += ... with `accumulate`) on raw buffers: A [K,M], B [K,N], C [M,N] row-major,
 * M and N multiples of 4 (the Winograd weight gradient's GEMMs, K = tiles).
 */
export function bindMatmulTN(gpu: Gpu, a: BufferRef, b: BufferRef, c: BufferRef, d: MatmulDims, accumulate: boolean, label = 'matmul_tn'): Step {
  if (d.m % 4 !== 0 || d.n % 4 !== 0 || d.k < 1 || d.m < 4 || d.n < 4) {
    throw new PainterlyError(`${label}: matmul_tn needs M and N multiples of 4 and K >= 1, got M ${d.m} N ${d.n} K ${d.k}`);
  }
  const batch = d.batch ?? 1;
  return bind(gpu, { ...matmulTnSpec, constants: { WG: 16, ACCUMULATE: accumulate ? 1 : 0 } }, { mm_a: a, mm_b: b, mm_c: c },
    { m: d.m, n: d.n, k: d.k, stride_a: d.m * d.k, stride_b: d.k * d.n, stride_c: d.m * d.n },
    [Math.ceil(d.n / 64), Math.ceil(d.m / MATMUL_ROWS), batch], label);
}
