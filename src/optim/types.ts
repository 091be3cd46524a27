// What every optimiser shares: the objective it minimises and the one-iteration step() protocol.
import { PainterlyError } from '../gpu/device.ts';
import type { Tensor } from '../gpu/tensor.ts';

export interface Objective {
  /** Number of variables (the iterate's size). */
  n: number;
  /** f(x); writes the gradient of f at x into grad (a GPU vector of n). Typically one submit and one small readback. */
  evaluate(x: Tensor, grad: Tensor): Promise<number>;
}

export interface StepResult {
  /** f at the iterate before this step's move. */
  loss: number;
  /** True when the optimiser cannot or should not go on (see reason); x was not moved by this step then. */
  done: boolean;
  reason?: string;
  /** Objective evaluations this step made. */
  evaluations: number;
}

export interface Optimizer {
  /** The iterate (GPU), updated in place. */
  readonly x: Tensor;
  /** Exactly one optimiser iteration. */
  step(): Promise<StepResult>;
  /** Forgets history / moments (e.g. after a non-finite loss). */
  reset(): void;
  /** Frees the optimiser's own GPU buffers (not x). */
  destroy(): void;
}

export function checkObjective(what: string, objective: Objective, x: Tensor): void {
  if (objective.n !== x.size) throw new PainterlyError(`${what}: objective has n=${objective.n} but x has ${x.size} elements`);
}

/** Checks an option is a finite number in range; returns it or the default. */
export function numOpt(what: string, name: string, v: number | undefined, def: number, ok: (v: number) => boolean, expect: string): number {
  const x = v ?? def;
  if (!(typeof x === 'number' && Number.isFinite(x) && ok(x))) throw new PainterlyError(`${what}: ${name} must be ${expect}, got ${v}`);
  return x;
}

/** Serialises step(): a second call while one runs is a usage error, not a race. */
export function guardStep<T>(what: string, state: { busy: boolean }, fn: () => Promise<T>): Promise<T> {
  if (state.busy) return Promise.reject(new PainterlyError(`${what}: step() called while the previous step() is still running; await it`));
  state.busy = true;
  return fn().finally(() => { state.busy = false; });
}
