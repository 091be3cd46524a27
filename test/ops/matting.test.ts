import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PainterlyError } from '../../src/gpu/device.ts';
import { run } from '../../src/gpu/kernel.ts';
import { createTensor, poison, readBuffers, readTensor, uploadTensor } from '../../src/gpu/tensor.ts';
import { createScalars } from '../../src/ops/loss.ts';
import { MATTING_EPS, mattingGuide, mattingSteps, mattingWindowStats } from '../../src/ops/matting.ts';
import * as ref from '../../src/reference/matting.ts';
import { t64 } from '../../src/reference/tensor.ts';
import { assertClose, checkGradient, nextSeed, randArray, rng, testGpu } from '../helpers.ts';

const test = suite('matting laplacian');
const EPS = MATTING_EPS;

function image(H: number, W: number, seed: number) {
  return t64([3, H, W], randArray(3 * H * W, seed, 0, 1));
}

test('matrix-free float64 product equals the explicitly assembled sparse M (5x4, 7x6, 3x3, 2x5)', () => {
  for (const [H, W] of [[5, 4], [7, 6], [3, 3], [2, 5]]) {
    const I = image(H, W, nextSeed());
    const v = t64([3, H, W], randArray(3 * H * W, nextSeed()));
    const M = ref.mattingLaplacianSparse(I, EPS);
    const n = H * W;
    const want = new Float64Array(3 * n);
    for (let c = 0; c < 3; c++) want.set(ref.sparseMatVec(M, v.data.subarray(c * n, (c + 1) * n)), c * n);
    assertClose(ref.mattingProduct(I, v, EPS).data, want, 1e-9, `product ${H}x${W}`, 1);
    if (H < 3 || W < 3) assert.ok(want.every((x) => x === 0), `${H}x${W} has no window: M = 0`);
  }
});

test('sparse M: symmetric, M 1 = 0, positive semi-definite, annihilates the guide (7x6)', () => {
  const H = 7, W = 6, n = H * W;
  const I = image(H, W, nextSeed());
  const M = ref.mattingLaplacianSparse(I, EPS);
  let big = 0;
  M.rows.forEach((row, i) => row.forEach((v, j) => {
    big = Math.max(big, Math.abs(v));
    assert.ok(Math.abs(v - (M.rows[j].get(i) ?? NaN)) <= 1e-9 * Math.max(1, Math.abs(v)), `M[${i},${j}] symmetric`);
  }));
  assert.ok(big > 0.5, 'M is not trivially zero');
  assertClose(ref.sparseMatVec(M, new Float64Array(n).fill(1)), new Float64Array(n), 1e-9, 'M 1', 1);
  // Each guide channel is locally affine in the guide: M I_c = ε-small.
  for (let c = 0; c < 3; c++) assertClose(ref.sparseMatVec(M, I.data.subarray(c * n, (c + 1) * n)), new Float64Array(n), 1e-4, `M I_${c}`, 1);
  for (let t = 0; t < 5; t++) {
    const v = randArray(n, nextSeed());
    const Mv = ref.sparseMatVec(M, v);
    assert.ok(v.reduce((s, x, i) => s + x * Mv[i], 0) >= -1e-9, 'vᵀMv >= 0');
  }
});

test('regulariser gradient 2 M V matches finite differences', () => {
  const H = 6, W = 7;
  const I = image(H, W, nextSeed());
  const V = t64([3, H, W], randArray(3 * H * W, nextSeed(), 0, 1));
  const { grad } = ref.mattingEnergy(I, V, EPS);
  // ε = 1e-7 makes M's entries large where a window's colours are nearly collinear; a larger ε keeps the check tight.
  const f = (x: Float64Array) => ref.mattingEnergy(I, t64(V.shape, x), 1e-3).energy;
  checkGradient(f, V.data.slice(), ref.mattingEnergy(I, V, 1e-3).grad.data, 'matting energy (eps 1e-3)', { samples: 40 });
  const f7 = (x: Float64Array) => ref.mattingEnergy(I, t64(V.shape, x), EPS).energy;
  checkGradient(f7, V.data.slice(), grad.data, 'matting energy (eps 1e-7)', { samples: 40, h: 1e-5, rtol: 1e-4 });
});

test('window statistics: L⁻ᵀ L⁻¹ = (Σ + ε/9 I)⁻¹', () => {
  const H = 5, W = 6, n = H * W;
  const I = image(H, W, nextSeed());
  const s = mattingWindowStats(I.data, H, W, 1e-3);
  for (let y = 1; y < H - 1; y++) for (let x = 1; x < W - 1; x++) {
    const k = y * W + x;
    const px: number[] = [];
    for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) px.push(k + dy * W + dx);
    const mu = [0, 1, 2].map((c) => px.reduce((a, j) => a + I.data[c * n + j], 0) / 9);
    assertClose([s[9 * k], s[9 * k + 1], s[9 * k + 2]], mu, 1e-6, 'mu');
    const S: number[] = [];
    for (let u = 0; u < 3; u++) for (let v = 0; v < 3; v++) S.push(px.reduce((a, j) => a + I.data[u * n + j] * I.data[v * n + j], 0) / 9 - mu[u] * mu[v] + (u === v ? 1e-3 / 9 : 0));
    const Li = [[s[9 * k + 3], 0, 0], [s[9 * k + 4], s[9 * k + 5], 0], [s[9 * k + 6], s[9 * k + 7], s[9 * k + 8]]];
    const D: number[] = [];
    for (let u = 0; u < 3; u++) for (let v = 0; v < 3; v++) D.push(Li[0][u] * Li[0][v] + Li[1][u] * Li[1][v] + Li[2][u] * Li[2][v]);
    assertClose(D, ref.inverse3(S), 1e-5, `Δ at ${y},${x}`);
  }
  assert.ok(s.subarray(0, 9).every((v) => v === 0), 'border centres are zero');
});

async function gpuProduct(I: Float64Array, v: Float64Array, H: number, W: number, eps = EPS) {
  const gpu = await testGpu();
  const g = mattingGuide(gpu, { data: I, width: W, height: H }, eps);
  const gv = uploadTensor(gpu, v, [3, H, W], 'v');
  const out = createTensor(gpu, [3, H, W], 'Mv');
  poison(gpu, out);
  const m = mattingSteps(gpu, g, { v: gv, out });
  run(gpu, m.steps);
  const got = await readTensor(gpu, out);
  m.destroy(); g.destroy();
  return got;
}

// Tiny, no-window, odd, past 256 threads and past T = n/16 invocations per pixel stride.
for (const [H, W] of [[5, 4], [7, 6], [1, 1], [2, 9], [3, 3], [37, 29], [64, 70], [130, 67]]) {
  test(`GPU M·v matches float64 at ${H}x${W} (eps 1e-7)`, async () => {
    const I = randArray(3 * H * W, nextSeed(), 0, 1), v = randArray(3 * H * W, nextSeed());
    const want = ref.mattingProduct(t64([3, H, W], I), t64([3, H, W], v), EPS);
    assertClose(await gpuProduct(I, v, H, W), want.data, 2e-5, `Mv ${H}x${W}`, 1);
  });
}

test('GPU M·v on a photograph-like guide: 8-bit values, flat regions, grey (singular Σ) areas, eps 1e-7', async () => {
  const H = 40, W = 45, n = H * W;
  const r = rng(nextSeed());
  const I = new Float64Array(3 * n);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    const i = y * W + x;
    const grey = Math.round(255 * (0.3 + 0.4 * x / W)) / 255;
    for (let c = 0; c < 3; c++) {
      // Left third flat, middle grey ramp (R = G = B), right third coloured with noise.
      I[c * n + i] = Math.fround(x < W / 3 ? 0.5 : x < (2 * W) / 3 ? grey : Math.round(255 * (0.2 + 0.2 * c + 0.3 * r())) / 255);
    }
  }
  const v = randArray(3 * n, nextSeed(), 0, 1);
  const want = ref.mattingProduct(t64([3, H, W], I), t64([3, H, W], v), EPS);
  assertClose(await gpuProduct(I, v, H, W), want.data, 1e-3, 'Mv photo-like', 1);
});

test('as the loss: out += 2λ M v accumulates, the scalar is Σ vᵀ M v', async () => {
  const gpu = await testGpu();
  const H = 19, W = 23, n = H * W, lambda = 0.37;
  const I = randArray(3 * n, nextSeed(), 0, 1), v = randArray(3 * n, nextSeed(), 0, 1), g0 = randArray(3 * n, nextSeed());
  const want = ref.mattingEnergy(t64([3, H, W], I), t64([3, H, W], v), EPS);
  const g = mattingGuide(gpu, { data: I, width: W, height: H });
  const gv = uploadTensor(gpu, v, [3, H, W], 'v'), grad = uploadTensor(gpu, g0, [3, H, W], 'grad');
  const scalars = createScalars(gpu, 3);
  gpu.device.queue.writeBuffer(scalars, 0, new Float32Array([NaN, NaN, NaN, NaN]));
  const m = mattingSteps(gpu, g, { v: gv, out: grad, scale: 2 * lambda, accumulate: true, scalars, slot: 2 });
  run(gpu, m.steps);
  assertClose(await readTensor(gpu, grad), g0.map((x, i) => x + lambda * want.grad.data[i]), 2e-5, 'grad', 1);
  const [s] = await readBuffers(gpu, [{ buffer: scalars, bytes: 12 }]);
  assertClose([s[2]], [want.energy], 1e-4, 'energy');
  // setScale takes effect on the next submit; the result is bit-identical run to run.
  m.setScale(gpu, 0);
  run(gpu, m.steps);
  const a = await readTensor(gpu, grad);
  run(gpu, m.steps);
  assert.equal([...await readTensor(gpu, grad)], [...a], 'scale 0 leaves grad unchanged');
  m.destroy(); g.destroy();
});

test('bad arguments are one-line PainterlyErrors', async () => {
  const gpu = await testGpu();
  const g = mattingGuide(gpu, { data: new Float32Array(3 * 20), width: 5, height: 4 });
  const one = (re: RegExp) => (e: Error) => e instanceof PainterlyError && re.test(e.message) && !e.message.includes('\n');
  const v = createTensor(gpu, [3, 4, 5], 'v'), bad = createTensor(gpu, [3, 5, 5], 'bad');
  assert.throws(() => mattingSteps(gpu, g, { v, out: bad }), one(/expected bad of 3x4x5/));
  assert.throws(() => mattingSteps(gpu, g, { v, out: v }), one(/different buffers/));
  assert.throws(() => mattingGuide(gpu, { data: new Float32Array(5), width: 5, height: 4 }), one(/expected 60 values/));
  assert.throws(() => mattingSteps(gpu, g, { v, out: createTensor(gpu, [3, 4, 5], 'o'), scalars: createScalars(gpu, 1), slot: 4 }), one(/slot 4/));
  g.destroy();
});

test.run();
