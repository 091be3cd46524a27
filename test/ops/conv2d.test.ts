import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openDawnGpu } from '../../src/gpu/dawn.ts';
import { PainterlyError, type Gpu } from '../../src/gpu/device.ts';
import { run } from '../../src/gpu/kernel.ts';
import { createTensor, poison, readTensor, uploadTensor, writeTensor } from '../../src/gpu/tensor.ts';
import {
  conv2dBackwardBias, conv2dBackwardInput, conv2dBackwardWeight, conv2dForward, convAlgorithmFor, convOutputSize,
  convDirectTunable, inputGradMasks, weightGradAlgorithm, prepareConv, winogradChunkRows, type ConvAlgorithm, type ConvPad,
} from '../../src/ops/conv2d.ts';
import { chooseVariant, fixVariant } from '../../src/gpu/tune.ts';
import { matmulConvSteps, stridedForwardSteps } from '../../src/ops/conv_strided.ts';
import { bindMatmul, matmul } from '../../src/ops/matmul.ts';
import * as ref from '../../src/reference/conv2d.ts';
import { reluForward as reluRef } from '../../src/reference/relu.ts';
import { t64 } from '../../src/reference/tensor.ts';
import { assertClose, checkGradient, nextSeed, randArray, testGpu } from '../helpers.ts';

const test = suite('conv2d');

// float32 sums of up to 512*9 products: direct lands near 1e-6 relative to max|want|, Winograd F(4x4,3x3) near
// 1e-5 (its transforms scale values by up to ~10^2 before cancelling).
const RTOL_DIRECT = 2e-5;
const RTOL_WINO = 1e-4;

interface Case { cin: number; cout: number; h: number; w: number; k: number; pad?: ConvPad }

async function checkAll(gpu: Gpu, c: Case, algorithm: ConvAlgorithm, expect?: string): Promise<void> {
  const { cin, cout, h, w, k } = c;
  const pad = c.pad ?? 'zeros';
  const x = t64([cin, h, w], randArray(cin * h * w, nextSeed()));
  const wt = t64([cout, cin, k, k], randArray(cout * cin * k * k, nextSeed(), -0.5, 0.5));
  const b = t64([cout], randArray(cout, nextSeed()));
  const dy = t64([cout, h, w], randArray(cout * h * w, nextSeed()));
  const gx = uploadTensor(gpu, x.data, x.shape, 'x');
  const gw = uploadTensor(gpu, wt.data, wt.shape, 'w');
  const gb = uploadTensor(gpu, b.data, b.shape, 'b');
  const gdy = uploadTensor(gpu, dy.data, dy.shape, 'dy');
  const gy = createTensor(gpu, [cout, h, w], 'y');
  const gdx = createTensor(gpu, [cin, h, w], 'dx');
  const gdw = createTensor(gpu, wt.shape, 'dw');
  const gdb = createTensor(gpu, [cout], 'db');
  for (const t of [gy, gdx, gdw, gdb]) poison(gpu, t);
  const layer = prepareConv(gpu, gw, gb, { algorithm, pad });
  assert.is(layer.pad, pad);
  const algo = convAlgorithmFor(gpu, layer, h, w);
  if (expect) assert.equal(algo, { forward: expect, input: expect }, 'algorithm');
  const wAlgorithm = algorithm === 'winograd' || algorithm === 'direct' ? algorithm : 'auto';
  const wgrad = weightGradAlgorithm(gpu, cin, cout, k, h, w, wAlgorithm);
  if (expect === 'winograd' || expect === 'direct') assert.is(wgrad, expect, 'weight-grad algorithm');
  run(gpu, [
    ...conv2dForward(gpu, layer, gx, gy), ...conv2dBackwardInput(gpu, layer, gdy, gdx),
    ...conv2dBackwardWeight(gpu, gx, gdy, gdw, pad, { algorithm: wAlgorithm }), ...conv2dBackwardBias(gpu, gdy, gdb),
  ]);
  const what = `[${cin}->${cout} ${h}x${w} K${k} ${pad}]`;
  const tol = (a: string) => (a === 'winograd' ? RTOL_WINO : RTOL_DIRECT);
  assertClose(await readTensor(gpu, gy), ref.conv2dForward(x, wt, b, pad).data, tol(algo.forward), `forward ${algo.forward} ${what}`);
  assertClose(await readTensor(gpu, gdx), ref.conv2dBackwardInput(dy, wt, pad).data, tol(algo.input), `input grad ${algo.input} ${what}`);
  assertClose(await readTensor(gpu, gdw), ref.conv2dBackwardWeight(x, dy, k, pad).data, tol(wgrad), `weight grad ${wgrad} ${what}`);
  assertClose(await readTensor(gpu, gdb), ref.conv2dBackwardBias(dy).data, RTOL_DIRECT, `bias grad ${what}`);
}

const small: Case[] = [
  { cin: 3, cout: 5, h: 7, w: 9, k: 3 },
  { cin: 3, cout: 5, h: 1, w: 1, k: 3 },
  { cin: 2, cout: 3, h: 6, w: 5, k: 1 },
  { cin: 3, cout: 4, h: 9, w: 11, k: 5 },
  { cin: 5, cout: 9, h: 67, w: 3, k: 3 },     // past the direct kernel's 64-quad workgroup and 8-channel blocks
  { cin: 3, cout: 5, h: 5, w: 8, k: 3 },      // W % 4 == 0: vec4 row loads and stores
  { cin: 3, cout: 4, h: 7, w: 12, k: 5 },
  { cin: 2, cout: 6, h: 5, w: 4, k: 5 },      // one quad per row: taps reach past both edges
];
for (const c of small) {
  test(`direct ${c.cin}->${c.cout} ${c.h}x${c.w} K${c.k} matches float64`, async () => {
    await checkAll(await testGpu(), c, 'auto', 'direct');
  });
}

const winoCases: Case[] = [
  { cin: 4, cout: 8, h: 1, w: 1, k: 3 },
  { cin: 8, cout: 12, h: 13, w: 17, k: 3 },   // partial tiles on both edges
  { cin: 12, cout: 4, h: 4, w: 8, k: 3 },     // exact tiles
  { cin: 8, cout: 12, h: 11, w: 12, k: 3 },   // W % 4 == 0: vec4 loads and stores, partial tiles at the bottom
  { cin: 16, cout: 8, h: 7, w: 4, k: 3 },     // one tile column: both row neighbours outside the image
  { cin: 68, cout: 72, h: 9, w: 70, k: 3 },   // past the GEMM's 64-column and 8-row blocks
];
for (const c of winoCases) {
  for (const algorithm of ['winograd', 'direct'] as const) {
    test(`${algorithm} ${c.cin}->${c.cout} ${c.h}x${c.w} matches float64`, async () => {
      await checkAll(await testGpu(), c, algorithm, algorithm);
    });
  }
}

// VGG19 layer shapes at small images, with the algorithm the library picks.
const vgg: Case[] = [
  { cin: 3, cout: 64, h: 20, w: 18, k: 3 },
  { cin: 64, cout: 64, h: 20, w: 18, k: 3 },
  { cin: 128, cout: 256, h: 9, w: 7, k: 3 },
  { cin: 512, cout: 512, h: 5, w: 3, k: 3 },
];
for (const c of vgg) {
  test(`VGG ${c.cin}->${c.cout} at ${c.h}x${c.w} matches float64`, async () => {
    await checkAll(await testGpu(), c, 'auto', c.cin === 3 ? undefined : 'winograd');
  });
}

// Reflection padding (ReflectionPad2d((K-1)/2) + valid conv), both paths forced. Sizes from the smallest allowed
// (2x2 for K = 3: both neighbours of each pixel are the same reflected pixel) through partial Winograd tiles, W % 4 == 0
// (vec4 loads with the reflection taken from the middle vec4), W = 4 (one quad: both edges in it), H = 3 (rows 1 and
// H-2 coincide: the ring kernel must not count them twice) and more than 64 quads (past the direct workgroup).
const reflectWino: Case[] = [
  { cin: 16, cout: 32, h: 2, w: 2, k: 3 },
  { cin: 32, cout: 16, h: 3, w: 5, k: 3 },
  { cin: 16, cout: 16, h: 7, w: 9, k: 3 },
  { cin: 16, cout: 32, h: 17, w: 16, k: 3 },   // 5 tile rows (last partial), 68 quads, aligned
  { cin: 8, cout: 12, h: 13, w: 17, k: 3 },    // partial tiles on both edges
  { cin: 4, cout: 8, h: 5, w: 4, k: 3 },       // one tile column, aligned: left and right reflections from one vec4
  { cin: 12, cout: 4, h: 4, w: 2, k: 3 },
  { cin: 4, cout: 8, h: 9, w: 3, k: 3 },       // W = 3: column 1 receives from both -1 and W
];
for (const c of reflectWino) {
  for (const algorithm of ['winograd', 'direct'] as const) {
    test(`reflect ${algorithm} ${c.cin}->${c.cout} ${c.h}x${c.w} matches float64`, async () => {
      await checkAll(await testGpu(), { ...c, pad: 'reflect' }, algorithm, algorithm);
    });
  }
}
const reflectDirect: Case[] = [
  { cin: 3, cout: 5, h: 2, w: 2, k: 3 },
  { cin: 3, cout: 16, h: 3, w: 5, k: 3 },
  { cin: 3, cout: 32, h: 7, w: 9, k: 3 },
  { cin: 5, cout: 6, h: 17, w: 16, k: 3 },     // 68 quads: past the 64-quad workgroup; aligned
  { cin: 6, cout: 3, h: 67, w: 3, k: 3 },
  { cin: 3, cout: 7, h: 2, w: 8, k: 3 },       // aligned, two quads per row
  { cin: 3, cout: 4, h: 3, w: 3, k: 5 },       // K = 5: pad 2 = H - 1, rows 1, 2 and 0, 1 receive ring terms
  { cin: 2, cout: 5, h: 9, w: 12, k: 5 },      // K = 5, aligned
  { cin: 2, cout: 3, h: 6, w: 5, k: 1 },       // K = 1: nothing to pad
];
for (const c of reflectDirect) {
  test(`reflect direct ${c.cin}->${c.cout} ${c.h}x${c.w} K${c.k} matches float64`, async () => {
    await checkAll(await testGpu(), { ...c, pad: 'reflect' }, 'auto', 'direct');
  });
}
test('reflect VGG-like 64->64 at 20x18 (auto: Winograd) matches float64', async () => {
  await checkAll(await testGpu(), { cin: 64, cout: 64, h: 20, w: 18, k: 3, pad: 'reflect' }, 'auto', 'winograd');
});

// Every direct-conv variant (the autotuner may pick any) against float64, outputs poisoned: odd sizes, W % 4 != 0
// (scalar stores) and == 0 (vec4 stores), both pads, the smallest reflect image (2x2), 1x1, past 64 quads, output
// channels not a multiple of 4 and past 16, and layers where the variant also runs the input grad (Cout <= 4).
const directVariantCases: Case[] = [
  { cin: 3, cout: 64, h: 20, w: 18, k: 3 },
  { cin: 3, cout: 64, h: 9, w: 16, k: 3, pad: 'reflect' },
  { cin: 3, cout: 5, h: 7, w: 9, k: 3, pad: 'reflect' },
  { cin: 1, cout: 7, h: 17, w: 21, k: 3 },
  { cin: 4, cout: 3, h: 13, w: 11, k: 3, pad: 'reflect' },     // input grad (A = 3) on the variant too
  { cin: 2, cout: 4, h: 9, w: 8, k: 3 },                     // both directions on the variant, aligned
  { cin: 3, cout: 20, h: 67, w: 5, k: 3 },                   // > 64 quads
  { cin: 3, cout: 6, h: 2, w: 2, k: 3, pad: 'reflect' },
  { cin: 3, cout: 6, h: 3, w: 4, k: 3, pad: 'reflect' },     // one quad per row: both reflected edges in it
  { cin: 3, cout: 5, h: 1, w: 1, k: 3 },
  { cin: 3, cout: 4, h: 9, w: 11, k: 5 },                    // K = 5: only the default applies
];
for (const v of convDirectTunable.variants) {
  test(`direct conv variant ${v.id} matches float64 (poisoned, odd sizes, both pads, both directions)`, async () => {
    const gpu = await testGpu();
    fixVariant(gpu, 'conv_direct', v.id);
    try {
      for (const c of directVariantCases) {
        const d = { a: c.cin, b: c.cout, k: c.k, h: c.h, w: c.w };
        const applies = convDirectTunable.applies!(gpu, d, v.id);
        const fallback = convDirectTunable.variants.map((x) => x.id).find((id) => convDirectTunable.applies!(gpu, d, id));
        assert.is(chooseVariant(gpu, convDirectTunable, d), applies ? v.id : fallback, `variant for [${c.cin}->${c.cout}]`);
        await checkAll(gpu, c, 'direct', 'direct');
      }
    } finally {
      fixVariant(gpu, 'conv_direct', undefined);
    }
  });
  test(`direct conv variant ${v.id}: fused ReLU equals max(conv, 0) of the float64 reference`, async () => {
    const gpu = await testGpu();
    fixVariant(gpu, 'conv_direct', v.id);
    try {
      for (const c of [{ cin: 3, cout: 12, h: 7, w: 9, k: 3, pad: 'zeros' }, { cin: 3, cout: 64, h: 6, w: 8, k: 3, pad: 'reflect' }] as Case[]) {
        const { cin, cout, h, w, k } = c;
        const x = t64([cin, h, w], randArray(cin * h * w, nextSeed()));
        const wt = t64([cout, cin, k, k], randArray(cout * cin * k * k, nextSeed(), -0.5, 0.5));
        const b = t64([cout], randArray(cout, nextSeed(), -0.2, 0.2));
        const layer = prepareConv(gpu, uploadTensor(gpu, wt.data, wt.shape, 'w'), uploadTensor(gpu, b.data, b.shape, 'b'), { pad: c.pad });
        const gy = createTensor(gpu, [cout, h, w], 'y');
        poison(gpu, gy);
        run(gpu, conv2dForward(gpu, layer, uploadTensor(gpu, x.data, x.shape, 'x'), gy, undefined, { relu: true }));
        const want = reluRef(ref.conv2dForward(x, wt, b, c.pad)).data;
        assert.ok(want.some((y) => y === 0) && want.some((y) => y > 0), 'both sides of the ReLU');
        assertClose(await readTensor(gpu, gy), want, RTOL_DIRECT, `fused relu ${v.id} [${cin}->${cout} ${h}x${w} ${c.pad}]`);
      }
    } finally {
      fixVariant(gpu, 'conv_direct', undefined);
    }
  });
}

test('reflect is not zeros: GPU reflect results differ from the zero-padded reference on the border', async () => {
  const gpu = await testGpu();
  for (const algorithm of ['direct', 'winograd'] as const) {
    const [cin, cout, h, w] = [8, 8, 6, 7];
    const x = t64([cin, h, w], randArray(cin * h * w, nextSeed(), 0.5, 1));   // positive: the border terms cannot cancel
    const wt = t64([cout, cin, 3, 3], randArray(cout * cin * 9, nextSeed(), 0.5, 1));
    const b = t64([cout], randArray(cout, nextSeed()));
    const dy = t64([cout, h, w], randArray(cout * h * w, nextSeed(), 0.5, 1));
    const layer = prepareConv(gpu, uploadTensor(gpu, wt.data, wt.shape, 'w'), uploadTensor(gpu, b.data, b.shape, 'b'),
      { algorithm, pad: 'reflect' });
    const gy = createTensor(gpu, [cout, h, w], 'y');
    const gdx = createTensor(gpu, [cin, h, w], 'dx');
    run(gpu, [...conv2dForward(gpu, layer, uploadTensor(gpu, x.data, x.shape, 'x'), gy),
      ...conv2dBackwardInput(gpu, layer, uploadTensor(gpu, dy.data, dy.shape, 'dy'), gdx)]);
    const y = await readTensor(gpu, gy);
    const dx = await readTensor(gpu, gdx);
    const gap = (got: Float32Array, want: Float64Array) => got.reduce((m, v, i) => Math.max(m, Math.abs(v - want[i])), 0);
    assert.ok(gap(y, ref.conv2dForward(x, wt, b, 'zeros').data) > 1, `${algorithm} forward equals the zero-padded one`);
    assert.ok(gap(dx, ref.conv2dBackwardInput(dy, wt, 'zeros').data) > 1, `${algorithm} input grad equals the zero-padded one`);
    assert.ok(gap(y, ref.conv2dForward(x, wt, b, 'reflect').data) < 1e-3, `${algorithm} forward`);
    assert.ok(gap(dx, ref.conv2dBackwardInput(dy, wt, 'reflect').data) < 1e-3, `${algorithm} input grad`);
  }
});

test('Winograd chunked by tile rows under a tiny binding limit matches float64 and the unchunked result', async () => {
  const limit = 16 * 1024;
  const small = await openDawnGpu({ maxStorageBindingBytes: limit });
  try {
    const big = await testGpu();
    const c = { cin: 8, cout: 8, h: 19, w: 24, k: 3 };
    assert.ok(winogradChunkRows(small, 8, 8, c.h, c.w) < Math.ceil(c.h / 4), 'the limit must force several chunks');
    assert.ok(winogradChunkRows(small, 8, 8, c.h, c.w) >= 1);
    await checkAll(small, c, 'winograd', 'winograd');
    // Same data on both devices: the chunked result equals the unchunked one (same arithmetic per tile).
    const x = randArray(c.cin * c.h * c.w, nextSeed());
    const w = randArray(c.cout * c.cin * 9, nextSeed(), -0.5, 0.5);
    const b = randArray(c.cout, nextSeed());
    const outs: Float32Array[] = [];
    for (const gpu of [small, big]) {
      const gx = uploadTensor(gpu, x, [c.cin, c.h, c.w], 'x');
      const layer = prepareConv(gpu, uploadTensor(gpu, w, [c.cout, c.cin, 3, 3], 'w'), uploadTensor(gpu, b, [c.cout], 'b'),
        { algorithm: 'winograd' });
      const gy = createTensor(gpu, [c.cout, c.h, c.w], 'y');
      poison(gpu, gy);
      const steps = conv2dForward(gpu, layer, gx, gy);
      assert.ok(gpu === big ? steps.length === 3 : steps.length > 3, 'chunk count');
      run(gpu, steps);
      outs.push(await readTensor(gpu, gy));
    }
    assertClose(outs[0], outs[1], 0, 'chunked vs unchunked');
  } finally {
    small.destroy();
  }
});

// The ReLU's backward fused into the input gradient: dy read as dy * [y > 0], y a ReLU output (half of it zeros).
// Aligned and unaligned widths, partial tiles, and several chunks under a tiny binding limit.
test('input grad with the following ReLU fused (reluOutput) matches float64 of conv_transpose(dy * [y > 0])', async () => {
  const big = await testGpu();
  const small = await openDawnGpu({ maxStorageBindingBytes: 16 * 1024 });
  try {
    for (const [gpu, c] of [[big, { cin: 16, cout: 20, h: 13, w: 17 }], [big, { cin: 24, cout: 16, h: 11, w: 12 }],
      [small, { cin: 8, cout: 8, h: 19, w: 24 }]] as const) {
      const wt = t64([c.cout, c.cin, 3, 3], randArray(c.cout * c.cin * 9, nextSeed(), -0.5, 0.5));
      const dy = t64([c.cout, c.h, c.w], randArray(c.cout * c.h * c.w, nextSeed()));
      const y = t64([c.cout, c.h, c.w], randArray(c.cout * c.h * c.w, nextSeed()).map((v) => Math.max(0, v - 0.5)));
      const layer = prepareConv(gpu, uploadTensor(gpu, wt.data, wt.shape, 'w'), uploadTensor(gpu, new Float32Array(c.cout), [c.cout], 'b'),
        { algorithm: 'winograd' });
      assert.ok(inputGradMasks(gpu, layer, c.h, c.w), 'the Winograd input grad can fuse the mask');
      const gdx = createTensor(gpu, [c.cin, c.h, c.w], 'dx');
      poison(gpu, gdx);
      run(gpu, conv2dBackwardInput(gpu, layer, uploadTensor(gpu, dy.data, dy.shape, 'dy'), gdx, undefined,
        { reluOutput: uploadTensor(gpu, y.data, y.shape, 'y') }));
      const masked = t64(dy.shape, dy.data.map((v, i) => (y.data[i] > 0 ? v : 0)));
      assertClose(await readTensor(gpu, gdx), ref.conv2dBackwardInput(masked, wt).data, RTOL_WINO, `masked dx [${c.cin}->${c.cout} ${c.h}x${c.w}]`);
    }
    // Where it cannot fuse (direct path, reflection), it says so.
    const direct = prepareConv(big, createTensor(big, [4, 3, 3, 3], 'w'), createTensor(big, [4], 'b'));
    assert.not.ok(inputGradMasks(big, direct, 8, 8));
    assert.throws(() => conv2dBackwardInput(big, direct, createTensor(big, [4, 8, 8], 'dy'), createTensor(big, [3, 8, 8], 'dx'), undefined,
      { reluOutput: createTensor(big, [4, 8, 8], 'y') }), (e: Error) => e instanceof PainterlyError && /fused ReLU backward needs/.test(e.message));
    const refl = prepareConv(big, createTensor(big, [16, 16, 3, 3], 'w'), createTensor(big, [16], 'b'), { pad: 'reflect' });
    assert.not.ok(inputGradMasks(big, refl, 16, 16));
  } finally {
    small.destroy();
  }
});

test('steps bound once give fresh results when re-encoded after inputs change', async () => {
  const gpu = await testGpu();
  const c = { cin: 8, cout: 8, h: 10, w: 9, k: 3 };
  const gx = createTensor(gpu, [c.cin, c.h, c.w], 'x');
  const wt = t64([c.cout, c.cin, 3, 3], randArray(c.cout * c.cin * 9, nextSeed()));
  const b = t64([c.cout], randArray(c.cout, nextSeed()));
  const layer = prepareConv(gpu, uploadTensor(gpu, wt.data, wt.shape, 'w'), uploadTensor(gpu, b.data, b.shape, 'b'));
  const gy = createTensor(gpu, [c.cout, c.h, c.w], 'y');
  const steps = conv2dForward(gpu, layer, gx, gy);
  for (let it = 0; it < 2; it++) {
    const x = t64(gx.shape, randArray(gx.size, nextSeed()));
    writeTensor(gpu, gx, x.data);
    poison(gpu, gy);
    run(gpu, steps);
    assertClose(await readTensor(gpu, gy), ref.conv2dForward(x, wt, b).data, RTOL_WINO, `iteration ${it}`);
  }
});

test('bad shapes throw one-line PainterlyErrors', async () => {
  const gpu = await testGpu();
  const w = createTensor(gpu, [4, 3, 3, 3], 'w');
  const b = createTensor(gpu, [4], 'b');
  assert.throws(() => prepareConv(gpu, createTensor(gpu, [4, 3, 2, 2], 'w2'), b), (e: Error) => e instanceof PainterlyError && /odd K <= 7/.test(e.message));
  assert.throws(() => prepareConv(gpu, w, createTensor(gpu, [5], 'b5')), (e: Error) => e instanceof PainterlyError && /bias \[4\]/.test(e.message));
  assert.throws(() => prepareConv(gpu, w, b, { algorithm: 'winograd' }), (e: Error) => e instanceof PainterlyError && /Winograd/.test(e.message));
  const layer = prepareConv(gpu, w, b);
  const x = createTensor(gpu, [3, 5, 6], 'x');
  assert.throws(() => conv2dForward(gpu, layer, createTensor(gpu, [2, 5, 6], 'x2'), createTensor(gpu, [4, 5, 6], 'y')),
    (e: Error) => e instanceof PainterlyError && /expected x \[3,H,W\]/.test(e.message));
  assert.throws(() => conv2dForward(gpu, layer, x, createTensor(gpu, [4, 6, 5], 'y')),
    (e: Error) => e instanceof PainterlyError && /expected y \[4,5,6\]/.test(e.message) && !e.message.includes('\n'));
  assert.throws(() => prepareConv(gpu, w, b, { pad: 'circular' as ConvPad }),
    (e: Error) => e instanceof PainterlyError && /'zeros' or 'reflect'/.test(e.message));
  // Reflection by (K-1)/2 needs H, W > (K-1)/2.
  const refl = prepareConv(gpu, w, b, { pad: 'reflect' });
  const tooSmall = (e: Error) => e instanceof PainterlyError && /reflection padding by 1 needs an image larger than 1x1, got/.test(e.message) && !e.message.includes('\n');
  assert.throws(() => conv2dForward(gpu, refl, createTensor(gpu, [3, 1, 5], 'x'), createTensor(gpu, [4, 1, 5], 'y')), tooSmall);
  assert.throws(() => conv2dBackwardInput(gpu, refl, createTensor(gpu, [4, 5, 1], 'dy'), createTensor(gpu, [3, 5, 1], 'dx')), tooSmall);
  assert.throws(() => conv2dBackwardWeight(gpu, createTensor(gpu, [3, 1, 1], 'x'), createTensor(gpu, [4, 1, 1], 'dy'), w, 'reflect'), tooSmall);
  const refl5 = prepareConv(gpu, createTensor(gpu, [4, 3, 5, 5], 'w5'), b, { pad: 'reflect' });
  assert.throws(() => conv2dForward(gpu, refl5, createTensor(gpu, [3, 2, 6], 'x'), createTensor(gpu, [4, 2, 6], 'y')),
    (e: Error) => e instanceof PainterlyError && /by 2 needs an image larger than 2x2, got 2x6/.test(e.message));
  conv2dForward(gpu, refl5, createTensor(gpu, [3, 3, 3], 'x'), createTensor(gpu, [4, 3, 3], 'y'));   // 3x3 is fine
});

test('reference backward matches finite differences (K = 3 and K = 1, zeros and reflect)', () => {
  const cases: [number, number, number, number, number, ConvPad][] = [
    [2, 3, 4, 5, 3, 'zeros'], [3, 2, 3, 2, 1, 'zeros'], [1, 2, 5, 4, 5, 'zeros'],
    [2, 3, 4, 5, 3, 'reflect'], [2, 2, 2, 2, 3, 'reflect'], [2, 3, 3, 6, 3, 'reflect'], [1, 2, 3, 4, 5, 'reflect'],
  ];
  for (const [cin, cout, h, w, k, pad] of cases) {
    const x = t64([cin, h, w], randArray(cin * h * w, nextSeed()));
    const wt = t64([cout, cin, k, k], randArray(cout * cin * k * k, nextSeed()));
    const b = t64([cout], randArray(cout, nextSeed()));
    const g = randArray(cout * h * w, nextSeed()); // L = Σ g · y, so dL/dy = g
    const dy = t64([cout, h, w], g);
    const loss = (xs: Float64Array, ws: Float64Array, bs: Float64Array) =>
      ref.conv2dForward(t64(x.shape, xs), t64(wt.shape, ws), t64(b.shape, bs), pad).data.reduce((a, y, i) => a + g[i] * y, 0);
    // Every coordinate of x (samples: its size), so each border and corner pixel of the reflection is checked.
    checkGradient((v) => loss(v, wt.data, b.data), x.data, ref.conv2dBackwardInput(dy, wt, pad).data, `dx K${k} ${pad}`,
      { samples: x.data.length });
    checkGradient((v) => loss(x.data, v, b.data), wt.data, ref.conv2dBackwardWeight(x, dy, k, pad).data, `dw K${k} ${pad}`);
    checkGradient((v) => loss(x.data, wt.data, v), b.data, ref.conv2dBackwardBias(dy).data, `db K${k} ${pad}`);
  }
});

// ---- strided / explicitly padded convolutions (shaders/conv_strided.wgsl) and 1x1 convolutions as matmuls ----

interface GeoCase { cin: number; cout: number; h: number; w: number; k: number; stride: number; padding: number }

/** Forward and input grad on the GPU vs the float64 reference, outputs poisoned first; returns the paths taken. */
async function checkGeometry(c: GeoCase, algorithm: ConvAlgorithm = 'auto', expect?: string): Promise<void> {
  const gpu = await testGpu();
  const { cin, cout, h, w, k, stride, padding } = c;
  const [ho, wo] = convOutputSize(h, w, k, stride, padding);
  assert.equal([ho, wo], ref.convOutputSize(h, w, k, { stride, padding }), 'output size');
  const x = t64([cin, h, w], randArray(cin * h * w, nextSeed()));
  const wt = t64([cout, cin, k, k], randArray(cout * cin * k * k, nextSeed(), -0.5, 0.5));
  const b = t64([cout], randArray(cout, nextSeed()));
  const dy = t64([cout, ho, wo], randArray(cout * ho * wo, nextSeed()));
  const gy = createTensor(gpu, [cout, ho, wo], 'y');
  const gdx = createTensor(gpu, [cin, h, w], 'dx');
  for (const t of [gy, gdx]) poison(gpu, t);
  const layer = prepareConv(gpu, uploadTensor(gpu, wt.data, wt.shape, 'w'), uploadTensor(gpu, b.data, b.shape, 'b'),
    { stride, padding, algorithm });
  assert.equal([layer.stride, layer.padding], [stride, padding]);
  const algo = convAlgorithmFor(gpu, layer, h, w);
  if (expect) assert.equal(algo, { forward: expect, input: expect }, 'algorithm');
  run(gpu, [...conv2dForward(gpu, layer, uploadTensor(gpu, x.data, x.shape, 'x'), gy),
    ...conv2dBackwardInput(gpu, layer, uploadTensor(gpu, dy.data, dy.shape, 'dy'), gdx)]);
  const what = `[${cin}->${cout} ${h}x${w} K${k} S${stride} P${padding}]`;
  const g = { stride, padding };
  assertClose(await readTensor(gpu, gy), ref.conv2dForward(x, wt, b, 'zeros', g).data, RTOL_DIRECT, `forward ${algo.forward} ${what}`);
  assertClose(await readTensor(gpu, gdx), ref.conv2dBackwardInput(dy, wt, 'zeros', { ...g, inputSize: [h, w] }).data,
    RTOL_DIRECT, `input grad ${algo.input} ${what}`);
}

const geoCases: GeoCase[] = [
  { cin: 3, cout: 5, h: 17, w: 19, k: 7, stride: 2, padding: 3 },    // ResNet stem, odd sizes
  { cin: 3, cout: 8, h: 32, w: 32, k: 7, stride: 2, padding: 3 },
  { cin: 6, cout: 9, h: 11, w: 9, k: 3, stride: 2, padding: 1 },     // ResNet 3x3/2
  { cin: 8, cout: 12, h: 8, w: 12, k: 3, stride: 2, padding: 1 },
  { cin: 8, cout: 12, h: 9, w: 7, k: 1, stride: 2, padding: 0 },     // ResNet downsample 1x1/2
  { cin: 5, cout: 3, h: 10, w: 10, k: 1, stride: 2, padding: 0 },
  { cin: 4, cout: 6, h: 7, w: 8, k: 3, stride: 1, padding: 0 },      // valid conv
  { cin: 3, cout: 5, h: 6, w: 5, k: 3, stride: 1, padding: 2 },      // padding past (K-1)/2
  { cin: 2, cout: 7, h: 13, w: 14, k: 5, stride: 3, padding: 1 },    // stride 3: pixels no output reads get 0
  { cin: 3, cout: 4, h: 9, w: 11, k: 7, stride: 1, padding: 3 },     // K = 7 at stride 1 (past conv.wgsl's K <= 5)
  { cin: 3, cout: 4, h: 3, w: 2, k: 3, stride: 2, padding: 1 },      // tiny: 2x1 output
  { cin: 5, cout: 6, h: 135, w: 9, k: 3, stride: 2, padding: 1 },    // > 64 quads (workgroups), one tile column
];
for (const c of geoCases) {
  test(`strided K${c.k} S${c.stride} P${c.padding} ${c.cin}->${c.cout} ${c.h}x${c.w} matches float64`, async () => {
    await checkGeometry(c, 'auto', 'strided');
  });
}

// 1x1 stride 1 with algorithm 'matmul': matmuls when the reduction channels and H*W are multiples of 4, else the
// direct kernel; 'auto' always runs the direct kernel.
const oneByOne: [GeoCase, string][] = [
  [{ cin: 8, cout: 12, h: 6, w: 6, k: 1, stride: 1, padding: 0 }, 'matmul'],
  [{ cin: 64, cout: 20, h: 5, w: 4, k: 1, stride: 1, padding: 0 }, 'matmul'],
  [{ cin: 12, cout: 68, h: 3, w: 12, k: 1, stride: 1, padding: 0 }, 'matmul'],  // 68 rows: past 8-row blocks
  [{ cin: 4, cout: 36, h: 17, w: 16, k: 1, stride: 1, padding: 0 }, 'matmul'],  // 272 columns: past 64-column blocks
  [{ cin: 12, cout: 8, h: 5, w: 5, k: 1, stride: 1, padding: 0 }, 'direct'],    // H*W = 25
];
for (const [c, expect] of oneByOne) {
  test(`1x1 ${c.cin}->${c.cout} ${c.h}x${c.w}: 'matmul' runs ${expect}, matches float64 (and 'auto': direct)`, async () => {
    await checkGeometry(c, 'matmul', expect);
    await checkGeometry(c, 'auto', 'direct');
  });
}
test('1x1 with only one direction on the matmul path (Cin % 4 == 0, Cout % 4 != 0) matches float64', async () => {
  const gpu = await testGpu();
  const c = { cin: 8, cout: 6, h: 4, w: 5, k: 1, stride: 1, padding: 0 };
  const layer = prepareConv(gpu, createTensor(gpu, [6, 8, 1, 1], 'w'), createTensor(gpu, [6], 'b'), { algorithm: 'matmul' });
  assert.equal(convAlgorithmFor(gpu, layer, 4, 5), { forward: 'matmul', input: 'direct' });
  await checkGeometry(c, 'matmul');
  await checkGeometry({ ...c, cin: 6, cout: 8 }, 'matmul');
});

// ReLU fused into the strided store and the matmul path's bias add (for conv2dForward's relu option).
test('strided and matmul forwards with fused ReLU match the float64 conv then ReLU', async () => {
  const gpu = await testGpu();
  for (const [c, path] of [[{ cin: 3, cout: 5, h: 11, w: 9, k: 7, stride: 2, padding: 3 }, 'strided'],
    [{ cin: 8, cout: 6, h: 4, w: 5, k: 1, stride: 1, padding: 0 }, 'matmul']] as [GeoCase, string][]) {
    const { cin, cout, h, w, k, stride, padding } = c;
    const [ho, wo] = convOutputSize(h, w, k, stride, padding);
    const x = t64([cin, h, w], randArray(cin * h * w, nextSeed()));
    const wt = t64([cout, cin, k, k], randArray(cout * cin * k * k, nextSeed(), -0.5, 0.5));
    const b = t64([cout], randArray(cout, nextSeed()));
    const layer = prepareConv(gpu, uploadTensor(gpu, wt.data, wt.shape, 'w'), uploadTensor(gpu, b.data, b.shape, 'b'),
      { stride, padding, algorithm: path === 'matmul' ? 'matmul' : 'auto' });
    const gx = uploadTensor(gpu, x.data, x.shape, 'x');
    const gy = createTensor(gpu, [cout, ho, wo], 'y');
    poison(gpu, gy);
    run(gpu, path === 'strided' ? stridedForwardSteps(gpu, layer, gx, gy, 'relu test', true)
      : matmulConvSteps(gpu, layer, 'forward', gx, gy, 'relu test', true));
    const want = ref.conv2dForward(x, wt, b, 'zeros', { stride, padding }).data.map((v) => Math.max(v, 0));
    const got = await readTensor(gpu, gy);
    assertClose(got, want, RTOL_DIRECT, `${path} + ReLU`);
    assert.ok(got.some((v) => v === 0) && got.some((v) => v > 0), 'both signs before the ReLU');
  }
});

test('strided: bad options and shapes are one-line PainterlyErrors', async () => {
  const gpu = await testGpu();
  const w = createTensor(gpu, [4, 3, 3, 3], 'w');
  const b = createTensor(gpu, [4], 'b');
  const one = (re: RegExp) => (e: Error) => e instanceof PainterlyError && re.test(e.message) && !e.message.includes('\n');
  assert.throws(() => prepareConv(gpu, w, b, { pad: 'reflect', stride: 2 }), one(/reflection padding needs stride 1 and padding \(K-1\)\/2/));
  assert.throws(() => prepareConv(gpu, w, b, { pad: 'reflect', padding: 0 }), one(/reflection padding needs stride 1/));
  assert.throws(() => prepareConv(gpu, w, b, { stride: 0 }), one(/stride must be an integer >= 1, got 0/));
  assert.throws(() => prepareConv(gpu, w, b, { stride: 1.5 }), one(/stride must be an integer/));
  assert.throws(() => prepareConv(gpu, w, b, { padding: -1 }), one(/padding must be an integer in \[0, K-1\]/));
  assert.throws(() => prepareConv(gpu, w, b, { stride: 2, algorithm: 'winograd' }), one(/Winograd needs stride 1/));
  assert.throws(() => prepareConv(gpu, w, b, { algorithm: 'matmul' }), one(/'matmul' needs K = 1, stride 1 and padding 0, got K 3/));
  assert.throws(() => prepareConv(gpu, createTensor(gpu, [4, 3, 1, 1], 'w1'), b, { algorithm: 'matmul', stride: 2 }), one(/'matmul' needs/));
  const s2 = prepareConv(gpu, w, b, { stride: 2, padding: 1 });
  const x = createTensor(gpu, [3, 9, 8], 'x');
  assert.throws(() => conv2dForward(gpu, s2, x, createTensor(gpu, [4, 4, 4], 'y')), one(/expected y \[4,5,4\], got \[4,4,4\]/));
  // dx decides the input size: a 10x8 dx also has a 5x4 output, a 12x8 one does not.
  conv2dBackwardInput(gpu, s2, createTensor(gpu, [4, 5, 4], 'dy'), createTensor(gpu, [3, 10, 8], 'dx'));
  assert.throws(() => conv2dBackwardInput(gpu, s2, createTensor(gpu, [4, 5, 4], 'dy'), createTensor(gpu, [3, 12, 8], 'dx')),
    one(/expected dy \[4,6,4\], got \[4,5,4\]/));
  const valid = prepareConv(gpu, createTensor(gpu, [4, 3, 7, 7], 'w7'), b, { padding: 0 });
  assert.throws(() => conv2dForward(gpu, valid, createTensor(gpu, [3, 6, 9], 'x'), createTensor(gpu, [4, 1, 3], 'y')),
    one(/6x9 input is smaller than the 7x7 kernel with padding 0/));
  assert.throws(() => conv2dBackwardWeight(gpu, x, createTensor(gpu, [4, 5, 4], 'dy'), w, 'zeros', { stride: 2, padding: 1 }),
    one(/conv2dBackwardWeight: only stride 1 with padding \(K-1\)\/2 = 1 is implemented, got stride 2/));
  assert.throws(() => conv2dBackwardWeight(gpu, x, createTensor(gpu, [4, 5, 4], 'dy'), w),
    one(/dy \[4,5,4\] must have x's 9x8: only stride 1 with padding \(K-1\)\/2 is implemented/));
  assertClose([], [], 0, 'no GPU errors');
});

test('strided reference backward matches finite differences (every input pixel)', () => {
  const cases: GeoCase[] = [
    { cin: 2, cout: 3, h: 7, w: 8, k: 7, stride: 2, padding: 3 },
    { cin: 2, cout: 3, h: 6, w: 5, k: 3, stride: 2, padding: 1 },
    { cin: 3, cout: 2, h: 5, w: 6, k: 1, stride: 2, padding: 0 },
    { cin: 2, cout: 2, h: 8, w: 7, k: 5, stride: 3, padding: 1 },
    { cin: 2, cout: 2, h: 5, w: 5, k: 3, stride: 1, padding: 0 },
  ];
  for (const c of cases) {
    const { cin, cout, h, w, k, stride, padding } = c;
    const g = { stride, padding };
    const [ho, wo] = ref.convOutputSize(h, w, k, g);
    const x = t64([cin, h, w], randArray(cin * h * w, nextSeed()));
    const wt = t64([cout, cin, k, k], randArray(cout * cin * k * k, nextSeed()));
    const gy = randArray(cout * ho * wo, nextSeed());
    const loss = (xs: Float64Array) => ref.conv2dForward(t64(x.shape, xs), wt, undefined, 'zeros', g).data.reduce((a, y, i) => a + gy[i] * y, 0);
    const dx = ref.conv2dBackwardInput(t64([cout, ho, wo], gy), wt, 'zeros', { ...g, inputSize: [h, w] });
    checkGradient(loss, x.data, dx.data, `dx K${k} S${stride} P${padding}`, { samples: x.data.length });
  }
});

function matmul64(a: Float64Array, b: Float64Array, m: number, n: number, k: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let l = 0; l < k; l++) {
    const av = a[i * k + l];
    for (let j = 0; j < n; j++) c[i * n + j] += av * b[l * n + j];
  }
  return c;
}

// The fused ReLU epilogue (conv2dForward's relu option) against the reference conv then ReLU: both algorithms, zero
// and reflection padding, W % 4 == 0 (vec4 stores) and not (scalar stores), partial Winograd tiles, K = 1 and 5.
const reluCases: [Case, ConvAlgorithm, string][] = [
  [{ cin: 3, cout: 5, h: 7, w: 9, k: 3 }, 'auto', 'direct'],
  [{ cin: 3, cout: 6, h: 5, w: 8, k: 3, pad: 'reflect' }, 'auto', 'direct'],
  [{ cin: 2, cout: 3, h: 6, w: 5, k: 1 }, 'auto', 'direct'],
  [{ cin: 3, cout: 4, h: 7, w: 12, k: 5, pad: 'reflect' }, 'auto', 'direct'],
  [{ cin: 8, cout: 12, h: 13, w: 17, k: 3 }, 'winograd', 'winograd'],
  [{ cin: 16, cout: 20, h: 12, w: 16, k: 3, pad: 'reflect' }, 'winograd', 'winograd'],
  [{ cin: 16, cout: 16, h: 9, w: 8, k: 3 }, 'auto', 'winograd'],
];
for (const [c, algorithm, expect] of reluCases) {
  test(`fused ReLU: ${expect} ${c.cin}->${c.cout} ${c.h}x${c.w} K${c.k} ${c.pad ?? 'zeros'} matches conv then ReLU (float64)`, async () => {
    const gpu = await testGpu();
    const { cin, cout, h, w, k } = c;
    const pad = c.pad ?? 'zeros';
    const x = t64([cin, h, w], randArray(cin * h * w, nextSeed()));
    const wt = t64([cout, cin, k, k], randArray(cout * cin * k * k, nextSeed(), -0.5, 0.5));
    const b = t64([cout], randArray(cout, nextSeed(), -0.2, 0.2)); // small: every channel crosses zero
    const gx = uploadTensor(gpu, x.data, x.shape, 'x');
    const gw = uploadTensor(gpu, wt.data, wt.shape, 'w');
    const gb = uploadTensor(gpu, b.data, b.shape, 'b');
    const gy = createTensor(gpu, [cout, h, w], 'y');
    const gplain = createTensor(gpu, [cout, h, w], 'y.plain');
    poison(gpu, gy); poison(gpu, gplain);
    const layer = prepareConv(gpu, gw, gb, { algorithm, pad });
    assert.is(convAlgorithmFor(gpu, layer, h, w).forward, expect, 'algorithm');
    run(gpu, [...conv2dForward(gpu, layer, gx, gy, undefined, { relu: true }), ...conv2dForward(gpu, layer, gx, gplain)]);
    const want = reluRef(ref.conv2dForward(x, wt, b, pad)).data;
    assert.ok(want.some((v) => v === 0) && want.some((v) => v > 0), 'both sides of the ReLU are exercised');
    const got = await readTensor(gpu, gy);
    assertClose(got, want, expect === 'winograd' ? RTOL_WINO : RTOL_DIRECT, `fused relu ${expect} [${cin}->${cout} ${h}x${w} K${k} ${pad}]`);
    const plain = await readTensor(gpu, gplain);
    for (let i = 0; i < got.length; i++) {
      if (got[i] !== Math.max(plain[i], 0)) assert.unreachable(`element ${i}: fused ${got[i]} != max(unfused ${plain[i]}, 0)`);
    }
    for (const t of [gx, gw, gb, gy, gplain]) t.buffer.destroy();
  });
}

test('matmul matches float64 (odd M, N past the 64-column block, batched)', async () => {
  const gpu = await testGpu();
  for (const [m, n, k] of [[1, 4, 4], [13, 68, 12], [67, 132, 36]]) {
    const a = randArray(m * k, nextSeed());
    const b = randArray(k * n, nextSeed());
    const ga = uploadTensor(gpu, a, [m, k], 'a');
    const gb = uploadTensor(gpu, b, [k, n], 'b');
    const gc = createTensor(gpu, [m, n], 'c');
    poison(gpu, gc);
    run(gpu, [matmul(gpu, ga, gb, gc)]);
    assertClose(await readTensor(gpu, gc), matmul64(a, b, m, n, k), 1e-5, `matmul ${m}x${n}x${k}`);
  }
  const [m, n, k, batch] = [9, 8, 8, 3];
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
      matmul64(a.subarray(i * m * k, (i + 1) * m * k), b.subarray(i * k * n, (i + 1) * k * n), m, n, k), 1e-5, `batch ${i}`);
  }
  assert.throws(() => matmul(gpu, ga, gb, gc), (e: Error) => e instanceof PainterlyError);
  assert.throws(() => bindMatmul(gpu, ga.buffer, gb.buffer, gc.buffer, { m: 4, n: 6, k: 4 }), (e: Error) => e instanceof PainterlyError);
});

test.run();
