import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PainterlyError } from '../../src/gpu/device.ts';
import { bind, run } from '../../src/gpu/kernel.ts';
import { createTensor, destroyTensors, poison, readTensor, uploadTensor } from '../../src/gpu/tensor.ts';
import { channelAffine, channelAffineBackward, channelCopy, channelMix, channelMixBackward, channelMoments, channelSpecs } from '../../src/ops/channel.ts';
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

// ---- channelCopy: channel slices (concatenation and its backward) ----

// Odd channel counts and offsets; planes with M % 4 != 0 (scalar kernel) and == 0 (vec4); 2-D features.
const copies: [number[], number[], { srcC0?: number; dstC0?: number; channels?: number }][] = [
  [[3, 5, 7], [9, 5, 7], { dstC0: 5 }],
  [[7, 5, 7], [4, 5, 7], { srcC0: 2, dstC0: 1, channels: 3 }],
  [[5, 4, 6], [11, 4, 6], { dstC0: 3 }],                       // vec4
  [[5, 4, 6], [11, 4, 6], { srcC0: 1, dstC0: 7, channels: 4 }],
  [[1, 1, 1], [3, 1, 1], { dstC0: 2 }],
  [[3, 33, 35], [3, 33, 35], {}],
  [[13, 9], [13, 9], { srcC0: 4 }],                              // default: the rest of src
  [[2, 70, 70], [5, 70, 70], { dstC0: 3 }],                      // a larger plane: 38 workgroups of vec4s
];
for (const [ss, ds, opts] of copies) {
  test(`channelCopy [${ss}] -> [${ds}] ${JSON.stringify(opts)} (overwrite and accumulate) matches float64`, async () => {
    const gpu = await testGpu();
    const src = t64(ss, randArray(ss.reduce((a, b) => a * b, 1), nextSeed()));
    const dst = t64(ds, randArray(ds.reduce((a, b) => a * b, 1), nextSeed()));
    const gs = uploadTensor(gpu, src.data, ss, 'src');
    for (const accumulate of [false, true]) {
      // Untouched channels must keep their values, so dst starts from known values (NaN poison: next test).
      const gd = uploadTensor(gpu, dst.data, ds, 'dst');
      run(gpu, [channelCopy(gpu, gs, gd, { ...opts, accumulate })]);
      assertClose(await readTensor(gpu, gd), ref.channelCopy(src, dst, { ...opts, accumulate }).data, accumulate ? 1e-7 : 0,
        `channelCopy ${JSON.stringify({ ...opts, accumulate })}`);
      destroyTensors(gd);
    }
    destroyTensors(gs);
  });
}

test('concatenation (one channelCopy per input) into a NaN-poisoned output, and its backward with accumulation', async () => {
  const gpu = await testGpu();
  for (const [h, w] of [[5, 7], [4, 4]]) {
    const cs = [3, 5, 1];
    const xs = cs.map((c) => t64([c, h, w], randArray(c * h * w, nextSeed())));
    const C = cs.reduce((a, b) => a + b, 0);
    const gxs = xs.map((x, i) => uploadTensor(gpu, x.data, x.shape, `x${i}`));
    const gy = createTensor(gpu, [C, h, w], 'y');
    poison(gpu, gy);
    const offsets = [0, 3, 8];
    run(gpu, gxs.map((g, i) => channelCopy(gpu, g, gy, { dstC0: offsets[i] })));
    const want = ref.concatChannels(xs);
    assertClose(await readTensor(gpu, gy), want.data, 0, `concat ${h}x${w}`);
    // Backward: dx_i = dy[offset_i : offset_i + C_i]; input 1 already holds another consumer's gradient.
    const dy = t64([C, h, w], randArray(C * h * w, nextSeed()));
    const other = t64([5, h, w], randArray(5 * h * w, nextSeed()));
    const gdy = uploadTensor(gpu, dy.data, dy.shape, 'dy');
    const gdx = cs.map((c, i) => createTensor(gpu, [c, h, w], `dx${i}`));
    poison(gpu, gdx[0]);
    poison(gpu, gdx[2]);
    gpu.device.queue.writeBuffer(gdx[1].buffer, 0, Float32Array.from(other.data));
    run(gpu, gdx.map((g, i) => channelCopy(gpu, gdy, g, { srcC0: offsets[i], channels: cs[i], accumulate: i === 1 })));
    for (let i = 0; i < 3; i++) {
      const zero = t64([cs[i], h, w]);
      const wantDx = ref.channelCopy(dy, i === 1 ? other : zero, { srcC0: offsets[i], channels: cs[i], accumulate: i === 1 });
      assertClose(await readTensor(gpu, gdx[i]), wantDx.data, 1e-7, `concat backward input ${i} ${h}x${w}`);
    }
    destroyTensors(...gxs, gy, gdy, ...gdx);
  }
});

test('concat reference backward (dy slices) matches finite differences', () => {
  const cs = [2, 3];
  const xs = cs.map((c) => t64([c, 3, 2], randArray(c * 6, nextSeed())));
  const g = randArray(5 * 6, nextSeed());
  const dy = t64([5, 3, 2], g);
  for (const i of [0, 1]) {
    const loss = (v: Float64Array) => ref.concatChannels(xs.map((x, j) => (j === i ? t64(x.shape, v) : x))).data.reduce((a, y, k) => a + g[k] * y, 0);
    const dx = ref.channelCopy(dy, t64(xs[i].shape), { srcC0: i === 0 ? 0 : 2, channels: cs[i] });
    checkGradient(loss, xs[i].data, dx.data, `concat input ${i}`, { samples: xs[i].data.length });
  }
});

test('channelCopy: bad options are one-line PainterlyErrors', async () => {
  const gpu = await testGpu();
  const a = createTensor(gpu, [3, 4, 5], 'a');
  const b = createTensor(gpu, [6, 4, 5], 'b');
  const one = (re: RegExp) => (e: Error) => e instanceof PainterlyError && re.test(e.message) && !e.message.includes('\n');
  assert.throws(() => channelCopy(gpu, a, createTensor(gpu, [6, 5, 4], 'c')), one(/a \[3,4,5\] and c \[6,5,4\] must have the same H,W/));
  assert.throws(() => channelCopy(gpu, a, b, { dstC0: 4 }), one(/channels 4\.\.6 are past b's 6 channels/));
  assert.throws(() => channelCopy(gpu, a, b, { srcC0: 1, channels: 3 }), one(/channels 1\.\.3 are past a's 3 channels/));
  assert.throws(() => channelCopy(gpu, a, b, { srcC0: 3 }), one(/channels must be an integer >= 1, got 0/));
  assert.throws(() => channelCopy(gpu, a, b, { dstC0: -1 }), one(/dstC0 must be an integer >= 0/));
  assert.throws(() => channelCopy(gpu, b, b, { channels: 2, dstC0: 3 }), one(/must be different buffers/));
  assertClose([], [], 0, 'no GPU errors');
});

test.run();
