// The networks Gatys transfer can run on (--backbone): a description, how checkpoints name its tensors, and the
// settings that suit its feature scale. Adding a backbone is an entry here, not a new executor.
import { PainterlyError } from '../gpu/device.ts';
import type { NetDescription } from './describe.ts';
import { DENSENET121_DESC, denseFeatureLayers, legacyDenseName } from './densenet.ts';
import { resolveLayer } from './graph.ts';
import { normalisedVgg19, wctTensorName } from './normalised-vgg.ts';
import { RESNET50, resnetFeatureLayers } from './resnet.ts';
import { VGG19, VGG19_BN } from './vgg19.ts';

export type BackboneName = 'vgg19' | 'vgg19-16x' | 'vgg19_bn' | 'resnet50' | 'densenet121';

export interface BackboneDefaults {
  contentLayers: string[];
  styleLayers: string[];
  pooling: 'max' | 'avg';
  /** L-BFGS line search: the paper's weights on vgg19-16x need strong-Wolfe (a plain step diverges past β ≈ 1e4). */
  lineSearch: 'none' | 'strong-wolfe';
  /** Transform of the tapped features (transform.ts) by default: none for all; --feature-transform softmax asks. */
  featureTransform?: 'none' | 'softmax';
  /** α, β, γ for --loss-normalization paper and scale-free. */
  paper: { contentWeight: number; styleWeight: number; tvWeight: number };
  scaleFree: { contentWeight: number; styleWeight: number; tvWeight: number };
}

export interface Backbone {
  name: BackboneName;
  desc: NetDescription;
  /** Base name of a conv layer's tensors in checkpoints (`<base>.weight`, `<base>.bias`), before any prefix. */
  tensorName: (layer: string) => string;
  /** Layers offered to --content-layers / --style-layers (pooling outputs included). */
  featureLayers: string[];
  defaults: BackboneDefaults;
  /** What --weights pretrained means, for messages. */
  pretrained: string;
  /** A second spelling of a tensor base name in older checkpoints (DenseNet's `norm.1`). */
  altName?: (base: string) => string;
}

/** torchvision's `features.N` indices: conv (, batch norm), relu per conv; one max-pool per block. */
function torchvisionVggNames(desc: NetDescription): Map<string, string> {
  const names = new Map<string, string>();
  let index = 0;
  for (const l of desc.layers) {
    if (l.op === 'normalize') continue;
    if (l.op === 'conv' || l.op === 'batchnorm') names.set(l.name, `features.${index}`);
    index++;
  }
  return names;
}

/** conv and relu layer names (what the losses may tap), in network order. */
function convAndRelu(desc: NetDescription): string[] {
  return desc.layers.filter((l) => l.op === 'conv' || l.op === 'relu').map((l) => l.name);
}

const VGG19_NAMES = torchvisionVggNames(VGG19);
/** VGG19's α, β, γ (docs/loss-weights.md); the torchvision backbones without trained weights here keep them. */
const VGG19_LOSS_WEIGHTS = {
  paper: { contentWeight: 1, styleWeight: 3e7, tvWeight: 2e3 },
  scaleFree: { contentWeight: 1, styleWeight: 15, tvWeight: 250 },
};
const VGG19_BN_NAMES = torchvisionVggNames(VGG19_BN);
const DEFAULT_STYLE = ['relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1'];

/** wct-16x's level-5 encoder (16/32/64/128/128 channels), distilled from the normalised VGG19; ends at relu5_1. */
export const VGG19_16X = normalisedVgg19('vgg19-16x', { widths: [16, 32, 64, 128, 128] }, 'relu5_1');

export const BACKBONES: Record<BackboneName, Backbone> = {
  vgg19: {
    name: 'vgg19',
    desc: VGG19,
    tensorName: (l) => VGG19_NAMES.get(l)!,
    featureLayers: convAndRelu(VGG19),
    defaults: {
      contentLayers: ['relu4_2'], styleLayers: DEFAULT_STYLE, pooling: 'avg', lineSearch: 'none',
      ...VGG19_LOSS_WEIGHTS,
    },
    pretrained: "torchvision's ImageNet VGG19 (timm vgg19.tv_in1k)",
  },
  'vgg19-16x': {
    name: 'vgg19-16x',
    desc: VGG19_16X,
    tensorName: wctTensorName,
    featureLayers: convAndRelu(VGG19_16X).filter((l) => l !== 'conv0'),
    // Tuned by looking at real output with the trained encoder (see docs/backbones.md).
    defaults: {
      contentLayers: ['relu4_2'], styleLayers: DEFAULT_STYLE, pooling: 'max', lineSearch: 'strong-wolfe',
      paper: { contentWeight: 1, styleWeight: 4e5, tvWeight: 10 },
      scaleFree: { contentWeight: 1, styleWeight: 1, tvWeight: 5 },
    },
    pretrained: 'the wct-16x level-5 encoder (Wang et al. CVPR 2020, Collaborative Distillation)',
  },
  // The three below have no trained weights reachable here: their loss weights keep VGG19's scale-free values
  // (features are compared per element and per Gram entry, so the scale carries over roughly); see docs/backbones.md.
  vgg19_bn: {
    name: 'vgg19_bn',
    desc: VGG19_BN,
    tensorName: (l) => VGG19_BN_NAMES.get(l)!,
    featureLayers: VGG19_BN.layers.filter((l) => l.op === 'relu' || l.op === 'batchnorm' || l.op === 'pool').map((l) => l.name),
    defaults: {
      contentLayers: ['relu4_2'], styleLayers: DEFAULT_STYLE, pooling: 'avg', lineSearch: 'none',
      ...VGG19_LOSS_WEIGHTS,
    },
    pretrained: "torchvision's ImageNet VGG19 with batch norm (timm vgg19_bn.tv_in1k)",
  },
  // Wang et al. (CVPR 2021): style at the stem and the four stage outputs, content at layer3.
  resnet50: {
    name: 'resnet50',
    desc: RESNET50,
    tensorName: (l) => l,
    featureLayers: resnetFeatureLayers(RESNET50),
    defaults: {
      contentLayers: ['layer3'], styleLayers: ['relu', 'layer1', 'layer2', 'layer3', 'layer4'], pooling: 'max', lineSearch: 'none',
      ...VGG19_LOSS_WEIGHTS,
    },
    pretrained: "torchvision's ImageNet ResNet-50 (timm resnet50.tv_in1k)",
  },
  // The same pattern as ResNet-50: the stem and the four dense blocks for style, the block at 1/16 for content.
  densenet121: {
    name: 'densenet121',
    desc: DENSENET121_DESC,
    tensorName: (l) => l,
    altName: legacyDenseName,
    featureLayers: denseFeatureLayers(DENSENET121_DESC),
    defaults: {
      contentLayers: ['denseblock3'], styleLayers: ['relu0', 'denseblock1', 'denseblock2', 'denseblock3', 'denseblock4'], pooling: 'max', lineSearch: 'none',
      ...VGG19_LOSS_WEIGHTS,
    },
    pretrained: "torchvision's ImageNet DenseNet-121 (timm densenet121.tv_in1k)",
  },
};

/** The canonical layer a backbone's layer name (or alias) denotes. */
export function backboneLayer(b: Backbone, name: string): string {
  return resolveLayer(b.desc, name);
}

export const BACKBONE_NAMES = Object.keys(BACKBONES) as BackboneName[];

export function getBackbone(name: string): Backbone {
  const b = (BACKBONES as Record<string, Backbone>)[name];
  if (!b) throw new PainterlyError(`--backbone: unknown backbone "${name}"; expected one of ${BACKBONE_NAMES.join(', ')}`);
  return b;
}
