import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PainterlyError } from '../../src/gpu/device.ts';
import { destroyTensors, readTensor, uploadTensor } from '../../src/gpu/tensor.ts';
import { createAdam } from '../../src/optim/adam.ts';
import { createSgd } from '../../src/optim/sgd.ts';
import type { Optimizer } from '../../src/optim/types.ts';
import * as ref from '../../src/reference/optim.ts';
import { assertClose, nextSeed, randArray, RUN_SEED, testGpu } from '../helpers.ts';
import { cpuObjective, type Fn64, maxAbsDiff, quadratic, rosenbrock } from './objectives.ts';

const test = suite('adam-sgd');
type Gpu = Awaited<ReturnType<typeof testGpu>>;
type Make = (gpu: Gpu, obj: ReturnType<typeof cpuObjective>, x: ReturnType<typeof uploadTensor>) => Optimizer;

test('single steps match the torch formulas in float64 (Adam, SGD with momentum / dampening / Nesterov)', async () => {
  const gpu = await testGpu();
  const n = 37;
  const x0 = randArray(n, nextSeed());
  const q = quadratic(n, nextSeed());
  const configs: [string, Make, (x: Float64Array) => (g: Float64Array) => void][] = [
    ['adam', (g, o, x) => createAdam(g, o, x, { lr: 0.03, beta1: 0.8, beta2: 0.99, eps: 1e-6 }), () => {
      const st = { m: new Float64Array(n), v: new Float64Array(n), t: 0 };
      return (g) => ref.adamStep(cur, g, st, 0.03, 0.8, 0.99, 1e-6);
    }],
    ['sgd', (g, o, x) => createSgd(g, o, x, { lr: 0.1 }), () => (g) => { ref.sgdStep(cur, g, null, 0.1, 0, 0, false); }],
    ['sgd momentum dampening', (g, o, x) => createSgd(g, o, x, { lr: 0.1, momentum: 0.7, dampening: 0.2 }), () => {
      let b: Float64Array | null = null;
      return (g) => { b = ref.sgdStep(cur, g, b, 0.1, 0.7, 0.2, false); };
    }],
    ['sgd nesterov', (g, o, x) => createSgd(g, o, x, { lr: 0.1, momentum: 0.9, nesterov: true }), () => {
      let b: Float64Array | null = null;
      return (g) => { b = ref.sgdStep(cur, g, b, 0.1, 0.9, 0, true); };
    }],
  ];
  let cur = new Float64Array(0);
  for (const [name, make, refStep] of configs) {
    const x = uploadTensor(gpu, x0, [n], 'x');
    const opt = make(gpu, cpuObjective(gpu, n, q.fn), x);
    cur = Float64Array.from(x0);
    const stepRef = refStep(cur);
    for (let k = 0; k < 4; k++) {
      const r = await opt.step();
      const want = q.fn(cur);
      assert.ok(Math.abs(r.loss - want.f) <= 1e-5 * Math.max(1, want.f), `${name} step ${k}: loss ${r.loss} vs ${want.f}`);
      assert.is(r.evaluations, 1);
      stepRef(want.g);
      assertClose(await readTensor(gpu, x), cur, 2e-6, `${name} step ${k}`);
    }
    opt.destroy();
    destroyTensors(x);
  }
});

// Hyper-parameters and step bounds: worst case over 200 random starts with the float64 reference, plus ~30 %.
const problems = (seed: number) => {
  const q = quadratic(10, seed);
  return [
    { name: 'quadratic 10', fn: q.fn, x0: randArray(10, nextSeed(), -2, 2), xs: q.xs },
    { name: 'rosenbrock 2', fn: rosenbrock, x0: randArray(2, nextSeed(), 0, 0.5), xs: new Float64Array(2).fill(1) },
    { name: 'rosenbrock 10', fn: rosenbrock, x0: randArray(10, nextSeed(), 0, 0.5), xs: new Float64Array(10).fill(1) },
  ] as { name: string; fn: Fn64; x0: Float64Array; xs: Float64Array }[];
};

for (const [name, make, bounds] of [
  ['Adam lr 0.05', (g: Gpu, o: ReturnType<typeof cpuObjective>, x: ReturnType<typeof uploadTensor>) => createAdam(g, o, x, { lr: 0.05 }), [300, 1600, 1500]],
  ['SGD lr 1e-3 momentum 0.9', (g: Gpu, o: ReturnType<typeof cpuObjective>, x: ReturnType<typeof uploadTensor>) => createSgd(g, o, x, { lr: 1e-3, momentum: 0.9 }), [1000, 1400, 1400]],
] as const) {
  test(`${name} converges to within 1e-2 of the minimum (quadratic n=10, Rosenbrock n=2, n=10)`, async () => {
    const gpu = await testGpu();
    const ps = problems(nextSeed());
    for (let p = 0; p < ps.length; p++) {
      const { name: pn, fn, x0, xs } = ps[p];
      const x = uploadTensor(gpu, x0, [x0.length], 'x');
      const opt = make(gpu, cpuObjective(gpu, x0.length, fn), x);
      let err = Infinity;
      let k = 0;
      for (; k < bounds[p] && err >= 1e-2; k += 20) {
        for (let j = 0; j < 20; j++) await opt.step();
        err = maxAbsDiff(await readTensor(gpu, x), xs);
      }
      assert.ok(err < 1e-2, `${name} on ${pn}: max|x - x*| = ${err.toExponential(2)} after ${k} steps (seed ${RUN_SEED})`);
      opt.destroy();
      destroyTensors(x);
    }
  });
}

test('non-finite loss: done with reason, x and state untouched; reset() restarts', async () => {
  const gpu = await testGpu();
  const n = 6;
  const q = quadratic(n, nextSeed());
  for (const make of [
    (o: ReturnType<typeof cpuObjective>, x: ReturnType<typeof uploadTensor>) => createAdam(gpu, o, x, { lr: 0.1 }),
    (o: ReturnType<typeof cpuObjective>, x: ReturnType<typeof uploadTensor>) => createSgd(gpu, o, x, { lr: 0.1, momentum: 0.5 }),
  ]) {
    const x0 = randArray(n, nextSeed());
    const x = uploadTensor(gpu, x0, [n], 'x');
    const obj = cpuObjective(gpu, n, q.fn, (call) => (call === 2 ? Infinity : undefined));
    const opt = make(obj, x);
    await opt.step(); await opt.step();
    const before = await readTensor(gpu, x);
    const r = await opt.step();
    assert.ok(r.done);
    assert.is(r.reason, 'non-finite loss');
    assert.equal(Array.from(await readTensor(gpu, x)), Array.from(before));
    opt.reset();
    // after reset the next step is a first step again: Adam moves each coordinate by exactly lr (to float32)
    const s = await opt.step();
    assert.not.ok(s.done);
    const after = await readTensor(gpu, x);
    assert.ok(maxAbsDiff(after, before) > 0);
    opt.destroy();
    destroyTensors(x);
  }
});

test('bad options give PainterlyErrors', async () => {
  const gpu = await testGpu();
  const x = uploadTensor(gpu, [1, 2], [2], 'x');
  const o = cpuObjective(gpu, 2, rosenbrock);
  for (const [fn, re] of [
    [() => createAdam(gpu, o, x, { beta1: 1 }), /beta1 must be in \[0, 1\)/],
    [() => createSgd(gpu, o, x, { lr: 0 }), /lr must be > 0/],
    [() => createSgd(gpu, o, x, { nesterov: true }), /nesterov needs momentum/],
  ] as const) {
    assert.throws(fn as () => void, (e: unknown) => e instanceof PainterlyError && re.test((e as Error).message));
  }
  destroyTensors(x);
});

test.run();
