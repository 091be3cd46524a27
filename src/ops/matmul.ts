// Batched row-major matmul (shaders/matmul.wgsl): the GEMM under the Winograd convolution, and a benchmark yardstick.
import source from '../../shaders/matmul.wgsl';
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { bind, type BufferRef, type KernelSpec, type Step } from '../gpu/kernel.ts';
import type { Tensor } from '../gpu/tensor.ts';

export const MATMUL_ROWS = 8; // ROWS in the shader
export const MATMUL_COLS = 64; // 16 threads x vec4

export const matmulSpec: KernelSpec = {
  file: 'shaders/matmul.wgsl', source, entry: 'matmul',
  bindings: { mp: 'uniform', mm_a: 'read', mm_b: 'read', mm_c: 'read_write' },
  uniforms: { m: 'u32', n: 'u32', k: 'u32', stride_a: 'u32', stride_b: 'u32', stride_c: 'u32' },
};

export interface MatmulDims {
  m: number; n: number; k: number;
  /** Number of independent products; matrix b of A starts at b * m * k floats (likewise B, C). */
  batch?: number;
}

/** Binds C[b] = A[b] B[b] on raw buffers (row-major; K and N multiples of 4). */
export function bindMatmul(gpu: Gpu, a: BufferRef, b: BufferRef, c: BufferRef, d: MatmulDims, label = 'matmul'): Step {
  const batch = d.batch ?? 1;
  if (d.k % 4 !== 0 || d.n % 4 !== 0 || d.m < 1 || d.k < 4 || d.n < 4) {
    throw new PainterlyError(`${label}: matmul needs K and N multiples of 4 and M >= 1, got M ${d.m} N ${d.n} K ${d.k}`);
  }
  return bind(gpu, matmulSpec, { mm_a: a, mm_b: b, mm_c: c },
    { m: d.m, n: d.n, k: d.k, stride_a: d.m * d.k, stride_b: d.k * d.n, stride_c: d.m * d.n },
    [Math.ceil(d.n / MATMUL_COLS), Math.ceil(d.m / MATMUL_ROWS), batch], label);
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
