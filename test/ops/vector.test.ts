import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PainterlyError } from '../../src/gpu/device.ts';
import { run, type Step } from '../../src/gpu/kernel.ts';
import { createTensor, destroyTensors, poison, readTensor, uploadTensor } from '../../src/gpu/tensor.ts';
import {
  adamUpdate, createReduceWork, createScalars, readScalars, scalarSelect, sgdMomentumUpdate, vecAmax, vecAsum, vecAxpby,
  vecAxpy, vecCopy, vecDot, vecFill, vecScale, vecScaleInPlace, writeScalars,
} from '../../src/ops/vector.ts';
import * as ref from '../../src/reference/optim.ts';
import { assertClose, nextSeed, randArray, RUN_SEED, takeGpuErrors, testGpu } from '../helpers.ts';

const test = suite('vector');
const f32 = Math.fround;

/** A reduction is exact up to float32 accumulation: |got - want| <= rtol * (sum of |terms|). */
function assertReduced(got: number, want: number, terms: number, rtol: number, what: string): void {
  const errs = takeGpuErrors();
  if (errs.length) assert.unreachable(`${what}: GPU errors: ${errs.join(' | ')}`);
  if (!(Math.abs(got - want) <= rtol * terms + 1e-30)) {
    assert.unreachable(`${what}: got ${got}, expected ${want} (terms ${terms.toExponential(2)}, rtol ${rtol}; seed ${RUN_SEED})`);
  }
}

// Sizes: tiny, odd, around a vec4, around a workgroup (256), around a reduction chunk (16384), and large.
for (const n of [1, 3, 5, 255, 257, 1029, 16383, 16387, 100003]) {
  test(`elementwise ops and reductions match float64 at n=${n}`, async () => {
    const gpu = await testGpu();
    const x = randArray(n, nextSeed());
    const y = randArray(n, nextSeed(), -2, 3);
    const gx = uploadTensor(gpu, x, [n], 'x');
    const gy = uploadTensor(gpu, y, [n], 'y');
    const outs = Array.from({ length: 7 }, (_, i) => createTensor(gpu, [n], `out${i}`));
    for (const o of outs) poison(gpu, o);
    const s = createScalars(gpu, 16, 's');
    const sv = [f32(0.75), f32(-1.5), f32(2.25), 0, f32(0.3)];
    writeScalars(gpu, s, [...sv, NaN, NaN, NaN, NaN, NaN, NaN, NaN]);
    const work = createReduceWork(gpu, n);
    poison(gpu, work);
    const [o0, o1, o2, o3, o4, o5, o6] = outs;
    const steps: Step[] = [
      vecFill(gpu, o0, { s, i: 2, c: 2 }), // 4.5
      vecScale(gpu, gx, o1, 0.3),
      vecCopy(gpu, gy, o2), vecScaleInPlace(gpu, o2, { s, i: 0, j: 1, op: 'div' }), // y * 0.75 / -1.5
      vecCopy(gpu, gy, o3), vecAxpy(gpu, { s, i: 0, j: 2, op: 'sub', c: 3 }, gx, o3), // y + 3(0.75-2.25) x
      vecCopy(gpu, gy, o4), vecAxpy(gpu, { s, i: 3 }, gx, o4), // coefficient 0: untouched
      vecAxpby(gpu, { s, i: 1, j: 2 }, gx, -0.5, gy, o5), // -1.5*2.25 x - 0.5 y
      vecCopy(gpu, gx, o6), vecAxpy(gpu, -2, gy, o6),
      ...vecDot(gpu, gx, gy, { s, i: 5 }, work),
      ...vecDot(gpu, gx, gy, { s, i: 6, mul: 4, c: -1 }, work), // -0.3 x.y
      ...vecDot(gpu, gx, gy, { s, i: 7, mul: 3 }, work), // masked: 0
      ...vecAsum(gpu, gy, { s, i: 8 }, work),
      ...vecAmax(gpu, gy, { s, i: 9 }, work),
      scalarSelect(gpu, s, 10, { test: 0, cmp: '>', c0: 0.5, k1: 2, a: 2, b: 1, k2: 7 }), // 2 * 2.25 / -1.5
      scalarSelect(gpu, s, 11, { test: 0, cmp: '<=', c0: 0.5, k1: 2, a: 2, k2: 7, e: 2 }), // 7 * 2.25
      scalarSelect(gpu, s, 12, { test: undefined, cmp: '>=', c0: 1, k1: 5, k2: 0 }), // constant 5
      scalarSelect(gpu, s, 13, { test: 5, cmp: '<', c0: 1e30, k1: 1, a: 5, k2: 0 }), // copy of the dot just made
    ];
    run(gpu, steps);
    const got = await Promise.all(outs.map((o) => readTensor(gpu, o)));
    const sc = await readScalars(gpu, s);
    const map = (f: (i: number) => number) => Float64Array.from({ length: n }, (_, i) => f(i));
    assertClose(got[0], map(() => 4.5), 0, 'fill');
    assertClose(got[1], map((i) => 0.3 * x[i]), 1e-6, 'scale');
    assertClose(got[2], map((i) => (y[i] * 0.75) / -1.5), 1e-6, 'scale in place by s[i]/s[j]');
    assertClose(got[3], map((i) => y[i] + 3 * (0.75 - 2.25) * x[i]), 1e-6, 'axpy by c(s[i]-s[j])');
    assertClose(got[4], y, 0, 'axpy with a zero coefficient');
    assertClose(got[5], map((i) => -1.5 * 2.25 * x[i] - 0.5 * y[i]), 1e-6, 'axpby');
    assertClose(got[6], map((i) => x[i] - 2 * y[i]), 1e-6, 'axpy');
    const xy = ref.dot(x, y);
    const terms = x.reduce((a, v, i) => a + Math.abs(v * y[i]), 0);
    assertReduced(sc[5], xy, terms, 1e-6, 'dot');
    assertReduced(sc[6], -sv[4] * xy, sv[4] * terms, 1e-6, 'dot * -s[mul]');
    assert.is(sc[7], 0, 'dot masked by a zero multiplier');
    assertReduced(sc[8], ref.asum(y), ref.asum(y), 1e-6, 'asum');
    assert.is(sc[9], ref.amax(y), 'amax is exact');
    assertReduced(sc[10], (2 * 2.25) / -1.5, 3, 1e-7, 'select true branch');
    assertReduced(sc[11], 7 * 2.25, 16, 1e-7, 'select false branch');
    assert.is(sc[12], 5, 'select constant');
    assert.is(sc[13], sc[5], 'select reads a scalar written earlier in the same submit');
    destroyTensors(gx, gy, work, ...outs);
    s.buffer.destroy();
  });
}

test('reductions are deterministic and cancel correctly', async () => {
  const gpu = await testGpu();
  const n = 50001;
  const x = randArray(n, nextSeed());
  const neg = Float64Array.from(x, (v) => -v);
  const both = new Float64Array(2 * n); both.set(x); both.set(neg, n); // sums to exactly 0 in float64
  const g = uploadTensor(gpu, both, [2 * n], 'both');
  const ones = uploadTensor(gpu, new Float64Array(2 * n).fill(1), [2 * n], 'ones');
  const work = createReduceWork(gpu, 2 * n);
  const s = createScalars(gpu, 4, 's');
  run(gpu, [...vecDot(gpu, g, ones, { s, i: 0 }, work), ...vecDot(gpu, g, ones, { s, i: 1 }, work)]);
  const sc = await readScalars(gpu, s);
  assert.is(sc[0], sc[1], 'same inputs, same bits');
  assertReduced(sc[0], 0, ref.asum(both), 1e-6, 'cancelling sum');
  destroyTensors(g, ones, work);
});

test('large vector (n > 65535*256: folded grids) axpy, scale and dot', async () => {
  const gpu = await testGpu();
  const n = 65535 * 256 + 4099;
  const x = randArray(n, nextSeed());
  const gx = uploadTensor(gpu, x, [n], 'x');
  const gy = createTensor(gpu, [n], 'y');
  poison(gpu, gy);
  const work = createReduceWork(gpu, n);
  const s = createScalars(gpu, 4, 's');
  writeScalars(gpu, s, [f32(1.25)]);
  run(gpu, [vecFill(gpu, gy, -1), vecAxpy(gpu, { s, i: 0 }, gx, gy), ...vecDot(gpu, gx, gy, { s, i: 1 }, work), ...vecAmax(gpu, gy, { s, i: 2 }, work)]);
  const got = await readTensor(gpu, gy);
  const want = Float64Array.from(x, (v) => -1 + 1.25 * v);
  assertClose(got, want, 1e-6, 'fill + axpy (large)');
  const sc = await readScalars(gpu, s);
  assertReduced(sc[1], ref.dot(x, want), x.reduce((a, v, i) => a + Math.abs(v * want[i]), 0), 1e-5, 'dot (large)');
  assert.is(sc[2], ref.amax(got), 'amax (large)');
  destroyTensors(gx, gy, work);
});

for (const n of [1, 7, 1001]) {
  test(`Adam and SGD updates match torch formulas in float64 (n=${n})`, async () => {
    const gpu = await testGpu();
    const x0 = randArray(n, nextSeed());
    const gs = [randArray(n, nextSeed()), randArray(n, nextSeed(), -3, 3), randArray(n, nextSeed(), -0.01, 0.01)];
    const h = { lr: 0.05, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    const gx = uploadTensor(gpu, x0, [n], 'x');
    const g = createTensor(gpu, [n], 'g');
    const m = uploadTensor(gpu, new Float64Array(n), [n], 'm');
    const v = uploadTensor(gpu, new Float64Array(n), [n], 'v');
    const st = { m: new Float64Array(n), v: new Float64Array(n), t: 0 };
    const x = Float64Array.from(x0);
    for (let t = 1; t <= gs.length; t++) {
      uploadTo(gpu, g, gs[t - 1]);
      run(gpu, [adamUpdate(gpu, g, m, v, gx, h, t)]);
      ref.adamStep(x, gs[t - 1], st, h.lr, h.beta1, h.beta2, h.eps);
    }
    // Each step moves x by about lr; float32 rounding of x (|x| <= 1) dominates the error.
    assertClose(await readTensor(gpu, gx), x, 2e-6, 'adam x', 1); // relative to |x| <= 1, whatever x ends at
    // m sums (1−β1)-weighted gradients that may cancel: its error is relative to the terms, not to the sum.
    const terms = Math.max(...gs.map((gt) => 0.1 * Math.max(...gt.map(Math.abs))));
    assertClose(await readTensor(gpu, m), st.m, 1e-6, 'adam m', terms);
    assertClose(await readTensor(gpu, v), st.v, 1e-6, 'adam v');

    for (const hs of [
      { lr: 0.1, momentum: 0.9, dampening: 0, nesterov: false },
      { lr: 0.1, momentum: 0.8, dampening: 0.3, nesterov: false },
      { lr: 0.1, momentum: 0.9, dampening: 0, nesterov: true },
    ]) {
      const sx = uploadTensor(gpu, x0, [n], 'sx');
      const buf = createTensor(gpu, [n], 'buf');
      poison(gpu, buf); // the first step must not read it
      const xr = Float64Array.from(x0);
      let br: Float64Array | null = null;
      for (let t = 0; t < gs.length; t++) {
        uploadTo(gpu, g, gs[t]);
        run(gpu, [sgdMomentumUpdate(gpu, g, buf, sx, hs, t === 0)]);
        br = ref.sgdStep(xr, gs[t], br, hs.lr, hs.momentum, hs.dampening, hs.nesterov);
      }
      assertClose(await readTensor(gpu, sx), xr, 2e-6, `sgd x ${JSON.stringify(hs)}`, 1);
      assertClose(await readTensor(gpu, buf), br!, 1e-6, `sgd buf ${JSON.stringify(hs)}`, 10 * terms);
      destroyTensors(sx, buf);
    }
    destroyTensors(gx, g, m, v);
  });
}

function uploadTo(gpu: Awaited<ReturnType<typeof testGpu>>, t: ReturnType<typeof createTensor>, data: Float64Array): void {
  gpu.device.queue.writeBuffer(t.buffer, 0, Float32Array.from(data));
}

test('bad inputs give one-line PainterlyErrors', async () => {
  const gpu = await testGpu();
  const a = createTensor(gpu, [10], 'a');
  const b = createTensor(gpu, [11], 'b');
  const s = createScalars(gpu, 2, 's');
  const work = createReduceWork(gpu, 10);
  const cases: [string, () => unknown, RegExp][] = [
    ['size mismatch', () => vecAxpy(gpu, 1, a, b), /b has 11 elements, expected 10/],
    ['aliasing', () => vecAxpy(gpu, 1, a, a), /share a buffer/],
    ['scalar index', () => vecAxpy(gpu, { s, i: 2 }, a, createTensor(gpu, [10], 'c')), /scalar index 2 outside s/],
    ['op without j', () => vecFill(gpu, a, { s, i: 0, op: 'div' }), /needs j/],
    ['small work', () => vecDot(gpu, createTensor(gpu, [70000], 'p'), createTensor(gpu, [70000], 'q'), { s, i: 0 }, work), /work/],
  ];
  for (const [what, fn, re] of cases) {
    try {
      fn();
      assert.unreachable(`${what}: no error`);
    } catch (e) {
      assert.instance(e, PainterlyError, what);
      assert.match((e as Error).message, re, what);
      assert.not.match((e as Error).message, /\n/, `${what}: one line`);
    }
  }
});

test.run();
