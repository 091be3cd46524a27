import { suite } from 'uvu';
import { createTensor, poison, uploadTensor } from '../../src/gpu/tensor.ts';
import { run } from '../../src/gpu/kernel.ts';
import { reluBackward, reluForward } from '../../src/ops/relu.ts';
import * as ref from '../../src/reference/relu.ts';
import { t64 } from '../../src/reference/tensor.ts';
import { assertTensorClose, checkGradient, nextSeed, randArray, testGpu } from '../helpers.ts';

const test = suite('relu');

for (const shape of [[1, 1, 1], [3, 7, 5], [64, 33, 17], [1, 300, 301]]) {
  test(`forward and backward match float64 at [${shape}]`, async () => {
    const gpu = await testGpu();
    const n = shape.reduce((a, b) => a * b);
    const x = t64(shape, randArray(n, nextSeed()));
    const dy = t64(shape, randArray(n, nextSeed()));
    const gx = uploadTensor(gpu, x.data, shape, 'x');
    const gdy = uploadTensor(gpu, dy.data, shape, 'dy');
    const gy = createTensor(gpu, shape, 'y');
    const gdx = createTensor(gpu, shape, 'dx');
    poison(gpu, gy); poison(gpu, gdx);
    run(gpu, [reluForward(gpu, gx, gy), reluBackward(gpu, gy, gdy, gdx)]);
    await assertTensorClose(gpu, gy, ref.reluForward(x).data, 0, 'relu forward');
    await assertTensorClose(gpu, gdx, ref.reluBackward(x, dy).data, 0, 'relu backward');
  });
}

test('reference backward matches finite differences', () => {
  const shape = [2, 3, 3];
  const x = t64(shape, randArray(18, nextSeed()));
  for (let i = 0; i < 18; i++) if (Math.abs(x.data[i]) < 1e-3) x.data[i] = 0.5; // keep away from the kink
  const w = randArray(18, nextSeed());
  const f = (v: Float64Array) => ref.reluForward(t64(shape, v)).data.reduce((a, y, i) => a + w[i] * y, 0);
  checkGradient(f, x.data, ref.reluBackward(x, t64(shape, w)).data, 'relu');
});

test.run();
