// VGG19's convolution layers, how source files name their tensors, and turning a safetensors file into ConvWeights.
import { PainterlyError } from '../gpu/device.ts';
import { decodeTensor, type ByteSource, type SafetensorsHeader, type TensorEntry } from './safetensors.ts';

/** One 3x3 convolution: weight float32 [cout, cin, k, k] (PyTorch OIHW), bias [cout]. */
export interface ConvWeights {
  name: string; // 'conv1_1'
  cin: number;
  cout: number;
  k: number;
  weight: Float32Array;
  bias: Float32Array;
}

export interface VggConv {
  name: string;
  cin: number;
  cout: number;
  /** Index of the conv in torchvision's `features` Sequential (ReLUs and max-pools sit between). */
  index: number;
}

/** The 16 convolutions of VGG19 (torchvision layout), input 3 channels, all 3x3 with padding 1. */
export const VGG19_CONVS: VggConv[] = (() => {
  const blocks = [[64, 2], [128, 2], [256, 4], [512, 4], [512, 4]];
  const out: VggConv[] = [];
  let index = 0;
  let cin = 3;
  blocks.forEach(([cout, n], b) => {
    for (let i = 0; i < n; i++) {
      out.push({ name: `conv${b + 1}_${i + 1}`, cin, cout, index });
      cin = cout;
      index += 2; // conv, relu
    }
    index += 1; // max-pool
  });
  return out;
})();

export const DEFAULT_UP_TO = 'conv5_1';
export const VGG19_K = 3;

/** conv1_1 .. upTo, in order. */
export function convsUpTo(upTo: string = DEFAULT_UP_TO): VggConv[] {
  const i = VGG19_CONVS.findIndex((c) => c.name === upTo);
  if (i < 0) throw new PainterlyError(`unknown VGG19 layer '${upTo}': expected one of ${VGG19_CONVS.map((c) => c.name).join(', ')}`);
  return VGG19_CONVS.slice(0, i + 1);
}

/**
 * THE table of tensor names in source files. torchvision's vgg19 state dict and timm's vgg19.tv_in1k (a safetensors
 * conversion of it) agree; a checkpoint saved from nn.DataParallel prefixes `module.`. Add a row for a new source.
 */
export const NAME_SCHEMES: { source: string; weight: (c: VggConv) => string; bias: (c: VggConv) => string }[] = [
  { source: 'torchvision/timm', weight: (c) => `features.${c.index}.weight`, bias: (c) => `features.${c.index}.bias` },
  { source: 'torchvision (DataParallel)', weight: (c) => `module.features.${c.index}.weight`, bias: (c) => `module.features.${c.index}.bias` },
];

export interface SelectedConv { conv: VggConv; weight: TensorEntry; bias: TensorEntry }

/** Finds the tensors of `convs` in a header and checks names, shapes and dtypes before any data is read. */
export function selectTensors(header: SafetensorsHeader, convs: VggConv[]): SelectedConv[] {
  const file = header.file;
  const first = VGG19_CONVS[0];
  const scheme = NAME_SCHEMES.find((s) => header.tensors.has(s.weight(first)));
  if (!scheme) {
    const some = [...header.tensors.keys()].slice(0, 3).join(', ') || 'none';
    throw new PainterlyError(`${file}: tensor ${NAME_SCHEMES[0].weight(first)} (conv1_1) is missing: expected VGG19 weights ` +
      `named like torchvision's vgg19 state dict (${NAME_SCHEMES.map((s) => s.weight(first)).join(' or ')}), found ${some}, ...`);
  }
  return convs.map((conv) => {
    const get = (name: string, shape: number[]): TensorEntry => {
      const e = header.tensors.get(name);
      if (!e) throw new PainterlyError(`${file}: tensor ${name} (${conv.name}) is missing: expected shape [${shape}]`);
      if (e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i])) {
        throw new PainterlyError(`${file}: tensor ${name} (${conv.name}): expected shape [${shape}], found [${e.shape}]`);
      }
      if (e.dtype !== 'F32' && e.dtype !== 'F16' && e.dtype !== 'BF16') {
        throw new PainterlyError(`${file}: tensor ${name} (${conv.name}): dtype ${e.dtype} is not supported, expected F32, F16 or BF16`);
      }
      return e;
    };
    return {
      conv,
      weight: get(scheme.weight(conv), [conv.cout, conv.cin, VGG19_K, VGG19_K]),
      bias: get(scheme.bias(conv), [conv.cout]),
    };
  });
}

/** Reads and decodes the selected tensors; refuses NaN/Inf (a corrupt file would otherwise fail much later). */
export async function readConvs(src: ByteSource, selected: SelectedConv[]): Promise<ConvWeights[]> {
  const out: ConvWeights[] = [];
  for (const { conv, weight, bias } of selected) {
    const decode = async (e: TensorEntry) => {
      const a = decodeTensor(e, await src.read(e.begin, e.end), src.name);
      for (let i = 0; i < a.length; i++) {
        if (!Number.isFinite(a[i])) {
          throw new PainterlyError(`${src.name}: tensor ${e.name} (${conv.name}): element ${i} is ${a[i]}, expected finite values`);
        }
      }
      return a;
    };
    out.push({ name: conv.name, cin: conv.cin, cout: conv.cout, k: VGG19_K, weight: await decode(weight), bias: await decode(bias) });
  }
  return out;
}
