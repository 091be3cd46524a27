// Shared test utilities: one GPU device for the whole run, seeded random data, float64 comparisons.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';
import { openDawnGpu } from '../src/gpu/dawn.ts';
import type { Gpu } from '../src/gpu/device.ts';
import { readTensor, type Tensor } from '../src/gpu/tensor.ts';
import { mulberry32 } from '../src/weights/random.ts';

/** The repository's sibling ../shared (models, images; CI always has it), or $PAINTERLY_SHARED_DIR. */
export const SHARED_DIR = process.env.PAINTERLY_SHARED_DIR || fileURLToPath(new URL('../../shared/', import.meta.url));

/** What scripts/run-tests.mjs reads back (scripts/uvu-guard.mjs publishes the running test's name). */
const testRecord = ((globalThis as { __painterlyTests?: { skips: string[]; current?: string } }).__painterlyTests ??= { skips: [] });

/**
 * The path of ../shared/<what> (e.g. 'models/wct-16x') when it exists. When it is missing this throws a one-line
 * error, unless PAINTERLY_ALLOW_SKIP=1 outside CI (CI=true always has ../shared and refuses to skip): then it records
 * the running test as skipped (listed by name at the end of the run and counted in ", N skipped") and returns
 * undefined, so: `const dir = requireShared('models/x'); if (!dir) return;`.
 */
export function requireShared(what: string): string | undefined {
  const path = join(SHARED_DIR, what);
  if (existsSync(path)) return path;
  const test = testRecord.current ?? '(outside a test)';
  if (process.env.PAINTERLY_ALLOW_SKIP === '1' && process.env.CI !== 'true') {
    testRecord.skips.push(`${test}: needs ${path}`);
    return undefined;
  }
  throw new Error(`${test}: needs ${path}, which is missing` +
    (process.env.CI === 'true' ? ' (CI must provide ../shared)' : ' (set PAINTERLY_ALLOW_SKIP=1 to skip such tests)'));
}

/** ../shared/models (see requireShared). */
export function sharedModelsDir(): string | undefined {
  return requireShared('models');
}

let gpuPromise: Promise<Gpu> | undefined;
const errors: string[] = [];

/** The test run's device; GPU errors are collected and fail the next comparison. */
export function testGpu(): Promise<Gpu> {
  gpuPromise ??= openDawnGpu({ onError: (m) => errors.push(m) });
  return gpuPromise;
}

export async function releaseTestGpu(): Promise<void> {
  if (gpuPromise) (await gpuPromise).destroy();
}

export function takeGpuErrors(): string[] {
  return errors.splice(0);
}

/** Base seed of this run: fresh each run unless PAINTERLY_SEED pins it; printed on failure. */
export const RUN_SEED = Number(process.env.PAINTERLY_SEED ?? (Date.now() % 1_000_000_007));

/** Uniform floats in [0, 1) from the library's seeded Mulberry32. */
export function rng(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / 4294967296;
}

/** Uniform values in [lo, hi) as float32-representable float64s (so CPU and GPU start from identical inputs). */
export function randArray(n: number, seed: number, lo = -1, hi = 1): Float64Array {
  const r = rng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.fround(lo + (hi - lo) * r());
  return out;
}

let seedCounter = 0;
/** A distinct seed for each call within the run. */
export function nextSeed(): number {
  return (RUN_SEED + 7919 * ++seedCounter) >>> 0;
}

/**
 * Tiny random ReLU networks are dead for some draws and inputs (all zeros or a constant past some layer), which hides
 * the effect a test looks for. `attempt(i)` draws a network (nextSeed()), runs the checks that every draw must pass,
 * and returns whether this draw showed the effect; draws continue until one does, and the test fails if none of
 * `tries` does (so code that loses the effect still fails).
 */
export async function untilShown(what: string, attempt: (i: number) => Promise<boolean> | boolean, tries = 8): Promise<void> {
  for (let i = 0; i < tries; i++) if (await attempt(i)) return;
  assert.unreachable(`${what}: not shown by any of ${tries} random networks (seed ${RUN_SEED})`);
}

/**
 * Asserts |got - want| <= rtol * max(max|want|, floor) elementwise, NaN anywhere fails (so do unwritten,
 * poisoned elements). Scaling by the largest magnitude is the right yardstick for sums of products, whose
 * float32 error grows with the terms rather than with the (possibly cancelling) result.
 */
export function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, what: string, floor = 1e-30): void {
  const errs = takeGpuErrors();
  if (errs.length) assert.unreachable(`${what}: GPU errors: ${errs.join(' | ')}`);
  assert.is(got.length, want.length, `${what}: length`);
  let scale = floor;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  let worst = -1;
  let worstErr = 0;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]);
    if (!(e <= rtol * scale)) {
      if (Number.isNaN(e) || e > worstErr) { worst = i; worstErr = Number.isNaN(e) ? Infinity : e; }
      if (Number.isNaN(e)) break;
    }
  }
  if (worst >= 0) {
    assert.unreachable(
      `${what}: element ${worst} is ${got[worst]}, expected ${want[worst]} ` +
      `(|err| ${worstErr.toExponential(2)} > ${rtol} x ${scale.toExponential(2)}; seed ${RUN_SEED})`);
  }
}

export async function assertTensorClose(gpu: Gpu, t: Tensor, want: ArrayLike<number>, rtol: number, what: string): Promise<void> {
  assertClose(await readTensor(gpu, t), want, rtol, what);
}

/**
 * Central finite differences of a scalar float64 function along `k` random coordinates of `x`, compared with an
 * analytic gradient. Returns the worst relative error.
 */
export function checkGradient(
  f: (x: Float64Array) => number, x: Float64Array, grad: ArrayLike<number>, what: string,
  opts: { h?: number; rtol?: number; samples?: number; seed?: number } = {},
): void {
  const h = opts.h ?? 1e-6;
  const rtol = opts.rtol ?? 1e-5;
  const r = rng(opts.seed ?? nextSeed());
  const n = x.length;
  const idx = n <= (opts.samples ?? 24) ? [...Array(n).keys()] : Array.from({ length: opts.samples ?? 24 }, () => Math.floor(r() * n));
  let gmax = 0;
  for (let i = 0; i < grad.length; i++) gmax = Math.max(gmax, Math.abs(grad[i]));
  for (const i of idx) {
    const xi = x[i];
    x[i] = xi + h; const fp = f(x);
    x[i] = xi - h; const fm = f(x);
    x[i] = xi;
    const fd = (fp - fm) / (2 * h);
    const err = Math.abs(fd - grad[i]);
    if (!(err <= rtol * Math.max(gmax, 1e-12) + 1e-9 * Math.abs(fp))) {
      assert.unreachable(`${what}: d/dx[${i}] finite difference ${fd}, analytic ${grad[i]} (seed ${RUN_SEED})`);
    }
  }
}
