// CPU test objectives (float64, evaluated at the GPU iterate read back) wrapped as GPU Objectives.
import type { Gpu } from '../../src/gpu/device.ts';
import { readTensor, writeTensor } from '../../src/gpu/tensor.ts';
import type { Objective } from '../../src/optim/types.ts';
import { rng } from '../helpers.ts';

export type Fn64 = (x: Float64Array) => { f: number; g: Float64Array };

/** n-dimensional Rosenbrock: sum 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2, minimum 0 at all ones. */
export const rosenbrock: Fn64 = (x) => {
  let f = 0;
  const g = new Float64Array(x.length);
  for (let i = 0; i + 1 < x.length; i++) {
    const a = x[i + 1] - x[i] * x[i], b = 1 - x[i];
    f += 100 * a * a + b * b;
    g[i] += -400 * a * x[i] - 2 * b;
    g[i + 1] += 200 * a;
  }
  return { f, g };
};

/** f = (x - xs)' A (x - xs) / 2 with A = B'B/n + I (SPD, condition ~ 5); minimum 0 at xs. */
export function quadratic(n: number, seed: number): { fn: Fn64; xs: Float64Array; A: Float64Array } {
  const r = rng(seed);
  const B = Float64Array.from({ length: n * n }, () => 2 * r() - 1);
  const A = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    let s = i === j ? 1 : 0;
    for (let k = 0; k < n; k++) s += (B[k * n + i] * B[k * n + j]) / n;
    A[i * n + j] = s;
  }
  const xs = Float64Array.from({ length: n }, () => 2 * r() - 1);
  const fn: Fn64 = (x) => {
    const e = x.map((v, i) => v - xs[i]);
    const g = new Float64Array(n);
    let f = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) g[i] += A[i * n + j] * e[j];
      f += 0.5 * e[i] * g[i];
    }
    return { f, g };
  };
  return { fn, xs, A };
}

/** sum w_i |x_i|: piecewise linear, so most L-BFGS pairs have y = 0 and are rejected. */
export function weightedL1(w: ArrayLike<number>): Fn64 {
  return (x) => {
    let f = 0;
    const g = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) { f += w[i] * Math.abs(x[i]); g[i] = w[i] * Math.sign(x[i]); }
    return { f, g };
  };
}

export interface TracedObjective extends Objective {
  /** The points evaluated, in order. */
  points: Float64Array[];
}

/** Evaluates fn on the CPU at the read-back iterate; optionally overrides the loss (e.g. NaN) at some calls. */
export function cpuObjective(gpu: Gpu, n: number, fn: Fn64, lossAt?: (call: number) => number | undefined): TracedObjective {
  const points: Float64Array[] = [];
  return {
    n,
    points,
    async evaluate(x, grad) {
      const xs = Float64Array.from(await readTensor(gpu, x));
      points.push(xs);
      const r = fn(xs);
      writeTensor(gpu, grad, r.g);
      return lossAt?.(points.length - 1) ?? r.f;
    },
  };
}

export const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};
