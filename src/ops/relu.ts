// ReLU forward and backward (shaders/relu.wgsl).
import source from '../../shaders/relu.wgsl';
import type { Gpu } from '../gpu/device.ts';
import { bind, type KernelSpec, type Step } from '../gpu/kernel.ts';
import type { Tensor } from '../gpu/tensor.ts';

const file = 'shaders/relu.wgsl';
export const reluForwardSpec: KernelSpec = {
  file, source, entry: 'relu_forward', bindings: { p: 'uniform', x: 'read', y: 'read_write' }, uniforms: { n: 'u32' },
};
export const reluBackwardSpec: KernelSpec = {
  file, source, entry: 'relu_backward',
  bindings: { bp: 'uniform', out: 'read', dout: 'read', din: 'read_write' }, uniforms: { n: 'u32' },
};

/** y = max(x, 0). `y` may not alias `x`. */
export function reluForward(gpu: Gpu, x: Tensor, y: Tensor): Step {
  return bind(gpu, reluForwardSpec, { x: x.buffer, y: y.buffer }, { n: x.size }, Math.ceil(x.size / 256), `relu_forward ${y.label}`);
}

/** din = dout where out > 0, else 0 (no aliasing: WebGPU forbids a buffer bound twice with write access). */
export function reluBackward(gpu: Gpu, out: Tensor, dout: Tensor, din: Tensor): Step {
  return bind(gpu, reluBackwardSpec, { out: out.buffer, dout: dout.buffer, din: din.buffer }, { n: out.size },
    Math.ceil(out.size / 256), `relu_backward ${din.label}`);
}
