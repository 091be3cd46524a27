// Feature transforms applied to tapped features before the losses compare them. 'softmax' is Wang et al.'s fix for
// networks whose features transfer style poorly (CVPR 2021, "Rethinking and Improving the Robustness of Image Style
// Transfer": ResNet's activations have a few huge peaks, low entropy; a softmax over channels at each position,
// S = softmax(F/T), spreads them). Targets and the optimised image go through the same transform.
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import type { Step } from '../gpu/kernel.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { softmaxChannels } from '../ops/softmax.ts';

export type FeatureTransformName = 'none' | 'softmax';
export const FEATURE_TRANSFORMS: FeatureTransformName[] = ['none', 'softmax'];

export interface FeatureTransform { kind: 'softmax'; temperature: number }

/** The transform a loss configuration asks for, or undefined for none. */
export function featureTransformOf(cfg: { featureTransform?: FeatureTransformName; softmaxTemperature?: number }): FeatureTransform | undefined {
  if (!cfg.featureTransform || cfg.featureTransform === 'none') return undefined;
  const temperature = cfg.softmaxTemperature ?? 1;
  if (!(temperature > 0) || !Number.isFinite(temperature)) throw new PainterlyError(`--softmax-temperature: expected a positive number, got ${temperature}`);
  return { kind: 'softmax', temperature };
}

/** y = transform(F) (y distinct from F). */
export function transformForward(gpu: Gpu, t: FeatureTransform, F: Tensor, y: Tensor): Step[] {
  return softmaxChannels(gpu, F, y, t.temperature);
}
