// Input normalisation (shaders/normalize.wgsl): the network sees (x - mean) / std per RGB channel.
import source from '../../shaders/normalize.wgsl';
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { bind, type KernelSpec, type Step } from '../gpu/kernel.ts';
import type { Tensor } from '../gpu/tensor.ts';

/** torchvision's ImageNet statistics, which its VGG19 weights were trained with. */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

const file = 'shaders/normalize.wgsl';
const uniforms = { n: 'u32', plane: 'u32', m0: 'f32', m1: 'f32', m2: 'f32', s0: 'f32', s1: 'f32', s2: 'f32' } as const;
const bindings = { p: 'uniform', x: 'read', y: 'read_write' } as const;
export const normalizeForwardSpec: KernelSpec = { file, source, entry: 'normalize_forward', bindings, uniforms };
export const normalizeBackwardSpec: KernelSpec = { file, source, entry: 'normalize_backward', bindings, uniforms };

function params(x: Tensor, mean: readonly number[], std: readonly number[]): Record<string, number> {
  if (x.shape.length !== 3 || x.shape[0] !== 3) throw new PainterlyError(`normalize: expected an RGB [3,H,W] tensor, got [${x.shape}]`);
  return { n: x.size, plane: x.shape[1] * x.shape[2], m0: mean[0], m1: mean[1], m2: mean[2], s0: std[0], s1: std[1], s2: std[2] };
}

export function normalizeForward(gpu: Gpu, x: Tensor, y: Tensor, mean: readonly number[] = IMAGENET_MEAN, std: readonly number[] = IMAGENET_STD): Step {
  return bind(gpu, normalizeForwardSpec, { x: x.buffer, y: y.buffer }, params(x, mean, std), Math.ceil(x.size / 256), 'normalize_forward');
}

/** dx = dy / std (overwrites dx). */
export function normalizeBackward(gpu: Gpu, dy: Tensor, dx: Tensor, mean: readonly number[] = IMAGENET_MEAN, std: readonly number[] = IMAGENET_STD): Step {
  return bind(gpu, normalizeBackwardSpec, { x: dy.buffer, y: dx.buffer }, params(dy, mean, std), Math.ceil(dy.size / 256), 'normalize_backward');
}
