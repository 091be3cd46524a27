import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PainterlyError } from '../../src/gpu/device.ts';
import { run } from '../../src/gpu/kernel.ts';
import { createTensor, poison, readBuffers, readTensor, uploadTensor } from '../../src/gpu/tensor.ts';
import { avgPoolBackward, avgPoolForward, createArgmax, maxPoolBackward, maxPoolForward, pooledShape, type PoolOptions } from '../../src/ops/pool.ts';
import * as ref from '../../src/reference/pool.ts';
import { t64 } from '../../src/reference/tensor.ts';
import { assertClose, assertTensorClose, checkGradient, nextSeed, randArray, rng, testGpu } from '../helpers.ts';

const test = suite('pool');

async function readArgmax(gpu: Awaited<ReturnType<typeof testGpu>>, buf: GPUBuffer, n: number): Promise<Uint32Array> {
  const [f] = await readBuffers(gpu, [{ buffer: buf, bytes: n * 4 }]);
  return new Uint32Array(f.buffer, f.byteOffset, n);
}

async function checkPools(shape: number[], x: Float64Array, ceilOrOpts: boolean | PoolOptions = false): Promise<void> {
  const gpu = await testGpu();
  const [C, H, W] = shape;
  const opts = typeof ceilOrOpts === 'boolean' ? { ceil: ceilOrOpts } : ceilOrOpts;
  const oshape = [C, ...pooledShape(H, W, opts)];
  const mode = JSON.stringify(opts);
  // The 2x2/2 kernels are exact; overlapping windows sum several float32 terms in the backward.
  const fast = (opts.kernel ?? 2) === 2 && (opts.stride ?? 2) === 2 && !opts.padding;
  const rtol = fast ? 0 : 1e-6;
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
    ...maxPoolForward(gpu, gx, gy, argmax, opts), ...maxPoolBackward(gpu, gdy, argmax, gdx, opts),
    ...avgPoolForward(gpu, gx, gya, opts), ...avgPoolBackward(gpu, gdy, gdxa, opts),
  ]);
  const want = ref.maxPoolForward(X, opts);
  await assertTensorClose(gpu, gy, want.y.data, 0, `max pool forward [${shape}] ${mode}`);
  assert.equal([...await readArgmax(gpu, argmax, no)], [...want.argmax], `argmax [${shape}] ${mode}`);
  await assertTensorClose(gpu, gdx, ref.maxPoolBackward(dy, want.argmax, shape).data, rtol, `max pool backward [${shape}] ${mode}`);
  // Relative to the inputs' scale (|x| <= 1): a mean of four can cancel to far below the values it sums.
  assertClose(await readTensor(gpu, gya), ref.avgPoolForward(X, opts).data, 1e-6, `avg pool forward [${shape}] ${mode}`, 1);
  assertClose(await readTensor(gpu, gdxa), ref.avgPoolBackward(dy, shape, opts).data, rtol, `avg pool backward [${shape}] ${mode}`, 1);
  void n;
}

// Odd H and/or W (dropped row/col), a plane past 256 threads, a VGG pool1 shape at a 64x64 image, degenerate 1-wide.
for (const shape of [[1, 2, 2], [3, 7, 5], [2, 6, 9], [5, 17, 16], [64, 64, 64], [1, 1, 5], [2, 3, 1]]) {
  test(`max/avg pool forward and backward match float64 at [${shape}]`, async () => {
    await checkPools(shape, randArray(shape[0] * shape[1] * shape[2], nextSeed()));
  });
}

// Ceil mode: odd sizes give clipped border windows (2-element edges, a 1-element corner); 1x1 is a lone corner.
for (const shape of [[1, 1, 1], [3, 3, 5], [2, 7, 9], [5, 17, 16], [4, 16, 17], [2, 6, 8], [1, 1, 5], [2, 3, 1], [3, 33, 31]]) {
  test(`ceil mode: max/avg pool forward and backward match float64 at [${shape}]`, async () => {
    await checkPools(shape, randArray(shape[0] * shape[1] * shape[2], nextSeed()), true);
  });
}

// General windows (shaders/pool.wgsl's general kernels): ResNet/DenseNet's stem max pool 3x3/2 padding 1, heavy
// overlap (3x3/1), padding counted in avg's divisor (2x2/2 padding 1), a stride past the window (1x1/2), 5x5/3.
const general: [number[], PoolOptions][] = [
  [[3, 7, 5], { kernel: 3, stride: 2, padding: 1 }],
  [[2, 8, 8], { kernel: 3, stride: 2, padding: 1 }],
  [[4, 17, 16], { kernel: 3, stride: 2, padding: 1, ceil: true }],
  [[3, 16, 17], { kernel: 3, stride: 2, padding: 1, ceil: true }],
  [[64, 32, 33], { kernel: 3, stride: 2, padding: 1 }],
  [[1, 1, 1], { kernel: 3, stride: 2, padding: 1 }],
  [[2, 2, 3], { kernel: 3, stride: 2, padding: 1, ceil: true }],
  [[2, 9, 6], { kernel: 3, stride: 1, padding: 1 }],
  [[2, 8, 9], { kernel: 3, stride: 2, padding: 0, ceil: true }],
  [[3, 6, 7], { kernel: 2, stride: 2, padding: 1 }],
  [[2, 7, 6], { kernel: 2, stride: 2, padding: 1, ceil: true }],   // ceil mode drops a window starting at H + P - 1
  [[2, 7, 6], { kernel: 2, stride: 1 }],
  [[2, 7, 6], { kernel: 1, stride: 2 }],
  [[2, 13, 11], { kernel: 5, stride: 3, padding: 2, ceil: true }],
  [[2, 13, 11], { kernel: 5, stride: 3, padding: 2 }],
];
for (const [shape, opts] of general) {
  test(`general ${JSON.stringify(opts)}: max/avg pool forward and backward match float64 at [${shape}]`, async () => {
    await checkPools(shape, randArray(shape[0] * shape[1] * shape[2], nextSeed()), opts);
  });
}

test('general pooling reference, by hand (torch): 3x3/2 padding 1 on 1..16', () => {
  const x = t64([1, 4, 4], Array.from({ length: 16 }, (_, i) => i + 1));
  const opts = { kernel: 3, stride: 2, padding: 1 };
  assert.equal(pooledShape(4, 4, opts), [2, 2]);
  const m = ref.maxPoolForward(x, opts);
  assert.equal([...m.y.data], [6, 8, 14, 16]);
  assert.equal([...m.argmax], [5, 7, 13, 15]);
  // count_include_pad: the corner window holds 1+2+5+6 = 14 over 9 positions of the padded input.
  assert.equal([...ref.avgPoolForward(x, opts).data].map((v) => Math.round(v * 9 * 1e9) / 1e9), [14, 30, 57, 99]);
  // Overlap: element 5 (value 6) is the argmax of the first window only, 7 (value 8) of the second.
  assert.equal([...ref.maxPoolBackward(t64([1, 2, 2], [1, 2, 3, 4]), m.argmax, [1, 4, 4]).data],
    [0, 0, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4]);
  // A shared argmax collects from every window: a 5x5 with its maximum at the centre, 3x3/1 padding 1.
  const peak = t64([1, 3, 3], [0, 0, 0, 0, 9, 0, 0, 0, 0]);
  const pm = ref.maxPoolForward(peak, { kernel: 3, stride: 1, padding: 1 });
  assert.equal([...pm.argmax], new Array(9).fill(4));
  assert.equal([...ref.maxPoolBackward(t64([1, 3, 3], new Array(9).fill(1)), pm.argmax, [1, 3, 3]).data], [0, 0, 0, 0, 9, 0, 0, 0, 0]);
  // Ceil mode keeps a last window only if it starts inside the input (or the left padding), window o starting at
  // o S - P: H = 4, 3x3/2 padding 1: ceil(3/2) + 1 = 3 windows, the third starts at 3 < 4, kept; W = 3 with 2x2/2
  // padding 1: ceil(3/2) + 1 = 3, the third would start at 3 = W, dropped (H = 2: 2 windows, the second at 1);
  // 1x1/2 on 2: ceil(1/2) + 1 = 2, the second would start at 2, dropped.
  assert.equal(pooledShape(5, 4, { kernel: 3, stride: 2, padding: 1, ceil: true }), [3, 3]);
  assert.equal(pooledShape(2, 3, { kernel: 2, stride: 2, padding: 1, ceil: true }), [2, 2]);
  assert.equal(pooledShape(2, 2, { kernel: 1, stride: 2, ceil: true }), [1, 1]);
  assert.equal(pooledShape(112, 112, { kernel: 3, stride: 2, padding: 1 }), [56, 56]);
});

test('pooledShape: floor and ceil', () => {
  assert.equal(pooledShape(7, 8), [3, 4]);
  assert.equal(pooledShape(7, 8, true), [4, 4]);
  assert.equal(pooledShape(1, 1, true), [1, 1]);
  assert.equal(pooledShape(1, 1, false), [0, 0]);
});

test('ceil mode reference, by hand: border windows average their valid elements only (torch, padding 0)', () => {
  // x = [[1,2,3],[4,5,6],[7,8,9]]: windows {1,2,4,5}, {3,6}, {7,8}, {9}.
  const x = t64([1, 3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal([...ref.avgPoolForward(x, true).data], [3, 4.5, 7.5, 9]);
  const m = ref.maxPoolForward(x, true);
  assert.equal([...m.y.data], [5, 6, 8, 9]);
  assert.equal([...m.argmax], [4, 5, 7, 8]);
  assert.equal([...ref.avgPoolBackward(t64([1, 2, 2], [4, 2, 2, 1]), [1, 3, 3], true).data], [1, 1, 1, 1, 1, 1, 1, 1, 1]);
});

test('max pool ties: the first maximum in row-major window order wins', async () => {
  // Values from a 3-level set so most windows hold exact ties, in every position pattern.
  const shape = [4, 9, 11];
  const r = rng(nextSeed());
  const x = Float64Array.from({ length: 4 * 9 * 11 }, () => [0, 0.5, 1][Math.floor(r() * 3)]);
  await checkPools(shape, x);
  await checkPools([3, 7, 9], Float64Array.from({ length: 3 * 7 * 9 }, () => [0, 0.5, 1][Math.floor(r() * 3)]), true);
  // And an all-equal input: argmax must be every window's top-left element.
  const gpu = await testGpu();
  const flat = uploadTensor(gpu, new Float32Array(2 * 4 * 6).fill(3), [2, 4, 6], 'flat');
  const y = createTensor(gpu, [2, 2, 3], 'y');
  const am = createArgmax(gpu, y);
  run(gpu, maxPoolForward(gpu, flat, y, am));
  const got = await readArgmax(gpu, am, 12);
  assert.equal([...got], [0, 2, 4, 12, 14, 16, 24, 26, 28, 36, 38, 40]);
});

test('general pooling ties: overlapping windows sharing an argmax sum their gradients on the GPU', async () => {
  const r = rng(nextSeed());
  for (const opts of [{ kernel: 3, stride: 2, padding: 1 }, { kernel: 3, stride: 1, padding: 1, ceil: true }]) {
    const shape = [3, 9, 10];
    await checkPools(shape, Float64Array.from({ length: 270 }, () => [0, 0.5, 1][Math.floor(r() * 3)]), opts);
    await checkPools(shape, new Float64Array(270).fill(-2), opts);   // all equal: every argmax is its window's first
  }
});

test('general pooling references match finite differences (every input element)', () => {
  for (const opts of [{ kernel: 3, stride: 2, padding: 1 }, { kernel: 3, stride: 1, padding: 1, ceil: true },
    { kernel: 2, stride: 2, padding: 1 }, { kernel: 5, stride: 3, padding: 2, ceil: true }]) {
    const shape = [2, 7, 6];
    const [Ho, Wo] = pooledShape(7, 6, opts);
    const x = t64(shape, randArray(84, nextSeed()));
    const w = randArray(2 * Ho * Wo, nextSeed());
    const { argmax } = ref.maxPoolForward(x, opts);
    const fmax = (v: Float64Array) => ref.maxPoolForward(t64(shape, v), opts).y.data.reduce((a, y, i) => a + w[i] * y, 0);
    checkGradient(fmax, x.data, ref.maxPoolBackward(t64([2, Ho, Wo], w), argmax, shape).data, `max ${JSON.stringify(opts)}`,
      { h: 1e-7, samples: 84 });
    const favg = (v: Float64Array) => ref.avgPoolForward(t64(shape, v), opts).data.reduce((a, y, i) => a + w[i] * y, 0);
    checkGradient(favg, x.data, ref.avgPoolBackward(t64([2, Ho, Wo], w), shape, opts).data, `avg ${JSON.stringify(opts)}`,
      { samples: 84 });
  }
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
  // Ceil mode on an odd plane: clipped windows in both directions.
  const cshape = [2, 5, 3];
  const cx = t64(cshape, randArray(30, nextSeed()));
  const cw = randArray(2 * 3 * 2, nextSeed());
  const cmax = (v: Float64Array) => ref.maxPoolForward(t64(cshape, v), true).y.data.reduce((a, y, i) => a + cw[i] * y, 0);
  checkGradient(cmax, cx.data, ref.maxPoolBackward(t64([2, 3, 2], cw), ref.maxPoolForward(cx, true).argmax, cshape).data,
    'max pool ceil', { h: 1e-7 });
  const cavg = (v: Float64Array) => ref.avgPoolForward(t64(cshape, v), true).data.reduce((a, y, i) => a + cw[i] * y, 0);
  checkGradient(cavg, cx.data, ref.avgPoolBackward(t64([2, 3, 2], cw), cshape, true).data, 'avg pool ceil');
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
  // Ceil mode wants [2,4,4] for [2,7,8]; the floor shape is refused, and vice versa.
  const x7 = createTensor(gpu, [2, 7, 8], 'x7');
  const yf = createTensor(gpu, [2, 3, 4], 'yf'), yc = createTensor(gpu, [2, 4, 4], 'yc');
  const one = (e: Error, re: RegExp) => e instanceof PainterlyError && re.test(e.message) && !e.message.includes('\n');
  assert.throws(() => avgPoolForward(gpu, x7, yf, { ceil: true }), (e: Error) => one(e, /expected pooled tensor \[2,4,4\].*ceil mode/));
  assert.throws(() => avgPoolBackward(gpu, yc, x7), (e: Error) => one(e, /expected pooled tensor \[2,3,4\]/));
  assert.throws(() => maxPoolBackward(gpu, yf, createArgmax(gpu, yc), x7, { ceil: true }), (e: Error) => one(e, /\[2,4,4\]/));
  assert.throws(() => maxPoolForward(gpu, x, yok, createArgmax(gpu, yok), { kernel: 3, stride: 2, padding: 2 }),
    (e: Error) => one(e, /padding must be an integer in \[0, kernel\/2\] = \[0, 1\], got 2/));
  assert.throws(() => avgPoolForward(gpu, x, yok, { stride: 0 }), (e: Error) => one(e, /stride must be an integer >= 1, got 0/));
  assert.throws(() => avgPoolForward(gpu, x, createTensor(gpu, [2, 4, 4], 'y4'), { kernel: 3, stride: 2, padding: 1 }),
    (e: Error) => one(e, /expected pooled tensor \[2,3,3\] for input \[2,6,6\] \(3x3\/2 padding 1\)/));
  assertClose([], [], 0, 'no GPU errors');
});

test.run();
