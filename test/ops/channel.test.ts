import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PainterlyError } from '../../src/gpu/device.ts';
import { bind, run } from '../../src/gpu/kernel.ts';
import { createTensor, destroyTensors, poison, readTensor, uploadTensor } from '../../src/gpu/tensor.ts';
import { channelAffine, channelAffineBackward, channelMix, channelMixBackward, channelMoments, channelSpecs } from '../../src/ops/channel.ts';
import * as ref from '../../src/reference/channel.ts';
import { t64 } from '../../src/reference/tensor.ts';
import { assertClose, checkGradient, nextSeed, randArray, testGpu } from '../helpers.ts';

const test = suite('channel');

/** GPU moments of x (float32-representable values) vs the float64 reference: means then variances. */
async function checkMoments(shape: number[], x: Float64Array, rtol = 2e-6): Promise<Float32Array> {
  const gpu = await testGpu();
  const C = shape[0];
  const gx = uploadTensor(gpu, x, shape, 'x');
  const out = createTensor(gpu, [2 * C], 'moments');
  poison(gpu, out);
  run(gpu, channelMoments(gpu, gx, out));
  const got = await readTensor(gpu, out);
  const want = ref.channelMoments(t64(shape, x));
  let scale = 0;
  for (const v of x) scale = Math.max(scale, Math.abs(v));
  // Means against the data's magnitude (they can cancel to ~0), variances against the largest variance.
  assertClose(got.subarray(0, C), want.subarray(0, C), rtol, `means [${shape}]`, scale);
  assertClose(got.subarray(C), want.subarray(C), rtol, `variances [${shape}]`);
  destroyTensors(gx, out);
  return got;
}

// 1x1 (variance 0), odd planes, past one 16384-value chunk, several chunks with a short last one.
for (const shape of [[1, 1, 1], [3, 3, 5], [5, 7, 9], [16, 17, 16], [33, 8, 8], [2, 16385], [3, 3 * 16384 + 5], [1, 64, 64]]) {
  test(`channelMoments matches float64 at [${shape}]`, async () => {
    const n = shape.reduce((a, b) => a * b, 1);
    const got = await checkMoments(shape, randArray(n, nextSeed()));
    if (n === shape[0]) assert.equal([...got.subarray(shape[0])], new Array(shape[0]).fill(0), 'M = 1: variance 0');
  });
}

test('moments kernels merge many chunks (small chunks, a short last one) in the same way', async () => {
  // channelMoments picks 16384-value chunks; drive the kernels with other chunk sizes to exercise the merge.
  const gpu = await testGpu();
  const C = 3, M = 1001;
  const x = randArray(C * M, nextSeed(), 2, 3);
  const want = ref.channelMoments(t64([C, M], x));
  const gx = uploadTensor(gpu, x, [C, M], 'x');
  for (const chunk of [64, 100, 1000, 1001]) {
    const S = Math.ceil(M / chunk);
    const part = createTensor(gpu, [C, S, 2], 'part'), out = createTensor(gpu, [2 * C], 'out');
    poison(gpu, part); poison(gpu, out);
    const u = { C, M, S, chunk };
    run(gpu, [bind(gpu, channelSpecs.momentsPartial, { mpx: gx.buffer, mppart: part.buffer }, u, [S, C, 1]),
      bind(gpu, channelSpecs.momentsFinish, { mfpart: part.buffer, mfout: out.buffer }, u, 1)]);
    assertClose(await readTensor(gpu, out), want, 2e-6, `moments with chunk ${chunk}`);
    destroyTensors(part, out);
  }
  destroyTensors(gx);
});

test('channelMoments is sound with a large mean (no E[x²] - E[x]² cancellation) and per-channel scales', async () => {
  const shape = [4, 37, 29], M = 37 * 29;
  const u = randArray(4 * M, nextSeed());
  // Channel c: offset 10^c' and spread 10^-c'': the variance is tiny against the squared mean.
  const x = Float64Array.from(u, (v, k) => Math.fround([1000, -300, 1, 50][Math.floor(k / M)] + [1, 0.01, 3, 0.1][Math.floor(k / M)] * v));
  const gpu = await testGpu();
  const gx = uploadTensor(gpu, x, shape, 'x');
  const out = createTensor(gpu, [8], 'moments');
  poison(gpu, out);
  run(gpu, channelMoments(gpu, gx, out));
  const got = await readTensor(gpu, out);
  const want = ref.channelMoments(t64(shape, x));
  for (let c = 0; c < 4; c++) {
    assertClose([got[c]], [want[c]], 1e-6, `mean ${c}`);
    // Channel 1 (-300 ± 0.01) is the hard one: the float32 mean is off by up to ~ulp(300) = 3e-5, which adds δ² ~ 1e-9 to
    // a variance of 3e-5. (E[x²] - E[x]² in float32 would be off by ~ulp(9e4) = 8e-3: 100x the variance itself.)
    assertClose([got[4 + c]], [want[4 + c]], 1e-4, `variance ${c} (${want[4 + c]})`);
  }
});

test('channelMoments at 1024x1024 per channel: accurate, bit-identical across runs', async () => {
  const shape = [2, 1024, 1024];
  const x = randArray(2 * 1024 * 1024, nextSeed(), -1, 3);
  const a = await checkMoments(shape, x, 2e-6);
  const b = await checkMoments(shape, x, 2e-6);
  assert.equal([...a], [...b], 'same bits');
});

/** Runs channelAffine forward, backward, and both in place, against the float64 references. */
for (const shape of [[1, 1, 1], [3, 3, 5], [5, 7, 9], [16, 17, 16], [33, 16, 17], [2, 4097]]) {
  test(`channelAffine forward/backward (also in place) match float64 at [${shape}]`, async () => {
    const gpu = await testGpu();
    const C = shape[0], n = shape.reduce((a, b) => a * b, 1);
    const x = t64(shape, randArray(n, nextSeed()));
    const dy = t64(shape, randArray(n, nextSeed()));
    const coef = randArray(2 * C, nextSeed(), -2, 2);
    const gx = uploadTensor(gpu, x.data, shape, 'x'), gdy = uploadTensor(gpu, dy.data, shape, 'dy');
    const gc = uploadTensor(gpu, coef, [2 * C], 'coef');
    const gy = createTensor(gpu, shape, 'y'), gdx = createTensor(gpu, shape, 'dx');
    const inx = uploadTensor(gpu, x.data, shape, 'inx'), indy = uploadTensor(gpu, dy.data, shape, 'indy');
    poison(gpu, gy); poison(gpu, gdx);
    run(gpu, [
      ...channelAffine(gpu, gx, gc, gy), ...channelAffineBackward(gpu, gdy, gc, gdx),
      ...channelAffine(gpu, inx, gc, inx), ...channelAffineBackward(gpu, indy, gc, indy),
    ]);
    const wy = ref.channelAffine(x, coef).data, wdx = ref.channelAffineBackward(dy, coef).data;
    // One fused or separately rounded multiply-add: a couple of ulps of the inputs' scale (|a x|, |b| <= 2).
    assertClose(await readTensor(gpu, gy), wy, 1e-6, `affine [${shape}]`, 2);
    assertClose(await readTensor(gpu, inx), wy, 1e-6, `affine in place [${shape}]`, 2);
    assertClose(await readTensor(gpu, gdx), wdx, 1e-6, `affine backward [${shape}]`, 2);
    assertClose(await readTensor(gpu, indy), wdx, 1e-6, `affine backward in place [${shape}]`, 2);
    destroyTensors(gx, gdy, gc, gy, gdx, inx, indy);
  });
}

test('channelAffine standardises with coefficients computed from channelMoments (a = 1/std, b = -mean/std)', async () => {
  const gpu = await testGpu();
  const shape = [5, 9, 7];
  const x = randArray(5 * 63, nextSeed(), -3, 5);
  const gx = uploadTensor(gpu, x, shape, 'x');
  const m = createTensor(gpu, [10], 'moments');
  run(gpu, channelMoments(gpu, gx, m));
  const mv = await readTensor(gpu, m);
  const coef = [...Array(5).keys()].map((c) => 1 / Math.sqrt(mv[5 + c]));
  coef.push(...[...Array(5).keys()].map((c) => -mv[c] / Math.sqrt(mv[5 + c])));
  const gc = uploadTensor(gpu, coef, [10], 'coef');
  run(gpu, channelAffine(gpu, gx, gc, gx));
  const z = ref.channelMoments(t64(shape, await readTensor(gpu, gx)));
  assertClose(z, [0, 0, 0, 0, 0, 1, 1, 1, 1, 1], 1e-5, 'standardised moments', 1);
  destroyTensors(gx, m, gc);
});

/** channelMix forward (with/without bias) and backward vs float64, for x [Ci, ...pos] and T [Co, Ci]. */
async function checkMix(Ci: number, Co: number, pos: number[]): Promise<void> {
  const gpu = await testGpu();
  const M = pos.reduce((a, b) => a * b, 1);
  const xs = [Ci, ...pos], ys = [Co, ...pos];
  const x = t64(xs, randArray(Ci * M, nextSeed()));
  const dy = t64(ys, randArray(Co * M, nextSeed()));
  const T = randArray(Co * Ci, nextSeed());
  const bias = randArray(Co, nextSeed());
  const gx = uploadTensor(gpu, x.data, xs, 'x'), gdy = uploadTensor(gpu, dy.data, ys, 'dy');
  const gT = uploadTensor(gpu, T, [Co, Ci], 'T'), gb = uploadTensor(gpu, bias, [Co], 'bias');
  const gy = createTensor(gpu, ys, 'y'), gy0 = createTensor(gpu, ys, 'y0'), gdx = createTensor(gpu, xs, 'dx');
  for (const t of [gy, gy0, gdx]) poison(gpu, t);
  run(gpu, [...channelMix(gpu, gx, gT, gb, gy), ...channelMix(gpu, gx, gT, null, gy0), ...channelMixBackward(gpu, gdy, gT, gdx)]);
  const what = `Ci ${Ci} Co ${Co} [${pos}]`;
  // Sums of Ci (or Co) products of values in [-1, 1]: float32 error grows with the terms, not the result.
  const tol = (k: number) => 2e-7 * (k + 2);
  assertClose(await readTensor(gpu, gy), ref.channelMix(x, T, bias, Co).data, tol(Ci), `mix ${what}`, 1);
  assertClose(await readTensor(gpu, gy0), ref.channelMix(x, T, null, Co).data, tol(Ci), `mix without bias ${what}`, 1);
  assertClose(await readTensor(gpu, gdx), ref.channelMixBackward(dy, T, Ci).data, tol(Co), `mix backward ${what}`, 1);
  destroyTensors(gx, gdy, gT, gb, gy, gy0, gdx);
}

// Square (WCT) and rectangular; channel counts not multiples of 4; M odd (scalar path) and a multiple of 4 (vec4).
for (const [Ci, Co, pos] of [
  [1, 1, [1, 1]], [3, 3, [3, 5]], [5, 5, [7, 9]], [16, 16, [17, 16]], [33, 33, [4, 4]], [33, 33, [7, 9]],
  [3, 5, [6, 6]], [5, 3, [1, 7]], [16, 33, [19]], [64, 64, [32, 32]], [7, 2, [300]],
] as [number, number, number[]][]) {
  test(`channelMix forward and backward match float64: Ci ${Ci}, Co ${Co}, positions [${pos}]`, async () => {
    await checkMix(Ci, Co, pos);
  });
}

test('references match finite differences', () => {
  const shape = [3, 4, 5], M = 20;
  const x = randArray(3 * M, nextSeed());
  const coef = randArray(6, nextSeed());
  const w = randArray(3 * M, nextSeed());
  const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, v, i) => s + v * b[i], 0);
  checkGradient((v) => dot(ref.channelAffine(t64(shape, v), coef).data, w), x, ref.channelAffineBackward(t64(shape, w), coef).data, 'affine');
  const Co = 5;
  const T = randArray(Co * 3, nextSeed());
  const bias = randArray(Co, nextSeed());
  const wy = randArray(Co * M, nextSeed());
  checkGradient((v) => dot(ref.channelMix(t64(shape, v), T, bias, Co).data, wy), x,
    ref.channelMixBackward(t64([Co, 4, 5], wy), T, 3).data, 'mix');
});

test('moments reference by hand: torch.var convention (unbiased), 0 for one value', () => {
  const m = ref.channelMoments(t64([2, 4], [1, 2, 3, 4, 5, 5, 5, 5]));
  assert.equal([...m], [2.5, 5, 5 / 3, 0]);
  assert.equal([...ref.channelMoments(t64([1, 1], [7]))], [7, 0]);
});

test('bad shapes are one-line PainterlyErrors', async () => {
  const gpu = await testGpu();
  const one = (re: RegExp) => (e: Error) => e instanceof PainterlyError && re.test(e.message) && !e.message.includes('\n');
  const x = createTensor(gpu, [3, 4, 5], 'x');
  assert.throws(() => channelMoments(gpu, x, createTensor(gpu, [3], 'm')), one(/2 x channels = 6 values/));
  assert.throws(() => channelMoments(gpu, createTensor(gpu, [60], 'flat'), createTensor(gpu, [6], 'm')), one(/expected features \[C,H,W\] or \[C,M\]/));
  assert.throws(() => channelAffine(gpu, x, createTensor(gpu, [3], 'c'), createTensor(gpu, [3, 4, 5], 'y')), one(/2 x channels = 6/));
  assert.throws(() => channelAffine(gpu, x, createTensor(gpu, [6], 'c'), createTensor(gpu, [3, 5, 4], 'y')), one(/expected y \[3,4,5\]/));
  assert.throws(() => channelMix(gpu, x, createTensor(gpu, [3, 4], 'T'), null, createTensor(gpu, [3, 4, 5], 'y')), one(/expected matrix \[3,3\]/));
  assert.throws(() => channelMix(gpu, x, createTensor(gpu, [2, 3], 'T'), null, createTensor(gpu, [2, 20], 'y')), one(/positions/));
  assert.throws(() => channelMix(gpu, x, createTensor(gpu, [2, 3], 'T'), createTensor(gpu, [3], 'b'), createTensor(gpu, [2, 4, 5], 'y')),
    one(/output channels = 2/));
  assert.throws(() => channelMix(gpu, x, createTensor(gpu, [3, 3], 'T'), null, x), one(/not in place/));
  assert.throws(() => channelMixBackward(gpu, createTensor(gpu, [2, 4, 5], 'dy'), createTensor(gpu, [3, 2], 'T'), x), one(/expected matrix \[2,3\]/));
  assertClose([], [], 0, 'no GPU errors');
});

test.run();
