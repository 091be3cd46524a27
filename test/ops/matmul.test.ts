import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { run } from '../../src/gpu/kernel.ts';
import { createTensor, poison, readTensor, uploadTensor } from '../../src/gpu/tensor.ts';
import { chooseVariant, fixVariant } from '../../src/gpu/tune.ts';
import { bindMatmul, bindMatmulTN, matmulTunable } from '../../src/ops/matmul.ts';
import { assertClose, nextSeed, randArray, testGpu } from '../helpers.ts';

const test = suite('matmul variants');

function matmul64(a: ArrayLike<number>, b: ArrayLike<number>, m: number, n: number, k: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) {
    const av = a[i * k + p];
    for (let j = 0; j < n; j++) c[i * n + j] += av * b[p * n + j];
  }
  return c;
}

// Odd M (past the 8- and 64-row blocks), N past the 64/128/256-column blocks and not a multiple of them, K not a
// multiple of the 16-k shared-memory step, batches.
// Short A (M <= 4) for the short-row variants, which apply only there.
const shapes: [number, number, number, number][] = [
  [1, 4, 4, 1], [13, 68, 12, 1], [67, 132, 36, 1], [9, 260, 20, 3], [130, 8, 68, 2], [3, 516, 4, 1],
  [1, 68, 12, 2], [2, 132, 36, 1], [4, 260, 20, 3], [3, 8, 68, 1], [1, 260, 36, 1],
];

test('the subgroup variant applies exactly where the device has 8-lane subgroups', async () => {
  const gpu = await testGpu();
  assert.is(matmulTunable.applies!(gpu, { m: 64, n: 64, k: 64 }, 'sg-rows8'), gpu.features.includes('subgroups') && gpu.info.subgroupMinSize >= 8);
});

for (const v of matmulTunable.variants) {
  test(`${v.id} matches float64 (odd M, N past blocks, K past 16-steps, batched)`, async () => {
    const gpu = await testGpu();
    // lavapipe (and CI) has 8-lane subgroups; elsewhere the subgroup variant cannot run and the test above covers it.
    if (v.id === 'sg-rows8' && !gpu.subgroups8 && process.env.CI !== 'true') return;
    fixVariant(gpu, 'matmul', v.id);
    try {
      const mine = shapes.filter(([m, n, k, batch]) => matmulTunable.applies!(gpu, { m, n, k, batch }, v.id));
      assert.ok(mine.length >= 3, `${v.id}: at least three shapes apply`);
      for (const [m, n, k, batch] of mine) {
        assert.is(chooseVariant(gpu, matmulTunable, { m, n, k, batch }), v.id);
        const a = randArray(batch * m * k, nextSeed());
        const b = randArray(batch * k * n, nextSeed());
        const ga = uploadTensor(gpu, a, [batch, m, k], 'a');
        const gb = uploadTensor(gpu, b, [batch, k, n], 'b');
        const gc = createTensor(gpu, [batch, m, n], 'c');
        poison(gpu, gc);
        run(gpu, [bindMatmul(gpu, ga.buffer, gb.buffer, gc.buffer, { m, n, k, batch })]);
        const got = await readTensor(gpu, gc);
        for (let i = 0; i < batch; i++) {
          assertClose(got.subarray(i * m * n, (i + 1) * m * n),
            matmul64(a.subarray(i * m * k, (i + 1) * m * k), b.subarray(i * k * n, (i + 1) * k * n), m, n, k), 1e-5,
            `${v.id} ${m}x${n}x${k} batch ${i}/${batch}`);
        }
        for (const t of [ga, gb, gc]) t.buffer.destroy();
      }
    } finally {
      fixVariant(gpu, 'matmul', undefined);
    }
  });
}

// C = A^T B (A stored [K,M]) and C += A^T B: M % 8 == 4 (the clamped second row quad), N past the 64-column block,
// K = 1 and odd K, batches. The accumulating case starts from random C, so a write that ignored it would fail.
test('matmul_tn (C = A^T B and C += A^T B) matches float64', async () => {
  const gpu = await testGpu();
  for (const [m, n, k, batch] of [[4, 4, 1, 1], [12, 68, 37, 2], [36, 132, 5, 3], [8, 4, 129, 1]] as const) {
    for (const accumulate of [false, true]) {
      const a = randArray(batch * k * m, nextSeed());
      const b = randArray(batch * k * n, nextSeed());
      const c0 = randArray(batch * m * n, nextSeed());
      const ga = uploadTensor(gpu, a, [batch, k, m], 'a');
      const gb = uploadTensor(gpu, b, [batch, k, n], 'b');
      const gc = accumulate ? uploadTensor(gpu, c0, [batch, m, n], 'c') : createTensor(gpu, [batch, m, n], 'c');
      if (!accumulate) poison(gpu, gc);
      run(gpu, [bindMatmulTN(gpu, ga.buffer, gb.buffer, gc.buffer, { m, n, k, batch }, accumulate)]);
      const got = await readTensor(gpu, gc);
      for (let i = 0; i < batch; i++) {
        const at = new Float64Array(m * k);   // A^T [M,K]
        for (let p = 0; p < k; p++) for (let r = 0; r < m; r++) at[r * k + p] = a[i * k * m + p * m + r];
        const want = matmul64(at, b.subarray(i * k * n, (i + 1) * k * n), m, n, k);
        if (accumulate) for (let j = 0; j < m * n; j++) want[j] += c0[i * m * n + j];
        assertClose(got.subarray(i * m * n, (i + 1) * m * n), want, 1e-5, `tn ${m}x${n}x${k} acc ${accumulate} batch ${i}/${batch}`);
      }
      for (const t of [ga, gb, gc]) t.buffer.destroy();
    }
  }
});

test('without tuning: the 8-row default (subgroup kernel where 8-lane subgroups exist), short-row variants for M <= 4', async () => {
  const gpu = await testGpu();
  const eight = gpu.subgroups8 ? 'sg-rows8' : 'rows8-wg16';
  assert.is(chooseVariant(gpu, matmulTunable, { m: 64, n: 64, k: 64 }), eight);
  assert.is(chooseVariant(gpu, matmulTunable, { m: 5, n: 64, k: 64 }), eight);
  assert.is(chooseVariant(gpu, matmulTunable, { m: 4, n: 64, k: 64 }), 'rows4-wg16');
  assert.is(chooseVariant(gpu, matmulTunable, { m: 3, n: 64, k: 64 }), 'rows4-wg16');
  assert.is(chooseVariant(gpu, matmulTunable, { m: 2, n: 64, k: 64 }), 'rows2-wg16');
  assert.is(chooseVariant(gpu, matmulTunable, { m: 1, n: 64, k: 64 }), 'rows1-wg16');
});

test.run();
