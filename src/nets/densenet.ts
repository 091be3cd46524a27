// torchvision's DenseNet-121 (Huang et al. 2017) as a description. Names are torchvision's module paths (so also
// the checkpoint's tensor names): `features.denseblock2.denselayer3.conv1`. A dense layer reads the concatenation
// of its block's input and every earlier layer's new features; here that concatenation is built one layer at a
// time (`<block>.cat<i>` = [cat<i−1>; new features of layer i]), and the last one is the block itself
// (`features.denseblock2`, the block module's output). A transition's output is its pooling (`features.transition1`).
// Short aliases drop `features.` (`denseblock2`, `norm5`). Batch norms after a concatenation run as per-channel
// affine ops; norm0 and each layer's norm2 follow a conv and fold into it.
import { IMAGENET_MEAN, IMAGENET_STD } from '../ops/normalize.ts';
import type { LayerSpec, NetDescription } from './describe.ts';

export interface DenseNetConfig { blocks: number[]; growth: number; init: number; bottleneck: number }
export const DENSENET121: DenseNetConfig = { blocks: [6, 12, 24, 16], growth: 32, init: 64, bottleneck: 4 };

export function denseNet(cfg: DenseNetConfig = DENSENET121, name = 'densenet121'): NetDescription {
  const f = 'features';
  const layers: LayerSpec[] = [
    { name: 'normalize', op: 'normalize', mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] },
    { name: `${f}.conv0`, op: 'conv', cout: cfg.init, k: 7, pad: 'zeros', stride: 2, padding: 3, bias: false },
    { name: `${f}.norm0`, op: 'batchnorm' },
    { name: `${f}.relu0`, op: 'relu' },
    { name: `${f}.pool0`, op: 'pool', mode: 'max', kernel: 3, stride: 2, padding: 1 },
  ];
  let input = `${f}.pool0`;
  let channels = cfg.init;
  cfg.blocks.forEach((n, b) => {
    const block = `${f}.denseblock${b + 1}`;
    let cat = input;
    for (let i = 1; i <= n; i++) {
      const p = `${block}.denselayer${i}`;
      layers.push(
        { name: `${p}.norm1`, op: 'batchnorm', inputs: [cat] },
        { name: `${p}.relu1`, op: 'relu' },
        { name: `${p}.conv1`, op: 'conv', cout: cfg.bottleneck * cfg.growth, k: 1, pad: 'zeros', bias: false },
        { name: `${p}.norm2`, op: 'batchnorm' },
        { name: `${p}.relu2`, op: 'relu' },
        { name: `${p}.conv2`, op: 'conv', cout: cfg.growth, k: 3, pad: 'zeros', bias: false },
      );
      const next = i === n ? block : `${block}.cat${i}`;
      layers.push({ name: next, op: 'concat', inputs: [cat, `${p}.conv2`] });
      cat = next;
      channels += cfg.growth;
    }
    input = block;
    if (b < cfg.blocks.length - 1) {
      const t = `${f}.transition${b + 1}`;
      channels = Math.floor(channels / 2);
      layers.push(
        { name: `${t}.norm`, op: 'batchnorm', inputs: [block] },
        { name: `${t}.relu`, op: 'relu' },
        { name: `${t}.conv`, op: 'conv', cout: channels, k: 1, pad: 'zeros', bias: false },
        { name: t, op: 'pool', mode: 'avg', kernel: 2, stride: 2 },
      );
      input = t;
    }
  });
  layers.push({ name: `${f}.norm5`, op: 'batchnorm', inputs: [input] });
  const aliases: Record<string, string> = {};
  for (const l of layers) {
    const short = l.name.slice(f.length + 1);
    if (l.name.startsWith(`${f}.`) && !short.includes('.')) aliases[short] = l.name;
  }
  return { name, inputChannels: 3, layers, aliases };
}

export const DENSENET121_DESC = denseNet();

/** What the losses may tap: the stem, each block and transition output, norm5 (full names, then the short ones). */
export function denseFeatureLayers(desc: NetDescription): string[] {
  const top = desc.layers.filter((l) => /^features\.[a-z0-9]+$/.test(l.name) && l.op !== 'conv' && l.name !== 'features.norm0').map((l) => l.name);
  return [...top, ...Object.keys(desc.aliases ?? {}).filter((a) => top.includes(desc.aliases![a]))];
}

/**
 * torchvision's old DenseNet checkpoints name a dense layer's modules `norm.1`, `relu.1`, `conv.1`, `norm.2`, ...
 * (torchvision's loader rewrites them); both spellings are accepted: this gives the old one of a tensor base name.
 */
export function legacyDenseName(base: string): string {
  return base.replace(/(denselayer\d+\.(?:norm|relu|conv))([12])$/, '$1.$2');
}
