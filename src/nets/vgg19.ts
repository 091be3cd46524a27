// VGG19's feature stack (Simonyan & Zisserman 2015) as torchvision builds it and Gatys et al. use it: the input
// normalised with ImageNet statistics, 3x3 convolutions (zero padding) with ReLU, 2x2 pooling whose kind each plan
// chooses (max or average, --pooling). A description (describe.ts) run by the executor (executor.ts).
//
// Layer names follow the literature: `conv4_2` is the convolution's output, `relu4_2` its rectified output,
// `pool4` the output of the 4th pooling.
import type { Gpu } from '../gpu/device.ts';
import { IMAGENET_MEAN, IMAGENET_STD } from '../ops/normalize.ts';
import type { VggWeights } from '../weights/vgg19-weights.ts';
import type { LayerSpec, NetDescription, PadMode } from './describe.ts';
import { createNetwork, type Network } from './executor.ts';

export type Pooling = 'max' | 'avg';

/** Output channels of the convolutions of each of VGG19's five blocks. */
export const VGG19_BLOCKS = [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]];

/** conv/relu/pool layers of VGG-style blocks (the pool after the last block included); shared by the variants. */
export function vggBlocks(blocks: number[][], pad: PadMode, pool: { mode?: Pooling; ceil?: boolean } = {}, batchNorm = false): LayerSpec[] {
  return blocks.flatMap((convs, b) => [
    ...convs.flatMap((cout, i): LayerSpec[] => [
      { name: `conv${b + 1}_${i + 1}`, op: 'conv', cout, k: 3, pad },
      ...(batchNorm ? [{ name: `bn${b + 1}_${i + 1}`, op: 'batchnorm' } as LayerSpec] : []),
      { name: `relu${b + 1}_${i + 1}`, op: 'relu' },
    ]),
    { name: `pool${b + 1}`, op: 'pool', ...pool },
  ]);
}

export const VGG19: NetDescription = {
  name: 'vgg19',
  inputChannels: 3,
  layers: [
    { name: 'normalize', op: 'normalize', mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] },
    ...vggBlocks(VGG19_BLOCKS, 'zeros'),
  ],
};

/** VGG19 with batch norm after every conv (torchvision's vgg19_bn; folded into the convs when run). */
export const VGG19_BN: NetDescription = {
  name: 'vgg19_bn',
  inputChannels: 3,
  layers: [
    { name: 'normalize', op: 'normalize', mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] },
    ...vggBlocks(VGG19_BLOCKS, 'zeros', {}, true),
  ],
};

export const VGG19_LAYER_NAMES = VGG19.layers.filter((l) => l.op !== 'normalize').map((l) => l.name);

/** A network with VGG19's description (weights from loadVgg19Weights, or built in memory by tests). */
export type Vgg19 = Network;

export function createVgg19(gpu: Gpu, weights: VggWeights): Network {
  return createNetwork(gpu, VGG19, { convs: new Map(weights.convs.map((c) => [c.name, c])), pretrained: weights.pretrained, source: weights.source });
}
