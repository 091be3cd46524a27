// The "normalised" VGG19 of AdaIN and WCT (Caffe weights, converted; Li et al. 2017, Huang & Belongie 2017) and the
// decoders that invert it: a 1x1 3->3 colour convolution first (it absorbs Caffe's BGR mean subtraction), reflection
// padding before every 3x3 convolution, max pooling; input RGB in [0, 1] with no further normalisation. Decoders
// mirror the encoder from reluK_1 back to RGB with nearest-neighbour upsampling where the encoder pooled.
// Channel widths are parameters: the distilled wct-16x networks have a quarter of VGG19's.
import type { LayerSpec, NetDescription } from './describe.ts';

/** Convolutions per VGG19 block. */
const BLOCK_CONVS = [2, 2, 4, 4, 4];

export interface NormalisedVggOptions {
  /** Output channels of each block's convolutions (5 entries; VGG19: 64, 128, 256, 512, 512). */
  widths: number[];
  /** PyTorch's ceil_mode on the poolings (naoto0804/pytorch-AdaIN's encoder uses it). */
  ceil?: boolean;
}

export const VGG19_WIDTHS = [64, 128, 256, 512, 512];

/** Encoder up to relu{level}_1 (level 1..5). */
export function normalisedVggEncoder(name: string, level: number, o: NormalisedVggOptions): NetDescription {
  const layers: LayerSpec[] = [{ name: 'conv0', op: 'conv', cout: 3, k: 1, pad: 'zeros' }];
  for (let b = 1; b <= level; b++) {
    if (b > 1) layers.push({ name: `pool${b - 1}`, op: 'pool', mode: 'max', ceil: o.ceil });
    const n = b === level ? 1 : BLOCK_CONVS[b - 1];
    for (let i = 1; i <= n; i++) {
      layers.push({ name: `conv${b}_${i}`, op: 'conv', cout: o.widths[b - 1], k: 3, pad: 'reflect' }, { name: `relu${b}_${i}`, op: 'relu' });
    }
  }
  return { name, inputChannels: 3, layers };
}

/**
 * Full encoder to relu5_4 (all 16 convolutions), for Gatys transfer on this family; `upTo` truncates it (e.g.
 * 'relu5_1' for a level-5 WCT encoder, whose last block holds one convolution).
 */
export function normalisedVgg19(name: string, o: NormalisedVggOptions, upTo?: string): NetDescription {
  const layers: LayerSpec[] = [{ name: 'conv0', op: 'conv', cout: 3, k: 1, pad: 'zeros' }];
  BLOCK_CONVS.forEach((n, b) => {
    for (let i = 1; i <= n; i++) {
      layers.push({ name: `conv${b + 1}_${i}`, op: 'conv', cout: o.widths[b], k: 3, pad: 'reflect' }, { name: `relu${b + 1}_${i}`, op: 'relu' });
    }
    layers.push({ name: `pool${b + 1}`, op: 'pool', mode: 'max', ceil: o.ceil });
  });
  const end = upTo ? layers.findIndex((l) => l.name === upTo) + 1 : layers.length;
  return { name, inputChannels: 3, layers: layers.slice(0, end || layers.length) };
}

/**
 * Decoder from relu{level}_1 (input channels widths[level-1]) back to RGB. Layer names mirror the encoder's:
 * `conv4_1` maps relu4_1's channels to block 3's width. `finalRelu`: the wct-16x decoders rectify their output,
 * AdaIN's decoder does not.
 */
export function normalisedVggDecoder(name: string, level: number, o: NormalisedVggOptions & { finalRelu: boolean }): NetDescription {
  const layers: LayerSpec[] = [];
  for (let b = level; b >= 1; b--) {
    const n = b === level ? 1 : BLOCK_CONVS[b - 1];
    for (let i = n; i >= 1; i--) {
      // The first conv of a block (i = 1) maps to the previous block's width (RGB for block 1).
      const cout = i === 1 ? (b === 1 ? 3 : o.widths[b - 2]) : o.widths[b - 1];
      const last = b === 1 && i === 1;
      layers.push({ name: `conv${b}_${i}`, op: 'conv', cout, k: 3, pad: 'reflect' });
      if (!last || o.finalRelu) layers.push({ name: `relu${b}_${i}`, op: 'relu' });
    }
    if (b > 1) layers.push({ name: `up${b - 1}`, op: 'upsample' });
  }
  return { name, inputChannels: o.widths[level - 1], layers };
}

/** wct-16x checkpoints name conv{b}_{i} `conv{b}{i}` (and the colour conv `conv0`). */
export function wctTensorName(layer: string): string {
  return layer.replace(/^conv(\d)_(\d)$/, 'conv$1$2');
}

/**
 * Checkpoints saved from an nn.Sequential (naoto0804/pytorch-AdaIN's vgg_normalised.pth and decoder.pth) name a
 * conv by its module index. Walking the description in PyTorch's module order: a reflection-padded conv is two
 * modules (pad, conv), every other layer one.
 */
export function sequentialTensorNames(desc: NetDescription): Map<string, string> {
  const names = new Map<string, string>();
  let index = 0;
  for (const l of desc.layers) {
    if (l.op === 'conv' && l.pad === 'reflect' && l.k > 1) index++;
    if (l.op === 'conv') names.set(l.name, String(index));
    index++;
  }
  return names;
}
