// torch.optim.Adam (no weight decay, no amsgrad): one evaluation and one fused update kernel per step.
import type { Gpu } from '../gpu/device.ts';
import { run, setUniforms } from '../gpu/kernel.ts';
import { createTensor, destroyTensors, type Tensor } from '../gpu/tensor.ts';
import { adamUniforms, adamUpdate, vecFill } from '../ops/vector.ts';
import { checkObjective, guardStep, numOpt, type Objective, type Optimizer, type StepResult } from './types.ts';

export interface AdamOptions {
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
}

/**
 * A non-finite loss ends the step with done (reason 'non-finite loss') and leaves x and the moments untouched.
 * reset() zeroes the moments and the step count.
 */
export function createAdam(gpu: Gpu, objective: Objective, x: Tensor, opts: AdamOptions = {}): Optimizer {
  const what = 'Adam';
  checkObjective(what, objective, x);
  const h = {
    lr: numOpt(what, 'lr', opts.lr, 1e-3, (v) => v > 0, '> 0'),
    beta1: numOpt(what, 'beta1', opts.beta1, 0.9, (v) => v >= 0 && v < 1, 'in [0, 1)'),
    beta2: numOpt(what, 'beta2', opts.beta2, 0.999, (v) => v >= 0 && v < 1, 'in [0, 1)'),
    eps: numOpt(what, 'eps', opts.eps, 1e-8, (v) => v >= 0, '>= 0'),
  };
  const n = x.size;
  const g = createTensor(gpu, [n], 'adam.grad');
  const m = createTensor(gpu, [n], 'adam.m');
  const v = createTensor(gpu, [n], 'adam.v');
  const zero = [vecFill(gpu, m, 0), vecFill(gpu, v, 0)];
  const update = adamUpdate(gpu, g, m, v, x, h, 1);
  let t = 0;
  const state = { busy: false };
  run(gpu, zero, 'adam.reset');
  return {
    x,
    step: () => guardStep(what, state, async (): Promise<StepResult> => {
      const loss = await objective.evaluate(x, g);
      if (!Number.isFinite(loss)) return { loss, done: true, reason: 'non-finite loss', evaluations: 1 };
      t++;
      setUniforms(gpu, update, adamUniforms(n, h, t));
      run(gpu, [update], 'adam.step');
      return { loss, done: false, evaluations: 1 };
    }),
    reset() {
      t = 0;
      run(gpu, zero, 'adam.reset');
    },
    destroy() {
      destroyTensors(g, m, v);
      for (const s of [...zero, update]) s.uniformBuffer?.destroy();
    },
  };
}
