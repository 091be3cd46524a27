import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PainterlyError, type Gpu } from '../../src/gpu/device.ts';
import { run, type Step } from '../../src/gpu/kernel.ts';
import { readBuffers, readTensor, uploadTensor, type Tensor } from '../../src/gpu/tensor.ts';
import { contentLoss, createScalars, styleLoss, tvLoss, type LossSteps } from '../../src/ops/loss.ts';
import { gram } from '../../src/reference/gram.ts';
import * as ref from '../../src/reference/loss.ts';
import { t64, type T64 } from '../../src/reference/tensor.ts';
import { assertClose, checkGradient, nextSeed, randArray, testGpu } from '../helpers.ts';

const test = suite('loss');
const SLOTS = 3;

async function readScalars(gpu: Gpu, scalars: GPUBuffer): Promise<Float32Array> {
  const [v] = await readBuffers(gpu, [{ buffer: scalars, bytes: SLOTS * 4 }]);
  return v;
}

/** A scalars buffer poisoned with NaN, so a loss writing the wrong slot (or none) is caught. */
function poisonedScalars(gpu: Gpu): GPUBuffer {
  const s = createScalars(gpu, SLOTS);
  gpu.device.queue.writeBuffer(s, 0, new Float32Array(SLOTS).fill(NaN));
  return s;
}

/** grad pre-filled with values of the same magnitude as the loss gradient, to check that it accumulates. */
function prefill(want: T64, weight: number): Float64Array {
  let s = 0;
  for (const v of want.data) s = Math.max(s, Math.abs(v));
  return randArray(want.data.length, nextSeed(), -s * Math.abs(weight), s * Math.abs(weight));
}

/** Runs a loss on a grad pre-filled with g0 and checks scalars[slot] and grad = g0 + weight * dL. */
async function check(
  gpu: Gpu, what: string, make: (grad: Tensor, scalars: GPUBuffer, slot: number) => LossSteps, shape: number[],
  want: { loss: number; grad: T64 }, weight: number, slot: number, rtol: number,
): Promise<void> {
  const g0 = prefill(want.grad, weight);
  const grad = uploadTensor(gpu, g0, shape, 'grad');
  const scalars = poisonedScalars(gpu);
  const { steps } = make(grad, scalars, slot);
  run(gpu, steps);
  const vals = await readScalars(gpu, scalars);
  assertClose([vals[slot]], [want.loss], rtol, `${what} loss`);
  for (let s = 0; s < SLOTS; s++) if (s !== slot) assert.ok(Number.isNaN(vals[s]), `${what}: slot ${s} untouched`);
  assertClose(await readTensor(gpu, grad), g0.map((g, i) => g + weight * want.grad.data[i]), rtol, `${what} grad`);
}

for (const shape of [[1, 1, 1], [3, 7, 5], [64, 33, 17], [512, 4, 4]]) {
  test(`content loss matches float64 at [${shape}]`, async () => {
    const gpu = await testGpu();
    const n = shape[0] * shape[1] * shape[2];
    const F = t64(shape, randArray(n, nextSeed())), P = t64(shape, randArray(n, nextSeed()));
    const gF = uploadTensor(gpu, F.data, shape, 'F'), gP = uploadTensor(gpu, P.data, shape, 'P');
    const weight = 0.37;
    await check(gpu, `content [${shape}]`, (grad, scalars, slot) => contentLoss(gpu, { F: gF, P: gP, grad, weight, scalars, slot }),
      shape, ref.contentLoss(F, P), weight, 1, 1e-5);
  });
}

// N not a multiple of 8, M unaligned and aligned, VGG style layers at a 32x32 image (relu1_1 .. relu5_1), and
// N, M multiples of 4 with M / 64 > 65535 (the blocked matmul's grid would not fit: the folded product takes over).
for (const shape of [[1, 1, 1], [3, 2, 3], [13, 5, 7], [20, 12, 12], [64, 32, 32], [128, 16, 16], [256, 8, 8], [512, 4, 4], [512, 2, 2], [4, 2, 2097282]]) {
  test(`style loss matches float64 at [${shape}]`, async () => {
    const gpu = await testGpu();
    const [N] = shape;
    const M = shape[1] * shape[2];
    // ReLU-like features; the target Gram comes from other features so that G - A does not cancel.
    const F = t64(shape, randArray(N * M, nextSeed(), 0, 1));
    const A = gram(t64(shape, randArray(N * M, nextSeed(), 0, 1.5)));
    const gF = uploadTensor(gpu, F.data, shape, 'F'), gA = uploadTensor(gpu, A.data, [N, N], 'A');
    const weight = 1e3;
    await check(gpu, `style [${shape}]`, (grad, scalars, slot) => styleLoss(gpu, { F: gF, A: gA, grad, weight, scalars, slot }),
      shape, ref.styleLoss(F, A), weight, 2, 1e-4);
  });
}

for (const shape of [[1, 1, 1], [1, 1, 6], [2, 5, 1], [3, 7, 5], [3, 64, 65]]) {
  test(`total variation loss matches float64 at [${shape}]`, async () => {
    const gpu = await testGpu();
    const n = shape[0] * shape[1] * shape[2];
    const x = t64(shape, randArray(n, nextSeed()));
    const gx = uploadTensor(gpu, x.data, shape, 'x');
    const weight = 0.01;
    await check(gpu, `tv [${shape}]`, (grad, scalars, slot) => tvLoss(gpu, { x: gx, grad, weight, scalars, slot }),
      shape, ref.tvLoss(x), weight, 0, 1e-5);
  });
}

test('loss values are bit-identical across runs, and setWeight changes only the gradient', async () => {
  const gpu = await testGpu();
  const shape = [64, 40, 41];
  const n = 64 * 40 * 41;
  const F = t64(shape, randArray(n, nextSeed(), 0, 1));
  const gF = uploadTensor(gpu, F.data, shape, 'F');
  const gP = uploadTensor(gpu, randArray(n, nextSeed()), shape, 'P');
  const gA = uploadTensor(gpu, gram(t64(shape, randArray(n, nextSeed(), 0, 1))).data, [64, 64], 'A');
  const grad = uploadTensor(gpu, new Float32Array(n), shape, 'grad');
  const scalars = createScalars(gpu, SLOTS);
  const losses = [
    contentLoss(gpu, { F: gF, P: gP, grad, weight: 1, scalars, slot: 0 }),
    styleLoss(gpu, { F: gF, A: gA, grad, weight: 1, scalars, slot: 1 }),
    tvLoss(gpu, { x: gF, grad, weight: 1, scalars, slot: 2 }),
  ];
  const steps: Step[] = losses.flatMap((l) => l.steps);
  run(gpu, steps);
  const first = [...await readScalars(gpu, scalars)];
  const g1 = await readTensor(gpu, grad);
  gpu.device.queue.writeBuffer(scalars, 0, new Float32Array(SLOTS));
  for (const l of losses) l.setWeight(gpu, 0);
  run(gpu, steps);
  assert.equal([...await readScalars(gpu, scalars)], first, 'identical loss values');
  assert.equal([...await readTensor(gpu, grad)], [...g1], 'weight 0 adds nothing');
  const want = [ref.contentLoss(F, t64(shape, await readTensor(gpu, gP))).loss];
  assertClose([first[0]], want, 1e-5, 'content value');
});

test('references match finite differences', () => {
  const shape = [3, 3, 4];
  const n = 36;
  const x = t64(shape, randArray(n, nextSeed()));
  const P = t64(shape, randArray(n, nextSeed()));
  const A = gram(t64(shape, randArray(n, nextSeed())));
  checkGradient((v) => ref.contentLoss(t64(shape, v), P).loss, x.data, ref.contentLoss(x, P).grad.data, 'content');
  checkGradient((v) => ref.styleLoss(t64(shape, v), A).loss, x.data, ref.styleLoss(x, A).grad.data, 'style');
  checkGradient((v) => ref.tvLoss(t64(shape, v)).loss, x.data, ref.tvLoss(x).grad.data, 'tv');
});

test('bad arguments are one-line PainterlyErrors', async () => {
  const gpu = await testGpu();
  const F = uploadTensor(gpu, new Float32Array(24), [2, 3, 4], 'F');
  const P = uploadTensor(gpu, new Float32Array(24), [3, 2, 4], 'P');
  const A = uploadTensor(gpu, new Float32Array(9), [3, 3], 'A');
  const scalars = createScalars(gpu, 2);
  const is = (re: RegExp) => (e: Error) => e instanceof PainterlyError && re.test(e.message) && !e.message.includes('\n');
  assert.throws(() => contentLoss(gpu, { F, P, grad: F, weight: 1, scalars, slot: 0 }), is(/to match F \[2,3,4\]/));
  assert.throws(() => styleLoss(gpu, { F, A, grad: F, weight: 1, scalars, slot: 0 }), is(/target Gram A \[2,2\]/));
  assert.throws(() => tvLoss(gpu, { x: F, grad: F, weight: 1, scalars, slot: 4 }), is(/slot in 0\.\.3/));
  assert.throws(() => createScalars(gpu, 0), is(/positive slot count/));
});

test.run();
