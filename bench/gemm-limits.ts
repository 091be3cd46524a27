// What bounds the GEMM under the Winograd convolutions (72-75 % of a VGG19 evaluation, bench/profile.ts): the matmul
// kernel taken apart (bench/shaders/gemm-limits.wgsl: full, loads only, B or A loads only, FMAs only; times in ms) at the Winograd GEMM shapes of
// VGG19, interleaved over rounds, best round each. If `full` ~ `loads_only` + `fma_only`, both count; if it sits near
// one of them, that one is the limit. Run it alone: node scripts/run-ts.mjs bench/gemm-limits.ts
import source from './shaders/gemm-limits.wgsl';
import { openDawnGpu } from '../src/gpu/dawn.ts';
import { bind, submitTimed, type KernelSpec } from '../src/gpu/kernel.ts';
import { table } from './harness.ts';

const rounds = Number(process.env.ROUNDS ?? 5);
const gpu = await openDawnGpu();
const spec = (entry: string): KernelSpec => ({
  file: 'bench/shaders/gemm-limits.wgsl', source, entry,
  bindings: { mp: 'uniform', mm_a: 'read', mm_b: 'read', mm_c: 'read_write' },
  uniforms: { m: 'u32', n: 'u32', k: 'u32', stride_a: 'u32', stride_b: 'u32', stride_c: 'u32' },
});
const shapes: [string, number, number, number, number][] = [
  ['wino conv1_2 @256', 4096, 64, 64, 36], ['wino conv2_2 @128', 1024, 128, 128, 36], ['wino conv3_x @64', 256, 256, 256, 36],
  ['wino conv4_x @32', 64, 512, 512, 36], ['plain 1024', 1024, 1024, 1024, 1],
];
const entries = ['full', 'loads_only', 'b_only', 'a_only', 'fma_only', 'full_inline', 'full_2col', 'a_only_varying', 'full_sg'];
const cases = shapes.flatMap(([label, m, n, k, batch]) => {
  const buf = (floats: number) => gpu.device.createBuffer({ size: floats * 4, usage: GPUBufferUsage.STORAGE });
  const a = buf(batch * m * k), b = buf(batch * k * n), c = buf(batch * m * n);
  return entries.map((entry) => ({
    label, entry, flops: 2 * m * n * k * batch,
    steps: [bind(gpu, spec(entry), { mm_a: a, mm_b: b, mm_c: c },
      { m, n, k, stride_a: m * k, stride_b: k * n, stride_c: m * n },
      [Math.ceil(n / (entry === 'full_2col' ? 128 : 64)), Math.ceil(m / 8), batch], entry)],
  }));
});
const best = new Map<string, number>();
for (const c of cases) await submitTimed(gpu, c.steps, 1);
for (let r = 0; r < rounds; r++) {
  for (const c of cases) {
    const t = await submitTimed(gpu, c.steps, 3) / 3;
    const key = `${c.label}|${c.entry}`;
    best.set(key, Math.min(best.get(key) ?? Infinity, t));
  }
}
console.log(`${gpu.describe()}; best of ${rounds} interleaved rounds\n`);
console.log(table(['shape', 'full ms', 'loads only', 'B loads only', 'A loads only', 'A loads, per-lane rows', 'FMAs only', 'full, inline rows', '8x2 cols', 'subgroup A', 'full GFLOP/s', 'FMAs-only GFLOP/s', 'inline GFLOP/s', '8x2 GFLOP/s', 'subgroup GFLOP/s'],
  shapes.map(([label, m, n, k, batch]) => {
    const [f, l, bo, ao, a, fi, f2, av, sg] = entries.map((e) => best.get(`${label}|${e}`)!);
    const flops = 2 * m * n * k * batch;
    return [label, ...[f, l, bo, ao, av, a, fi, f2, sg].map((t) => (t * 1e3).toFixed(1)), ...[f, a, fi, f2, sg].map((t) => (flops / t / 1e9).toFixed(1))];
  })));
gpu.destroy();
process.exit(0);
