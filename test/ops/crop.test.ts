import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createTensor, poison, uploadTensor } from '../../src/gpu/tensor.ts';
import { run } from '../../src/gpu/kernel.ts';
import { windowCopy, type Rect } from '../../src/ops/crop.ts';
import * as ref from '../../src/reference/crop.ts';
import { t64 } from '../../src/reference/tensor.ts';
import { assertTensorClose, nextSeed, randArray, rng, testGpu } from '../helpers.ts';

const test = suite('crop (window copy)');

// [C, srcH, srcW, dstH, dstW]: odd sizes, windows past 256-element workgroup edges, single pixels.
const cases = [[1, 1, 1, 1, 1], [3, 17, 13, 9, 21], [8, 40, 37, 33, 41], [5, 100, 90, 64, 64]];

for (const [C, sH, sW, dH, dW] of cases) {
  test(`random windows match float64 at src [${C},${sH},${sW}] dst [${C},${dH},${dW}]`, async () => {
    const gpu = await testGpu();
    const r = rng(nextSeed());
    const pick = (n: number) => Math.floor(r() * n);
    for (let k = 0; k < 3; k++) {
      const h = 1 + pick(Math.min(sH, dH)), w = 1 + pick(Math.min(sW, dW));
      const from: Rect = { y0: pick(sH - h + 1), x0: pick(sW - w + 1), h, w };
      const to = { y0: pick(dH - h + 1), x0: pick(dW - w + 1) };
      const [alpha, beta] = k === 0 ? [1, 0] : [r() * 4 - 2, k === 1 ? 1 : r() * 4 - 2];
      const src = t64([C, sH, sW], randArray(C * sH * sW, nextSeed()));
      const dst = t64([C, dH, dW], randArray(C * dH * dW, nextSeed()));
      const gs = uploadTensor(gpu, src.data, src.shape, 'src');
      const gd = uploadTensor(gpu, dst.data, dst.shape, 'dst');
      run(gpu, [windowCopy(gpu, gs, gd, { from, to, alpha: Math.fround(alpha), beta: Math.fround(beta) })]);
      const want = ref.windowCopy(src, dst, from, to, Math.fround(alpha), Math.fround(beta));
      await assertTensorClose(gpu, gd, want.data, 1e-6, `window ${JSON.stringify({ from, to, alpha, beta })}`);
    }
  });
}

test('beta = 0 does not read the destination (a NaN-poisoned dst is fully overwritten)', async () => {
  const gpu = await testGpu();
  const [C, H, W] = [3, 23, 29];
  const src = t64([C, H + 5, W + 3], randArray(C * (H + 5) * (W + 3), nextSeed()));
  const gs = uploadTensor(gpu, src.data, src.shape, 'src');
  const gd = createTensor(gpu, [C, H, W], 'dst');
  poison(gpu, gd);
  const from = { y0: 4, x0: 1, h: H, w: W };
  run(gpu, [windowCopy(gpu, gs, gd, { from, alpha: -0.5 })]);
  await assertTensorClose(gpu, gd, ref.windowCopy(src, t64([C, H, W]), from, { y0: 0, x0: 0 }, -0.5).data, 0, 'crop');
});

test('bad windows are one-line errors naming what was expected', async () => {
  const gpu = await testGpu();
  const a = createTensor(gpu, [2, 8, 8], 'a');
  const b = createTensor(gpu, [2, 4, 4], 'b');
  const c = createTensor(gpu, [3, 4, 4], 'c');
  assert.throws(() => windowCopy(gpu, a, b), /destination window .* is not inside b \[2,4,4\]/);
  assert.throws(() => windowCopy(gpu, a, b, { from: { y0: 6, x0: 0, h: 4, w: 4 } }), /source window .* is not inside a/);
  assert.throws(() => windowCopy(gpu, a, c, { from: { y0: 0, x0: 0, h: 4, w: 4 } }), /expected c to have 2 channels/);
  assert.throws(() => windowCopy(gpu, a, a, { from: { y0: 0, x0: 0, h: 4, w: 4 }, to: { y0: 4, x0: 4 } }), /share a buffer/);
  assert.throws(() => windowCopy(gpu, { ...a, shape: [128] }, b), /expected src \[C,H,W\]/);
});

test.run();
