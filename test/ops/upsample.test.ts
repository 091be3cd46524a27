import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PainterlyError } from '../../src/gpu/device.ts';
import { run } from '../../src/gpu/kernel.ts';
import { createTensor, poison, uploadTensor } from '../../src/gpu/tensor.ts';
import { upsampleBackward, upsampleForward } from '../../src/ops/upsample.ts';
import * as ref from '../../src/reference/upsample.ts';
import { t64 } from '../../src/reference/tensor.ts';
import { assertClose, assertTensorClose, checkGradient, nextSeed, randArray, testGpu } from '../helpers.ts';

const test = suite('upsample');

// 1x1, odd planes, a plane of more than 256 elements, many channels (more than one workgroup in total).
for (const shape of [[1, 1, 1], [3, 3, 5], [2, 7, 9], [5, 17, 16], [33, 16, 17], [1, 1, 7], [4, 9, 1]]) {
  test(`upsample forward and backward match float64 at [${shape}]`, async () => {
    const gpu = await testGpu();
    const [C, H, W] = shape;
    const big = [C, 2 * H, 2 * W];
    const x = t64(shape, randArray(C * H * W, nextSeed()));
    const dy = t64(big, randArray(4 * C * H * W, nextSeed()));
    const gx = uploadTensor(gpu, x.data, shape, 'x'), gdy = uploadTensor(gpu, dy.data, big, 'dy');
    const gy = createTensor(gpu, big, 'y'), gdx = createTensor(gpu, shape, 'dx');
    poison(gpu, gy); poison(gpu, gdx);
    run(gpu, [...upsampleForward(gpu, gx, gy), ...upsampleBackward(gpu, gdy, gdx)]);
    await assertTensorClose(gpu, gy, ref.upsampleForward(x).data, 0, `upsample forward [${shape}]`);
    // A sum of four float32 values, relative to their scale (|dy| <= 1).
    await assertTensorClose(gpu, gdx, ref.upsampleBackward(dy).data, 1e-6, `upsample backward [${shape}]`);
  });
}

test('reference by hand, and its backward matches finite differences', () => {
  const y = ref.upsampleForward(t64([1, 2, 1], [1, 2]));
  assert.equal([...y.data], [1, 1, 1, 1, 2, 2, 2, 2]);
  assert.equal([...ref.upsampleBackward(t64([1, 2, 2], [1, 2, 3, 4])).data], [10]);
  const shape = [2, 3, 5];
  const x = randArray(30, nextSeed());
  const w = randArray(120, nextSeed());
  const f = (v: Float64Array) => ref.upsampleForward(t64(shape, v)).data.reduce((a, yi, i) => a + w[i] * yi, 0);
  checkGradient(f, x, ref.upsampleBackward(t64([2, 6, 10], w)).data, 'upsample');
});

test('bad shapes are one-line PainterlyErrors', async () => {
  const gpu = await testGpu();
  const x = createTensor(gpu, [2, 3, 5], 'x');
  const one = (re: RegExp) => (e: Error) => e instanceof PainterlyError && re.test(e.message) && !e.message.includes('\n');
  assert.throws(() => upsampleForward(gpu, x, createTensor(gpu, [2, 6, 9], 'y')), one(/expected upsampled tensor \[2,6,10\]/));
  assert.throws(() => upsampleForward(gpu, createTensor(gpu, [30], 'flat'), x), one(/expected input \[C,H,W\]/));
  assert.throws(() => upsampleBackward(gpu, createTensor(gpu, [3, 6, 10], 'dy'), x), one(/expected upsampled tensor \[2,6,10\]/));
  assertClose([], [], 0, 'no GPU errors');
});

test.run();
