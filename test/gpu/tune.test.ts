import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PainterlyError, type Gpu } from '../../src/gpu/device.ts';
import { run, type Step } from '../../src/gpu/kernel.ts';
import { createTensor, poison, readTensor, uploadTensor } from '../../src/gpu/tensor.ts';
import {
  adapterKey, chooseVariant, configureTuning, pickWinner, settleTuning, sourceHash, tuneChoices, tunedSteps, tuneStandard,
  TUNE_ENTRY, type Tunable, type TuneFile,
} from '../../src/gpu/tune.ts';
import { matmulSpec, matmulTiledSpec, matmulTunable } from '../../src/ops/matmul.ts';
import { bind } from '../../src/gpu/kernel.ts';
import { DirStore } from '../../src/weights/cache-node.ts';
import { MemoryStore } from '../../src/weights/store.ts';
import { assertClose, nextSeed, randArray, testGpu } from '../helpers.ts';

const test = suite('kernel tuning');

interface D { n: number }
/** A toy tunable over the two matmul entries: variant 'slow' (default) is timed on 8 repeats, 'fast' on one. */
function toy(source = 'toy v1'): Tunable<D> {
  const mk = (gpu: Gpu, n: number) => gpu.device.createBuffer({ size: n * n * 4, usage: GPUBufferUsage.STORAGE });
  return {
    name: 'toy', source,
    variants: [{ id: 'slow', note: 'default' }, { id: 'fast', note: 'tiled' }],
    shapeClass: (d) => `n${d.n}`,
    bench: (gpu, d, v) => {
      const [a, b, c] = [mk(gpu, d.n), mk(gpu, d.n), mk(gpu, d.n)];
      const s = toyStep(gpu, v, a, b, c, d.n);
      return { steps: v === 'slow' ? Array(8).fill(s) : [s], destroy: () => { a.destroy(); b.destroy(); c.destroy(); } };
    },
    flops: (d) => 2 * d.n ** 3,
    standard: [{ label: 'toy 64', dims: { n: 64 } }],
  };
}
function toyStep(gpu: Gpu, v: string, a: GPUBuffer, b: GPUBuffer, c: GPUBuffer, n: number): Step {
  const spec = v === 'slow' ? matmulSpec : matmulTiledSpec;
  return bind(gpu, spec, { mm_a: a, mm_b: b, mm_c: c }, { m: n, n, k: n, stride_a: 0, stride_b: 0, stride_c: 0 },
    v === 'slow' ? [Math.ceil(n / 64), Math.ceil(n / 8), 1] : [Math.ceil(n / 64), Math.ceil(n / 64), 1], `toy ${v}`);
}

test.after(async () => {
  await configureTuning(await testGpu(), { mode: 'off' });
});

test('unconfigured and mode off: the default variant, nothing pending, nothing measured', async () => {
  const gpu = await testGpu();
  const t = toy();
  assert.is(chooseVariant(gpu, t, { n: 64 }), 'slow');
  await configureTuning(gpu, { mode: 'off', store: new MemoryStore() });
  const a = createTensor(gpu, [64, 64], 'a');
  tunedSteps(gpu, t, { n: 64 }, (v) => [toyStep(gpu, v, a.buffer, a.buffer, a.buffer, 64)]);
  assert.is(await settleTuning(gpu), 0);
  a.buffer.destroy();
});

test('mode on: settle measures, rebuilds the steps in place with the winner, stores it per adapter; cached mode reuses it', async () => {
  const gpu = await testGpu();
  const store = new MemoryStore();
  await configureTuning(gpu, { mode: 'on', store });
  const t = toy();
  const n = 64;
  const A = randArray(n * n, nextSeed()), B = randArray(n * n, nextSeed());
  const ga = uploadTensor(gpu, A, [n, n], 'a'), gb = uploadTensor(gpu, B, [n, n], 'b'), gc = createTensor(gpu, [n, n], 'c');
  const steps = tunedSteps(gpu, t, { n }, (v) => [bind(gpu, v === 'slow' ? matmulSpec : matmulTiledSpec,
    { mm_a: ga.buffer, mm_b: gb.buffer, mm_c: gc.buffer }, { m: n, n, k: n, stride_a: 0, stride_b: 0, stride_c: 0 },
    v === 'slow' ? [1, 8, 1] : [1, 1, 1], `toy ${v}`)]);
  const held = [...steps]; // a list that holds the Step objects, like a plan's program
  assert.is(held[0].kernel.spec.entry, 'matmul');
  assert.is(await settleTuning(gpu), 1);
  assert.is(held[0].kernel.spec.entry, 'matmul_tiled', 'rebuilt in place with the winner');
  assert.is(chooseVariant(gpu, t, { n }), 'fast');
  poison(gpu, gc);
  run(gpu, held);
  const want = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let p = 0; p < n; p++) for (let j = 0; j < n; j++) want[i * n + j] += A[i * n + p] * B[p * n + j];
  assertClose(await readTensor(gpu, gc), want, 1e-5, 'rebuilt step');
  const file = JSON.parse(new TextDecoder().decode((await store.get(TUNE_ENTRY))!)) as TuneFile;
  const rec = file.adapters[adapterKey(gpu)].entries['toy|n64'];
  assert.is(rec.variant, 'fast');
  assert.is(rec.source, sourceHash('toy v1'));
  assert.ok(rec.ms.slow > rec.ms.fast, 'both timed');
  assert.is(await settleTuning(gpu), 0, 'nothing left');

  await configureTuning(gpu, { mode: 'cached', store });
  assert.is(chooseVariant(gpu, t, { n }), 'fast', 'loaded from the store');
  assert.is(chooseVariant(gpu, toy('toy v2'), { n }), 'slow', 'an edited kernel is not trusted');
  assert.is(chooseVariant(gpu, t, { n: 32 }), 'slow', 'another shape class');
  tunedSteps(gpu, t, { n: 32 }, (v) => [toyStep(gpu, v, ga.buffer, gb.buffer, gc.buffer, 32)]);
  assert.is(await settleTuning(gpu), 0, 'cached mode never measures');
  await configureTuning(gpu, { mode: 'on', store, fixed: { toy: 'slow' } });
  assert.is(chooseVariant(gpu, t, { n }), 'slow', 'fixed wins');
  await configureTuning(gpu, { mode: 'on', store, fixed: { toy: 'nope' } });
  assert.throws(() => chooseVariant(gpu, t, { n }), (e: Error) => e instanceof PainterlyError && /unknown variant "nope"/.test(e.message));
  for (const x of [ga, gb, gc]) x.buffer.destroy();
});

test('the cache file: atomic JSON in the cache folder, other adapters kept, a damaged file replaced', async () => {
  const gpu = await testGpu();
  const dir = mkdtempSync(join(tmpdir(), 'painterly-tune-'));
  try {
    const other: TuneFile = { version: 1, adapters: { 'other | gpu': { entries: { 'matmul|x': { variant: 'tiled64', source: 'x', ms: {}, dims: {}, date: '2020-01-01' } } } } };
    writeFileSync(join(dir, TUNE_ENTRY), JSON.stringify(other));
    await configureTuning(gpu, { mode: 'on', store: new DirStore(dir) });
    const rows = await tuneStandard(gpu, [toy() as Tunable<unknown>]);
    assert.is(rows.length, 1);
    assert.ok(rows[0].gflops.slow > 0 && rows[0].gflops.fast > 0);
    const f = JSON.parse(readFileSync(join(dir, TUNE_ENTRY), 'utf8')) as TuneFile;
    assert.is(f.adapters['other | gpu'].entries['matmul|x'].variant, 'tiled64', 'other adapter kept');
    assert.is(f.adapters[adapterKey(gpu)].entries['toy|n64'].variant, rows[0].winner);
    assert.ok(tuneChoices(gpu)['toy|n64']);
    writeFileSync(join(dir, TUNE_ENTRY), '{ not json');
    await configureTuning(gpu, { mode: 'on', store: new DirStore(dir) });
    assert.equal(tuneChoices(gpu), {}, 'a damaged file reads as empty');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pickWinner keeps the default unless another is clearly faster', () => {
  assert.is(pickWinner([{ variant: 'a', ms: 10 }, { variant: 'b', ms: 9.8 }]), 'a');
  assert.is(pickWinner([{ variant: 'a', ms: 10 }, { variant: 'b', ms: 8 }, { variant: 'c', ms: 9 }]), 'b');
});

test('every matmul variant that applies is measured at a standard shape', async () => {
  const gpu = await testGpu();
  await configureTuning(gpu, { mode: 'on' });
  // M = 40: every variant but the short-row ones; M = 1: all of them.
  for (const [m, short] of [[40, false], [1, true]] as const) {
    const small = { ...matmulTunable, standard: [{ label: 'small', dims: { m, n: 72, k: 36, batch: 2 } }] } as Tunable<unknown>;
    const [row] = await tuneStandard(gpu, [small]);
    const want = matmulTunable.variants.map((v) => v.id).filter((id) => short || !/^rows[124]-/.test(id));
    assert.equal(Object.keys(row.ms).sort(), want.sort());
  }
});

test.run();
