import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PainterlyError } from '../../src/gpu/device.ts';
import { run } from '../../src/gpu/kernel.ts';
import { createTensor, poison, readTensor, uploadTensor } from '../../src/gpu/tensor.ts';
import { gram, gramBackward, gramChunks, gramTunable } from '../../src/ops/gram.ts';
import { chooseVariant, fixVariant } from '../../src/gpu/tune.ts';
import * as ref from '../../src/reference/gram.ts';
import { t64 } from '../../src/reference/tensor.ts';
import { assertClose, assertTensorClose, checkGradient, nextSeed, randArray, testGpu } from '../helpers.ts';

const test = suite('gram');

// N not a multiple of the 8-row / 8-column tiles, M unaligned (M % 4 != 0) and aligned, M past chunk edges
// (K > 1), and VGG layer shapes at a 32x32 image (conv1_1, conv3_1, conv5_1: 64x32x32, 256x8x8, 512x2x2).
const shapes = [[1, 1, 1], [3, 1, 5], [9, 3, 7], [13, 4, 8], [17, 37, 29], [70, 9, 37], [12, 80, 81], [64, 32, 32], [256, 8, 8], [512, 2, 2]];
for (const shape of shapes) {
  test(`gram and gramBackward match float64 at [${shape}]`, async () => {
    const gpu = await testGpu();
    const [N] = shape;
    const M = shape[1] * shape[2];
    const F = t64(shape, randArray(N * M, nextSeed(), -1, 2)); // mostly positive like ReLU features: no cancellation
    const dG = t64([N, N], randArray(N * N, nextSeed()));
    const scale = 1 / (N * M);
    const gF = uploadTensor(gpu, F.data, shape, 'F');
    const gdG = uploadTensor(gpu, dG.data, [N, N], 'dG');
    const gG = createTensor(gpu, [N, N], 'G');
    const gdF = createTensor(gpu, shape, 'dF');
    poison(gpu, gG); poison(gpu, gdF);
    run(gpu, [...gram(gpu, gF, gG, scale), ...gramBackward(gpu, gF, gdG, gdF)]);
    const G = await readTensor(gpu, gG);
    assertClose(G, ref.gram(F, scale).data, 1e-5, `gram [${shape}]`);
    for (let i = 0; i < N; i++) for (let j = 0; j < i; j++) {
      if (G[i * N + j] !== G[j * N + i]) assert.unreachable(`gram [${shape}]: G[${i},${j}] != G[${j},${i}]`);
    }
    await assertTensorClose(gpu, gdF, ref.gramBackward(F, dG).data, 1e-5, `gramBackward [${shape}]`);
  });
}

// Every variant (the autotuner may pick any) at shapes past its blocks: 8/4-row, 8..64-column and 64x64 tiles,
// unaligned M, several chunks.
for (const v of gramTunable.variants) {
  test(`gram variant ${v.id} matches float64 (poisoned G, past its blocks, unaligned M, chunks)`, async () => {
    const gpu = await testGpu();
    // lavapipe (and CI) has 8-lane subgroups; elsewhere the subgroup variant cannot run (matmul.test.ts checks where it applies).
    if (v.id === 'sg-quad' && !gpu.subgroups8 && process.env.CI !== 'true') return;
    fixVariant(gpu, 'gram', v.id);
    try {
      for (const shape of [[1, 1, 1], [9, 3, 7], [17, 37, 29], [70, 9, 37], [130, 4, 12], [33, 100, 100]]) {
        const [N] = shape;
        const M = shape[1] * shape[2];
        assert.is(chooseVariant(gpu, gramTunable, { n: N, m: M }), v.id);
        const F = t64(shape, randArray(N * M, nextSeed(), -1, 2));
        const gF = uploadTensor(gpu, F.data, shape, 'F');
        const gG = createTensor(gpu, [N, N], 'G');
        poison(gpu, gG);
        run(gpu, gram(gpu, gF, gG, 1 / M));
        const G = await readTensor(gpu, gG);
        assertClose(G, ref.gram(F, 1 / M).data, 1e-5, `gram ${v.id} [${shape}]`);
        for (let i = 0; i < N; i++) for (let j = 0; j < i; j++) {
          if (G[i * N + j] !== G[j * N + i]) assert.unreachable(`gram ${v.id} [${shape}]: G[${i},${j}] != G[${j},${i}]`);
        }
        gF.buffer.destroy(); gG.buffer.destroy();
      }
    } finally {
      fixVariant(gpu, 'gram', undefined);
    }
  });
}

test('the M reduction is split at large M and the result is bit-identical run to run', async () => {
  const gpu = await testGpu();
  const [N, M] = [24, 40000];
  assert.ok(gramChunks(gpu, N, M).K > 1, 'several chunks');
  const F = t64([N, 200, 200], randArray(N * M, nextSeed()));
  const gF = uploadTensor(gpu, F.data, F.shape, 'F');
  const G1 = createTensor(gpu, [N, N], 'G1'), G2 = createTensor(gpu, [N, N], 'G2');
  run(gpu, gram(gpu, gF, G1));
  run(gpu, gram(gpu, gF, G2));
  const [a, b] = [await readTensor(gpu, G1), await readTensor(gpu, G2)];
  assertClose(a, ref.gram(F).data, 1e-5, 'gram large M');
  assert.equal([...a], [...b], 'identical');
});

// Grids past 65,535 workgroups in a dimension must fold: N = 2049 gives gram_partial 257² blocks and
// gram_reduce / gram_symmetrize ceil(N²/64) = 65,601 workgroups; M = 4,194,307 gives sym_matmul ceil(M/64) = 65,537
// column blocks (2048x2048 at relu1_1 has M = 4,194,304).
for (const shape of [[2049, 1, 3], [3, 1, 4194307]]) {
  test(`folded grids: gram and gramBackward match float64 at [${shape}]`, async () => {
    const gpu = await testGpu();
    const [N] = shape;
    const M = shape[1] * shape[2];
    assert.ok(Math.ceil(N / 8) ** 2 > 65535 || Math.ceil(M / 64) > 65535, 'a grid past 65535');
    const F = t64(shape, randArray(N * M, nextSeed(), -1, 2));
    const dG = t64([N, N], randArray(N * N, nextSeed()));
    const gF = uploadTensor(gpu, F.data, shape, 'F');
    const gdG = uploadTensor(gpu, dG.data, [N, N], 'dG');
    const gG = createTensor(gpu, [N, N], 'G');
    const gdF = createTensor(gpu, shape, 'dF');
    poison(gpu, gG); poison(gpu, gdF);
    run(gpu, [...gram(gpu, gF, gG, 0.5), ...gramBackward(gpu, gF, gdG, gdF)]);
    await assertTensorClose(gpu, gG, ref.gram(F, 0.5).data, 1e-5, `gram [${shape}]`);
    await assertTensorClose(gpu, gdF, ref.gramBackward(F, dG).data, 1e-5, `gramBackward [${shape}]`);
    for (const t of [gF, gdG, gG, gdF]) t.buffer.destroy();
  });
}

test('reference gramBackward matches finite differences', () => {
  const shape = [3, 2, 3];
  const F = t64(shape, randArray(18, nextSeed()));
  const W = randArray(9, nextSeed()); // L = Σ W ⊙ G, so dL/dG = W (not symmetric)
  const f = (v: Float64Array) => ref.gram(t64(shape, v)).data.reduce((a, g, i) => a + W[i] * g, 0);
  checkGradient(f, F.data, ref.gramBackward(F, t64([3, 3], W)).data, 'gram');
});

test('bad shapes are one-line PainterlyErrors', async () => {
  const gpu = await testGpu();
  const F = createTensor(gpu, [4, 3, 3], 'F');
  const G = createTensor(gpu, [3, 3], 'G');
  assert.throws(() => gram(gpu, F, G), (e: Error) => e instanceof PainterlyError && /expected \[4,4\]/.test(e.message) && !e.message.includes('\n'));
  assert.throws(() => gramBackward(gpu, F, G, F), (e: Error) => e instanceof PainterlyError && /expected \[4,4\]/.test(e.message));
});

test.run();
