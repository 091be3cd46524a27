// torch.optim.SGD (no weight decay): x -= lr g, or with momentum / dampening / Nesterov as torch defines them
// (the momentum buffer starts as the first gradient, undampened).
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { run, setUniforms, type Step } from '../gpu/kernel.ts';
import { createTensor, destroyTensors, type Tensor } from '../gpu/tensor.ts';
import { sgdMomentumUpdate, sgdUniforms, vecAxpy } from '../ops/vector.ts';
import { checkObjective, guardStep, numOpt, type Objective, type Optimizer, type StepResult } from './types.ts';

export interface SgdOptions {
  lr?: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
}

/** A non-finite loss ends the step with done and leaves x and the momentum untouched; reset() drops the momentum. */
export function createSgd(gpu: Gpu, objective: Objective, x: Tensor, opts: SgdOptions = {}): Optimizer {
  const what = 'SGD';
  checkObjective(what, objective, x);
  const h = {
    lr: numOpt(what, 'lr', opts.lr, 1e-3, (v) => v > 0, '> 0'),
    momentum: numOpt(what, 'momentum', opts.momentum, 0, (v) => v >= 0, '>= 0'),
    dampening: numOpt(what, 'dampening', opts.dampening, 0, () => true, 'a number'),
    nesterov: opts.nesterov ?? false,
  };
  if (h.nesterov && (h.momentum <= 0 || h.dampening !== 0)) {
    throw new PainterlyError(`${what}: nesterov needs momentum > 0 and dampening 0 (as torch.optim.SGD)`);
  }
  const n = x.size;
  const g = createTensor(gpu, [n], 'sgd.grad');
  const buf = h.momentum > 0 ? createTensor(gpu, [n], 'sgd.momentum') : undefined;
  const update: Step = buf ? sgdMomentumUpdate(gpu, g, buf, x, h, true) : vecAxpy(gpu, -h.lr, g, x);
  let first = true;
  const state = { busy: false };
  return {
    x,
    step: () => guardStep(what, state, async (): Promise<StepResult> => {
      const loss = await objective.evaluate(x, g);
      if (!Number.isFinite(loss)) return { loss, done: true, reason: 'non-finite loss', evaluations: 1 };
      if (buf) setUniforms(gpu, update, sgdUniforms(n, h, first));
      first = false;
      run(gpu, [update], 'sgd.step');
      return { loss, done: false, evaluations: 1 };
    }),
    reset() { first = true; },
    destroy() {
      destroyTensors(g, buf);
      update.uniformBuffer?.destroy();
    },
  };
}
