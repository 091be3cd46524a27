import { suite } from 'uvu';
import { run } from '../../src/gpu/kernel.ts';
import { createTensor, poison, uploadTensor } from '../../src/gpu/tensor.ts';
import { IMAGENET_MEAN, IMAGENET_STD, normalizeBackward, normalizeForward } from '../../src/ops/normalize.ts';
import * as ref from '../../src/reference/normalize.ts';
import { t64 } from '../../src/reference/tensor.ts';
import { assertTensorClose, checkGradient, nextSeed, randArray, testGpu } from '../helpers.ts';

const test = suite('normalize');

for (const [h, w] of [[1, 1], [7, 5], [67, 129]]) {
  test(`forward and backward match float64 at 3x${h}x${w}`, async () => {
    const gpu = await testGpu();
    const shape = [3, h, w];
    const x = t64(shape, randArray(3 * h * w, nextSeed(), 0, 1));
    const dy = t64(shape, randArray(3 * h * w, nextSeed()));
    const gx = uploadTensor(gpu, x.data, shape, 'x');
    const gdy = uploadTensor(gpu, dy.data, shape, 'dy');
    const gy = createTensor(gpu, shape, 'y');
    const gdx = createTensor(gpu, shape, 'dx');
    poison(gpu, gy); poison(gpu, gdx);
    run(gpu, [normalizeForward(gpu, gx, gy), normalizeBackward(gpu, gdy, gdx)]);
    await assertTensorClose(gpu, gy, ref.normalizeForward(x, IMAGENET_MEAN, IMAGENET_STD).data, 1e-6, 'normalize forward');
    await assertTensorClose(gpu, gdx, ref.normalizeBackward(dy, IMAGENET_STD).data, 1e-6, 'normalize backward');
  });
}

test('reference backward matches finite differences', () => {
  const shape = [3, 2, 2];
  const x = randArray(12, nextSeed());
  const w = randArray(12, nextSeed());
  const f = (v: Float64Array) => ref.normalizeForward(t64(shape, v), IMAGENET_MEAN, IMAGENET_STD).data.reduce((a, y, i) => a + w[i] * y, 0);
  checkGradient(f, x, ref.normalizeBackward(t64(shape, w), IMAGENET_STD).data, 'normalize');
});

test.run();
