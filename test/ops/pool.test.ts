import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PainterlyError } from '../../src/gpu/device.ts';
import { run } from '../../src/gpu/kernel.ts';
import { createTensor, poison, readBuffers, readTensor, uploadTensor } from '../../src/gpu/tensor.ts';
import { avgPoolBackward, avgPoolForward, createArgmax, maxPoolBackward, maxPoolForward } from '../../src/ops/pool.ts';
import * as ref from '../../src/reference/pool.ts';
import { t64 } from '../../src/reference/tensor.ts';
import { assertClose, assertTensorClose, checkGradient, nextSeed, randArray, rng, testGpu } from '../helpers.ts';

const test = suite('pool');

async function readArgmax(gpu: Awaited<ReturnType<typeof testGpu>>, buf: GPUBuffer, n: number): Promise<Uint32Array> {
  const [f] = await readBuffers(gpu, [{ buffer: buf, bytes: n * 4 }]);
  return new Uint32Array(f.buffer, f.byteOffset, n);
}

async function checkPools(shape: number[], x: Float64Array): Promise<void> {
  const gpu = await testGpu();
  const [C, H, W] = shape;
  const oshape = [C, Math.floor(H / 2), Math.floor(W / 2)];
  const n = x.length, no = oshape[0] * oshape[1] * oshape[2];
  const X = t64(shape, x);
  const dy = t64(oshape, randArray(no, nextSeed()));
  const gx = uploadTensor(gpu, x, shape, 'x');
  const gdy = uploadTensor(gpu, dy.data, oshape, 'dy');
  const gy = createTensor(gpu, oshape, 'y'), gya = createTensor(gpu, oshape, 'ya');
  const gdx = createTensor(gpu, shape, 'dx'), gdxa = createTensor(gpu, shape, 'dxa');
  const argmax = createArgmax(gpu, gy);
  for (const t of [gy, gya, gdx, gdxa]) poison(gpu, t);
  gpu.device.queue.writeBuffer(argmax, 0, new Uint32Array(Math.max(no, 1)).fill(0xdeadbeef));
  run(gpu, [
    ...maxPoolForward(gpu, gx, gy, argmax), ...maxPoolBackward(gpu, gdy, argmax, gdx),
    ...avgPoolForward(gpu, gx, gya), ...avgPoolBackward(gpu, gdy, gdxa),
  ]);
  const want = ref.maxPoolForward(X);
  await assertTensorClose(gpu, gy, want.y.data, 0, `max pool forward [${shape}]`);
  assert.equal([...await readArgmax(gpu, argmax, no)], [...want.argmax], `argmax [${shape}]`);
  await assertTensorClose(gpu, gdx, ref.maxPoolBackward(dy, want.argmax, shape).data, 0, `max pool backward [${shape}]`);
  // Relative to the inputs' scale (|x| <= 1): a mean of four can cancel to far below the values it sums.
  assertClose(await readTensor(gpu, gya), ref.avgPoolForward(X).data, 1e-6, `avg pool forward [${shape}]`, 1);
  await assertTensorClose(gpu, gdxa, ref.avgPoolBackward(dy, shape).data, 0, `avg pool backward [${shape}]`);
  void n;
}

// Odd H and/or W (dropped row/col), a plane past 256 threads, a VGG pool1 shape at a 64x64 image, degenerate 1-wide.
for (const shape of [[1, 2, 2], [3, 7, 5], [2, 6, 9], [5, 17, 16], [64, 64, 64], [1, 1, 5], [2, 3, 1]]) {
  test(`max/avg pool forward and backward match float64 at [${shape}]`, async () => {
    await checkPools(shape, randArray(shape[0] * shape[1] * shape[2], nextSeed()));
  });
}

test('max pool ties: the first maximum in row-major window order wins', async () => {
  // Values from a 3-level set so most windows hold exact ties, in every position pattern.
  const shape = [4, 9, 11];
  const r = rng(nextSeed());
  const x = Float64Array.from({ length: 4 * 9 * 11 }, () => [0, 0.5, 1][Math.floor(r() * 3)]);
  await checkPools(shape, x);
  // And an all-equal input: argmax must be every window's top-left element.
  const gpu = await testGpu();
  const flat = uploadTensor(gpu, new Float32Array(2 * 4 * 6).fill(3), [2, 4, 6], 'flat');
  const y = createTensor(gpu, [2, 2, 3], 'y');
  const am = createArgmax(gpu, y);
  run(gpu, maxPoolForward(gpu, flat, y, am));
  const got = await readArgmax(gpu, am, 12);
  assert.equal([...got], [0, 2, 4, 12, 14, 16, 24, 26, 28, 36, 38, 40]);
});

test('references match finite differences', () => {
  const shape = [2, 5, 4];
  const n = 40;
  const x = t64(shape, randArray(n, nextSeed()));
  const w = randArray(2 * 2 * 2, nextSeed());
  const { argmax } = ref.maxPoolForward(x);
  // Max pooling is differentiable away from ties; random floats have none.
  const fmax = (v: Float64Array) => ref.maxPoolForward(t64(shape, v)).y.data.reduce((a, y, i) => a + w[i] * y, 0);
  checkGradient(fmax, x.data, ref.maxPoolBackward(t64([2, 2, 2], w), argmax, shape).data, 'max pool', { h: 1e-7 });
  const favg = (v: Float64Array) => ref.avgPoolForward(t64(shape, v)).data.reduce((a, y, i) => a + w[i] * y, 0);
  checkGradient(favg, x.data, ref.avgPoolBackward(t64([2, 2, 2], w), shape).data, 'avg pool');
});

test('bad shapes are one-line PainterlyErrors', async () => {
  const gpu = await testGpu();
  const x = createTensor(gpu, [2, 6, 6], 'x');
  const y = createTensor(gpu, [2, 3, 2], 'y');
  const x2 = createTensor(gpu, [36], 'x2');
  assert.throws(() => avgPoolForward(gpu, x, y), (e: Error) => e instanceof PainterlyError && /expected pooled tensor \[2,3,3\]/.test(e.message));
  assert.throws(() => avgPoolForward(gpu, x2, y), (e: Error) => e instanceof PainterlyError && /expected input \[C,H,W\]/.test(e.message));
  const yok = createTensor(gpu, [2, 3, 3], 'yok');
  const small = gpu.device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
  assert.throws(() => maxPoolForward(gpu, x, yok, small), (e: Error) => e instanceof PainterlyError && /argmax/.test(e.message));
  assertClose([], [], 0, 'no GPU errors');
});

test.run();
