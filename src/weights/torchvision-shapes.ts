// The float tensors of torchvision's feature extractors, by the names torchvision's state dicts (and timm's tv_in1k
// safetensors conversions of them) give them, with their shapes: what a pretrained download checks in the remote
// file's header before fetching any data. Built from the architectures' definitions here, independently of the
// network descriptions in src/nets, so each checks the other. Classifier heads (fc, classifier, pre_logits, head)
// and batch norms' int64 num_batches_tracked are left out: Painterly never needs them.

type Shapes = Map<string, number[]>;

function conv(out: Shapes, base: string, cout: number, cin: number, k: number, bias: boolean): void {
  out.set(`${base}.weight`, [cout, cin, k, k]);
  if (bias) out.set(`${base}.bias`, [cout]);
}

function batchNorm(out: Shapes, base: string, c: number): void {
  for (const p of ['weight', 'bias', 'running_mean', 'running_var']) out.set(`${base}.${p}`, [c]);
}

/** torchvision's vgg19 / vgg19_bn `features`: conv (, bn), relu per conv, a max pool after each block. */
function vgg19(bn: boolean): Shapes {
  const out: Shapes = new Map();
  let index = 0;
  let cin = 3;
  for (const [cout, n] of [[64, 2], [128, 2], [256, 4], [512, 4], [512, 4]]) {
    for (let i = 0; i < n; i++) {
      conv(out, `features.${index++}`, cout, cin, 3, true);
      if (bn) batchNorm(out, `features.${index++}`, cout);
      index++; // relu
      cin = cout;
    }
    index++; // max pool
  }
  return out;
}

/** torchvision's resnet50: a 7x7 stem, then bottleneck stages (blocks, width) with outputs 4 x width. */
function resnet50(): Shapes {
  const out: Shapes = new Map();
  conv(out, 'conv1', 64, 3, 7, false);
  batchNorm(out, 'bn1', 64);
  let inplanes = 64;
  [[3, 64], [4, 128], [6, 256], [3, 512]].forEach(([blocks, w], s) => {
    for (let b = 0; b < blocks; b++) {
      const p = `layer${s + 1}.${b}`;
      conv(out, `${p}.conv1`, w, inplanes, 1, false);
      batchNorm(out, `${p}.bn1`, w);
      conv(out, `${p}.conv2`, w, w, 3, false);
      batchNorm(out, `${p}.bn2`, w);
      conv(out, `${p}.conv3`, 4 * w, w, 1, false);
      batchNorm(out, `${p}.bn3`, 4 * w);
      if (b === 0) { // every stage's first block changes the width (layer1: 64 -> 256) or the stride
        conv(out, `${p}.downsample.0`, 4 * w, inplanes, 1, false);
        batchNorm(out, `${p}.downsample.1`, 4 * w);
      }
      inplanes = 4 * w;
    }
  });
  return out;
}

/** torchvision's densenet121: growth 32, bottleneck 4 x 32, blocks 6/12/24/16, transitions halve the channels. */
function densenet121(): Shapes {
  const out: Shapes = new Map();
  conv(out, 'features.conv0', 64, 3, 7, false);
  batchNorm(out, 'features.norm0', 64);
  let c = 64;
  [6, 12, 24, 16].forEach((n, b) => {
    for (let i = 1; i <= n; i++) {
      const p = `features.denseblock${b + 1}.denselayer${i}`;
      batchNorm(out, `${p}.norm1`, c);
      conv(out, `${p}.conv1`, 128, c, 1, false);
      batchNorm(out, `${p}.norm2`, 128);
      conv(out, `${p}.conv2`, 32, 128, 3, false);
      c += 32;
    }
    if (b < 3) {
      const t = `features.transition${b + 1}`;
      batchNorm(out, `${t}.norm`, c);
      conv(out, `${t}.conv`, c / 2, c, 1, false);
      c /= 2;
    }
  });
  batchNorm(out, 'features.norm5', c);
  return out;
}

const BUILDERS: Record<string, () => Shapes> = {
  vgg19: () => vgg19(false), vgg19_bn: () => vgg19(true), resnet50, densenet121,
};
const cache = new Map<string, Shapes>();

/** The feature extractor's float tensors and shapes, in the network's order; undefined for an unknown backbone. */
export function torchvisionShapes(backbone: string): ReadonlyMap<string, readonly number[]> | undefined {
  if (!(backbone in BUILDERS)) return undefined;
  if (!cache.has(backbone)) cache.set(backbone, BUILDERS[backbone]());
  return cache.get(backbone);
}

/**
 * Other spellings of a tensor name in older checkpoints: torchvision's pre-0.4 DenseNet files name a dense layer's
 * modules `norm.1`, `conv.2` where the module tree says `norm1`, `conv2` (torchvision's loader rewrites them).
 */
export function legacyTensorNames(backbone: string, name: string): string[] {
  if (!backbone.startsWith('densenet')) return [];
  const alt = name.replace(/(denselayer\d+\.(?:norm|relu|conv))([12])(\.[a-z_]+)$/, '$1.$2$3');
  return alt === name ? [] : [alt];
}
