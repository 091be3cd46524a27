// Per-position masks (shaders/mask.wgsl) and the masked style loss (ops/mask.ts) against their float64 references.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PainterlyError } from '../../src/gpu/device.ts';
import { run } from '../../src/gpu/kernel.ts';
import { createTensor, destroyTensors, poison, readBuffers, readTensor, uploadTensor } from '../../src/gpu/tensor.ts';
import { createScalars } from '../../src/ops/loss.ts';
import { maskedScratch, maskedStyleLoss, maskMul, maskMulBackward, regionWeight } from '../../src/ops/mask.ts';
import { gram } from '../../src/reference/gram.ts';
import { styleLoss } from '../../src/reference/loss.ts';
import * as ref from '../../src/reference/mask.ts';
import { t64 } from '../../src/reference/tensor.ts';
import { assertClose, checkGradient, nextSeed, randArray, rng, testGpu } from '../helpers.ts';

const test = suite('mask');
const one = (re: RegExp) => (e: Error) => e instanceof PainterlyError && re.test(e.message) && !e.message.includes('\n');

// One channel and one position, odd planes, past one 256-wide workgroup, many workgroups.
for (const shape of [[1, 1, 1], [3, 5, 7], [16, 17, 19], [7, 1, 1000], [64, 33, 65]]) {
  test(`maskMul and maskMulBackward match float64 at [${shape}]`, async () => {
    const gpu = await testGpu();
    const n = shape[0] * shape[1] * shape[2], M = shape[1] * shape[2];
    const x = randArray(n, nextSeed()), m = randArray(M, nextSeed(), 0, 1), y0 = randArray(n, nextSeed());
    const gx = uploadTensor(gpu, x, shape, 'x'), gm = uploadTensor(gpu, m, [shape[1], shape[2]], 'm');
    const y = createTensor(gpu, shape, 'y');
    poison(gpu, y);
    run(gpu, maskMul(gpu, gx, gm, y));
    assertClose(await readTensor(gpu, y), ref.maskMul(t64(shape, x), m).data, 1e-7, 'y = m ⊙ x', 1);
    const dx = uploadTensor(gpu, y0, shape, 'dx');
    run(gpu, maskMulBackward(gpu, gx, gm, dx));
    const back = ref.maskMulBackward(t64(shape, x), m).data;
    assertClose(await readTensor(gpu, dx), y0.map((v, i) => v + back[i]), 1e-6, 'dx += m ⊙ dy', 1);
    destroyTensors(gx, gm, y, dx);
  });
}

test('reference: maskMulBackward is the gradient of <maskMul(x, m), r> (finite differences)', () => {
  const shape = [3, 4, 5], n = 60;
  const m = randArray(20, nextSeed(), 0, 1), r = randArray(n, nextSeed());
  const f = (x: Float64Array) => ref.maskMul(t64(shape, x), m).data.reduce((a, v, i) => a + v * r[i], 0);
  checkGradient(f, randArray(n, nextSeed()), ref.maskMulBackward(t64(shape, r), m).data, 'maskMul backward');
});

/** Soft masks for `k` regions over M positions that sum to 1 at each position (a partition of unity). */
function partition(k: number, M: number, seed: number): Float64Array[] {
  const r = rng(seed);
  const raw = Array.from({ length: k }, () => new Float64Array(M));
  for (let p = 0; p < M; p++) {
    // Mostly one region per position, soft near a few "edges".
    const main = Math.floor(r() * k);
    for (let j = 0; j < k; j++) raw[j][p] = j === main ? 1 : r() < 0.2 ? r() : 0;
    const s = raw.reduce((a, q) => a + q[p], 0);
    for (let j = 0; j < k; j++) raw[j][p] = Math.fround(raw[j][p] / s);
  }
  return raw;
}

test('reference: masked style loss gradient matches finite differences; one full mask is the unmasked E_l', () => {
  const N = 4, H = 5, W = 6, M = H * W;
  const F = t64([N, H, W], randArray(N * M, nextSeed(), 0, 1));
  const masks = partition(3, M, nextSeed());
  const targets = masks.map(() => gram(t64([N, M], randArray(N * M, nextSeed(), 0, 1)), 1 / M));
  const regions = masks.map((mask, i) => ({ mask, target: targets[i] }));
  const { loss, grad, terms } = ref.maskedStyleLoss(F, regions);
  assert.ok(terms.length === 3 && terms.every((t) => t > 0), 'every region contributes');
  assertClose([loss], [terms.reduce((a, b) => a + b, 0)], 1e-12, 'loss = Σ E_r');
  checkGradient((x) => ref.maskedStyleLoss(t64(F.shape, x), regions).loss, F.data.slice(), grad.data, 'masked style loss');
  // m = 1: E = (M/M) 1/(4N²) Σ (G/M − Â)² = 1/(4N²M²) Σ (G − M Â)², Gatys' E_l with A = M Â.
  const full = ref.maskedStyleLoss(F, [{ mask: new Float64Array(M).fill(1), target: targets[0] }]);
  const plain = styleLoss(F, t64([N, N], targets[0].data.map((v) => v * M)));
  assertClose([full.loss], [plain.loss], 1e-12, 'full mask = unmasked loss');
  assertClose(full.grad.data, plain.grad.data, 1e-12, 'full mask = unmasked gradient');
});

// N % 4 and M % 4 pick styleLoss's blocked-matmul or symmetric-product path: both.
for (const [N, H, W] of [[5, 7, 9], [8, 8, 10], [16, 13, 12]]) {
  test(`GPU masked style loss (3 regions) matches float64: loss per region and gradient [${N},${H},${W}]`, async () => {
    const gpu = await testGpu();
    const M = H * W;
    const Fd = randArray(N * M, nextSeed(), 0, 1);
    const F = uploadTensor(gpu, Fd, [N, H, W], 'F');
    const masks = partition(3, M, nextSeed());
    const targets = masks.map(() => gram(t64([N, M], randArray(N * M, nextSeed(), 0, 1)), 1 / M));
    const want = ref.maskedStyleLoss(t64([N, H, W], Fd), masks.map((mask, i) => ({ mask, target: targets[i] })));
    const g0 = randArray(N * M, nextSeed());
    const grad = uploadTensor(gpu, g0, [N, H, W], 'grad');
    const scalars = createScalars(gpu, 4);
    gpu.device.queue.writeBuffer(scalars, 0, new Float32Array([NaN, NaN, NaN, NaN]));
    const scratch = maskedScratch(gpu, F);
    poison(gpu, scratch.Fr); poison(gpu, scratch.dFr);
    const w = 2.5;
    const weights: number[] = [];
    const steps = masks.flatMap((m, i) => {
      const area = m.reduce((a, v) => a + v, 0);
      const region = { mask: uploadTensor(gpu, m, [H, W], `m${i}`), area, A: uploadTensor(gpu, targets[i].data.map((v) => v * area), [N, N], `A${i}`) };
      weights.push(regionWeight(w, region));
      return maskedStyleLoss(gpu, { F, region, grad, weight: weights[i], scalars, slot: i, ...scratch });
    });
    run(gpu, steps);
    const [s] = await readBuffers(gpu, [{ buffer: scalars, bytes: 16 }]);
    // The slot holds E'_r; weighted by regionWeight it is w·E_r.
    assertClose([0, 1, 2].map((i) => weights[i] * s[i]), want.terms.map((t) => w * t), 1e-4, 'w·E_r per region');
    assert.ok(Number.isNaN(s[3]), 'slot 3 untouched');
    assertClose(await readTensor(gpu, grad), g0.map((v, i) => v + w * want.grad.data[i]), 1e-4, 'grad += w dE/dF', Math.max(...want.grad.data.map((v) => Math.abs(w * v))));
    // A second run gives the same numbers (the scratch gradient is cleared each time).
    const before = await readTensor(gpu, grad);
    run(gpu, steps);
    const after = await readTensor(gpu, grad);
    assertClose(after, before.map((v, i) => v + w * want.grad.data[i]), 1e-6, 'second run adds the same gradient', 1);
  });
}

test('bad arguments are one-line PainterlyErrors', async () => {
  const gpu = await testGpu();
  const x = createTensor(gpu, [3, 4, 5], 'x'), m = createTensor(gpu, [4, 4], 'm'), y = createTensor(gpu, [3, 4, 5], 'y');
  assert.throws(() => maskMul(gpu, x, m, y), one(/maskMul: expected a mask of 20 positions like x \[3,4,5\], got \[4,4\]/));
  assert.throws(() => maskMul(gpu, x, createTensor(gpu, [4, 5], 'm2'), x), one(/not in place/));
  assert.throws(() => maskMul(gpu, createTensor(gpu, [60], 'flat'), m, y), one(/expected features/));
  const region = { mask: createTensor(gpu, [4, 5], 'm'), area: 0, A: createTensor(gpu, [3, 3], 'A') };
  assert.throws(() => maskedStyleLoss(gpu, { F: x, region, grad: y, weight: 1, scalars: createScalars(gpu, 1), slot: 0, ...maskedScratch(gpu, x) }), one(/positive area/));
});

test.run();
