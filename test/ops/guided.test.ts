import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PainterlyError } from '../../src/gpu/device.ts';
import { run } from '../../src/gpu/kernel.ts';
import { createTensor, poison, readTensor, uploadTensor } from '../../src/gpu/tensor.ts';
import { boxMeanSteps, guidedFilter } from '../../src/ops/guided.ts';
import * as ref from '../../src/reference/guided.ts';
import { t64 } from '../../src/reference/tensor.ts';
import { assertClose, nextSeed, randArray, rng, testGpu } from '../helpers.ts';

const test = suite('guided filter');

async function gpuFilter(I: Float64Array, p: Float64Array, H: number, W: number, r: number, eps: number): Promise<Float32Array> {
  const gpu = await testGpu();
  const gI = uploadTensor(gpu, I, [3, H, W], 'I'), gp = uploadTensor(gpu, p, [3, H, W], 'p');
  const q = createTensor(gpu, [3, H, W], 'q');
  poison(gpu, q);
  const f = guidedFilter(gpu, { I: gI, p: gp, q, radius: r, eps });
  run(gpu, f.steps);
  const out = await readTensor(gpu, q);
  f.destroy();
  return out;
}

/** A photograph-like guide: smooth gradients, a hard edge and a little noise, in [0, 1]. */
function photoLike(H: number, W: number, seed: number): Float64Array {
  const r = rng(seed);
  const out = new Float64Array(3 * H * W);
  for (let c = 0; c < 3; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    const edge = x + 0.5 * y > W * 0.6 ? 0.6 : 0;
    out[(c * H + y) * W + x] = Math.fround(Math.min(1, 0.2 + 0.3 * (c + 1) * x / W * 0.5 + edge * (c === 1 ? 0.5 : 1) + 0.02 * r()));
  }
  return out;
}

// Odd sizes, a single pixel, radius 0, radius past the image, planes past 256 threads, lines past the 32-wide segments.
for (const [H, W, r, eps] of [[1, 1, 2, 1e-2], [5, 4, 1, 1e-2], [7, 9, 3, 1e-2], [6, 5, 9, 1e-2], [37, 41, 8, 1e-2], [33, 70, 20, 1e-3], [64, 65, 31, 1e-2], [9, 130, 0, 1e-2]]) {
  test(`GPU guided filter matches float64 at ${H}x${W}, r=${r}, eps=${eps}`, async () => {
    const I = randArray(3 * H * W, nextSeed(), 0, 1), p = randArray(3 * H * W, nextSeed(), 0, 1);
    const want = ref.guidedFilter(t64([3, H, W], I), t64([3, H, W], p), r, eps);
    assertClose(await gpuFilter(I, p, H, W, r, eps), want.data, 2e-5, `guided ${H}x${W} r${r}`, 1);
  });
}

test('photograph-like guide with a hard edge, small eps: GPU matches float64', async () => {
  const H = 48, W = 53, r = 6, eps = 1e-4;
  const I = photoLike(H, W, nextSeed()), p = randArray(3 * H * W, nextSeed(), 0, 1);
  const want = ref.guidedFilter(t64([3, H, W], I), t64([3, H, W], p), r, eps);
  assertClose(await gpuFilter(I, p, H, W, r, eps), want.data, 2e-4, 'guided photo-like', 1);
});

test('properties: radius 0 returns p; p = I with tiny eps returns I; affine p of I is kept', async () => {
  const H = 11, W = 13, n = H * W;
  const I = randArray(3 * n, nextSeed(), 0, 1), p = randArray(3 * n, nextSeed(), 0, 1);
  // r = 0: one-pixel windows, zero covariance, a = 0, b = p.
  assertClose(ref.guidedFilter(t64([3, H, W], I), t64([3, H, W], p), 0, 1e-2).data, p, 1e-12, 'ref r=0');
  assertClose(await gpuFilter(I, p, H, W, 0, 1e-2), p, 1e-6, 'gpu r=0', 1);
  // q = A I + c (a global affine colour map) is reproduced when eps -> 0.
  const aff = new Float64Array(3 * n);
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) {
    aff[c * n + i] = 0.1 + 0.5 * I[c * n + i] - 0.2 * I[((c + 1) % 3) * n + i] + 0.3 * I[((c + 2) % 3) * n + i];
  }
  assertClose(ref.guidedFilter(t64([3, H, W], I), t64([3, H, W], aff), 3, 1e-9).data, aff, 1e-6, 'ref affine');
  assertClose(await gpuFilter(I, Float64Array.from(aff, Math.fround), H, W, 3, 1e-6), aff, 1e-3, 'gpu affine', 1);
});

test('box mean: clipped windows along rows and columns, deterministic', async () => {
  const gpu = await testGpu();
  const P = 2, H = 5, W = 70, r = 33, n = P * H * W;
  const x = randArray(n, nextSeed());
  const want = new Float64Array(n);
  for (let c = 0; c < P; c++) for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) {
    let s = 0, cnt = 0;
    for (let a = Math.max(0, i - r); a <= Math.min(H - 1, i + r); a++) for (let b = Math.max(0, j - r); b <= Math.min(W - 1, j + r); b++) { s += x[(c * H + a) * W + b]; cnt++; }
    want[(c * H + i) * W + j] = s / cnt;
  }
  const gx = uploadTensor(gpu, x, [P, H, W], 'x'), tmp = createTensor(gpu, [P, H, W], 'tmp'), y = createTensor(gpu, [P, H, W], 'y');
  poison(gpu, tmp); poison(gpu, y);
  run(gpu, boxMeanSteps(gpu, gx, tmp, y, P, H, W, r));
  const first = await readTensor(gpu, y);
  assertClose(first, want, 1e-6, 'box mean', 1);
  poison(gpu, y);
  run(gpu, boxMeanSteps(gpu, gx, tmp, y, P, H, W, r));
  assert.equal([...await readTensor(gpu, y)], [...first], 'bit-identical rerun');
});

test('bad arguments are one-line PainterlyErrors', async () => {
  const gpu = await testGpu();
  const a = createTensor(gpu, [3, 4, 5], 'a'), b = createTensor(gpu, [3, 5, 4], 'b'), g = createTensor(gpu, [1, 4, 5], 'g');
  const one = (re: RegExp) => (e: Error) => e instanceof PainterlyError && re.test(e.message) && !e.message.includes('\n');
  assert.throws(() => guidedFilter(gpu, { I: a, p: b, q: a, radius: 2, eps: 1e-2 }), one(/expected b \[3,4,5\]/));
  assert.throws(() => guidedFilter(gpu, { I: g, p: a, q: a, radius: 2, eps: 1e-2 }), one(/expected an image \[3,H,W\]/));
  assert.throws(() => guidedFilter(gpu, { I: a, p: a, q: a, radius: 1.5, eps: 1e-2 }), one(/integer radius/));
  assert.throws(() => guidedFilter(gpu, { I: a, p: a, q: a, radius: 2, eps: 0 }), one(/eps > 0/));
});

test.run();
