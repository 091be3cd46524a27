import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PainterlyError } from '../../src/gpu/device.ts';
import { run } from '../../src/gpu/kernel.ts';
import { createTensor, destroyTensors, poison, readTensor, uploadTensor } from '../../src/gpu/tensor.ts';
import { softmaxChannels, softmaxChannelsBackward } from '../../src/ops/softmax.ts';
import * as ref from '../../src/reference/softmax.ts';
import { t64 } from '../../src/reference/tensor.ts';
import { assertClose, checkGradient, nextSeed, randArray, testGpu } from '../helpers.ts';

const test = suite('softmax');

// float32 exp and a sum of C terms; the exponent (x - m)/T carries the rounding of x - m times 1/T.
const RTOL = 2e-5;

/** Forward and backward, out of place and in place, against float64; outputs poisoned first. */
async function check(shape: number[], T: number, lo = -3, hi = 3): Promise<void> {
  const gpu = await testGpu();
  const n = shape.reduce((a, b) => a * b, 1);
  const x = t64(shape, randArray(n, nextSeed(), lo, hi));
  const dy = t64(shape, randArray(n, nextSeed()));
  const want = ref.softmaxChannels(x, T);
  // The backward's inputs as the GPU sees them: y rounded to float32.
  const y32 = t64(shape, Float32Array.from(want.data));
  const wantDx = ref.softmaxChannelsBackward(y32, dy, T);
  const what = `[${shape}] T ${T}`;
  const gx = uploadTensor(gpu, x.data, shape, 'x');
  const gy = createTensor(gpu, shape, 'y');
  const gyIn = uploadTensor(gpu, y32.data, shape, 'y32');
  const gdy = uploadTensor(gpu, dy.data, shape, 'dy');
  const gdx = createTensor(gpu, shape, 'dx');
  poison(gpu, gy);
  poison(gpu, gdx);
  run(gpu, [...softmaxChannels(gpu, gx, gy, T), ...softmaxChannelsBackward(gpu, gyIn, gdy, gdx, T)]);
  assertClose(await readTensor(gpu, gy), want.data, RTOL, `forward ${what}`);
  // dx = (1/T) y ⊙ (dy − Σ y dy): with y near one-hot the bracket cancels, so the float32 error is relative to the
  // terms, (1/T)·max y·max |dy|, not to the (possibly tiny) result.
  const terms = (1 / T) * Math.max(...y32.data) * Math.max(...dy.data.map(Math.abs));
  assertClose(await readTensor(gpu, gdx), wantDx.data, RTOL, `backward ${what}`, terms);
  // In place: y = x, dx = dy.
  run(gpu, [...softmaxChannels(gpu, gx, gx, T), ...softmaxChannelsBackward(gpu, gyIn, gdy, gdy, T)]);
  assertClose(await readTensor(gpu, gx), want.data, RTOL, `forward in place ${what}`);
  assertClose(await readTensor(gpu, gdy), wantDx.data, RTOL, `backward in place ${what}`, terms);
  destroyTensors(gx, gy, gyIn, gdy, gdx);
}

// One channel (y = 1, dx = 0), odd planes, past one 64-position workgroup, wide channels, 2-D features.
const cases: [number[], number][] = [
  [[1, 1, 1], 1], [[1, 3, 5], 0.5], [[3, 5, 7], 1], [[17, 9, 11], 0.7], [[64, 13, 13], 1], [[256, 3], 2],
  [[5, 70, 70], 1], [[2048, 2, 3], 1],
];
for (const [shape, T] of cases) {
  test(`softmax over channels, forward and backward, match float64 at [${shape}] T ${T}`, async () => {
    await check(shape, T);
  });
}

test('stable at large logits: x/T up to 500 (exp would overflow without subtracting the maximum)', async () => {
  await check([7, 6, 5], 0.1, -50, 50);
  await check([7, 6, 5], 0.01, -5, 5);
  // Columns are probability distributions.
  const gpu = await testGpu();
  const x = uploadTensor(gpu, randArray(9 * 4, nextSeed(), -80, 80), [9, 4], 'x');
  const y = createTensor(gpu, [9, 4], 'y');
  run(gpu, softmaxChannels(gpu, x, y, 0.05));
  const got = await readTensor(gpu, y);
  for (let p = 0; p < 4; p++) {
    let s = 0;
    for (let c = 0; c < 9; c++) s += got[c * 4 + p];
    assert.ok(Math.abs(s - 1) < 1e-6, `column ${p} sums to ${s}`);
  }
});

test('reference backward matches finite differences (through x, every element)', () => {
  for (const [shape, T] of [[[4, 3, 5], 1], [[6, 7], 0.3], [[1, 2, 2], 2], [[3, 1, 1], 5]] as [number[], number][]) {
    const n = shape.reduce((a, b) => a * b, 1);
    const x = t64(shape, randArray(n, nextSeed(), -2, 2));
    const g = randArray(n, nextSeed());
    const loss = (v: Float64Array) => ref.softmaxChannels(t64(shape, v), T).data.reduce((a, y, i) => a + g[i] * y, 0);
    const dx = ref.softmaxChannelsBackward(ref.softmaxChannels(x, T), t64(shape, g), T);
    checkGradient(loss, x.data, dx.data, `softmax [${shape}] T ${T}`, { samples: n });
  }
});

test('bad input is a one-line PainterlyError', async () => {
  const gpu = await testGpu();
  const x = createTensor(gpu, [3, 4, 5], 'x');
  const y = createTensor(gpu, [3, 4, 5], 'y');
  const one = (re: RegExp) => (e: Error) => e instanceof PainterlyError && re.test(e.message) && !e.message.includes('\n');
  assert.throws(() => softmaxChannels(gpu, x, createTensor(gpu, [3, 5, 4], 'y2'), 1), one(/expected y2 \[3,4,5\] like x, got \[3,5,4\]/));
  assert.throws(() => softmaxChannels(gpu, createTensor(gpu, [60], 'flat'), createTensor(gpu, [60], 'f2'), 1), one(/expected features \[C,H,W\] or \[C,M\]/));
  for (const T of [0, -1, NaN, Infinity]) assert.throws(() => softmaxChannels(gpu, x, y, T), one(/temperature T must be a finite number > 0/));
  const dy = createTensor(gpu, [3, 4, 5], 'dy');
  assert.throws(() => softmaxChannelsBackward(gpu, y, dy, y, 1), one(/must not be the softmax output y; dx may be dy/));
  assert.throws(() => softmaxChannelsBackward(gpu, y, y, dy, 1), one(/must not be the softmax output/));
  assert.throws(() => softmaxChannelsBackward(gpu, y, dy, createTensor(gpu, [3, 20], 'dx'), 1), one(/expected dx \[3,4,5\] like y/));
  assertClose([], [], 0, 'no GPU errors');
});

test.run();
