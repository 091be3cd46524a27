// torchvision's ResNet-50 (He et al. 2016; "V1.5": the stride sits on the bottleneck's 3x3 conv) as a description.
// Layer names are torchvision's module paths, so they are also the checkpoint's tensor names (`layer2.0.conv2`,
// `layer2.0.downsample.1`); torchvision reuses one `relu` module per block, which here is `<block>.relu1`,
// `<block>.relu2` and, after the residual addition, the block itself (`layer2.0`, its output). A stage's output is
// its last block's: `layer3` is `layer3.5` (an alias). Every batch norm follows a conv only it reads, so the
// executor folds them all into their convs.
import { IMAGENET_MEAN, IMAGENET_STD } from '../ops/normalize.ts';
import type { LayerSpec, NetDescription } from './describe.ts';

/** Bottleneck blocks per stage, and the stage's inner width (outputs are 4x). */
export const RESNET50_STAGES: [number, number][] = [[3, 64], [4, 128], [6, 256], [3, 512]];

export function resnetBottleneck(stages: [number, number][] = RESNET50_STAGES, name = 'resnet50'): NetDescription {
  const layers: LayerSpec[] = [
    { name: 'normalize', op: 'normalize', mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] },
    { name: 'conv1', op: 'conv', cout: stages[0][1], k: 7, pad: 'zeros', stride: 2, padding: 3, bias: false },
    { name: 'bn1', op: 'batchnorm' },
    { name: 'relu', op: 'relu' },
    { name: 'maxpool', op: 'pool', mode: 'max', kernel: 3, stride: 2, padding: 1 },
  ];
  const aliases: Record<string, string> = {};
  let input = 'maxpool';
  let channels = stages[0][1];
  stages.forEach(([blocks, width], s) => {
    const stage = `layer${s + 1}`;
    for (let b = 0; b < blocks; b++) {
      const p = `${stage}.${b}`;
      const out = b === blocks - 1 ? stage : p;
      if (out !== p) aliases[p] = out;
      const stride = b === 0 && s > 0 ? 2 : 1;
      const project = b === 0 && (stride !== 1 || channels !== 4 * width);
      layers.push(
        { name: `${p}.conv1`, op: 'conv', cout: width, k: 1, pad: 'zeros', bias: false, inputs: [input] },
        { name: `${p}.bn1`, op: 'batchnorm' },
        { name: `${p}.relu1`, op: 'relu' },
        { name: `${p}.conv2`, op: 'conv', cout: width, k: 3, pad: 'zeros', stride, padding: 1, bias: false },
        { name: `${p}.bn2`, op: 'batchnorm' },
        { name: `${p}.relu2`, op: 'relu' },
        { name: `${p}.conv3`, op: 'conv', cout: 4 * width, k: 1, pad: 'zeros', bias: false },
        { name: `${p}.bn3`, op: 'batchnorm' },
      );
      if (project) {
        layers.push(
          { name: `${p}.downsample.0`, op: 'conv', cout: 4 * width, k: 1, pad: 'zeros', stride, padding: 0, bias: false, inputs: [input] },
          { name: `${p}.downsample.1`, op: 'batchnorm' },
        );
      }
      layers.push(
        { name: `${p}.add`, op: 'add', inputs: [`${p}.bn3`, project ? `${p}.downsample.1` : input] },
        { name: out, op: 'relu' },
      );
      input = out;
      channels = 4 * width;
    }
  });
  return { name, inputChannels: 3, layers, aliases };
}

export const RESNET50 = resnetBottleneck();

/** What the losses may tap: the stem, the max pool, every block's output and the stage names. */
export function resnetFeatureLayers(desc: NetDescription): string[] {
  const blocks = desc.layers.filter((l) => l.op === 'relu' && !/\.relu\d$/.test(l.name)).map((l) => l.name);
  return ['relu', 'maxpool', ...blocks.filter((n) => n !== 'relu'), ...Object.keys(desc.aliases ?? {})];
}
