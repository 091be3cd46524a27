// Weights for a Gatys backbone (--backbone, --weights): 'pretrained' (downloaded once, cached), 'random:SEED', or a
// local checkpoint (.safetensors or PyTorch .pth, found by its first bytes) named as the backbone's upstream names it.
import { PainterlyError } from '../gpu/device.ts';
import { BACKBONES, type BackboneName } from '../nets/backbones.ts';
import type { NetWeights } from '../nets/describe.ts';
import { layersUpTo } from '../nets/graph.ts';
import { readNetWeights, randomNetWeights } from './net-weights.ts';
import { parseRandomSpec } from './random.ts';
import { openTensorTable } from './tables.ts';
import { bytesSource, type ByteSource } from './safetensors.ts';
import { loadVgg19Weights, type LoadOptions } from './vgg19-weights.ts';

/** The wct-16x file that holds the level-5 encoder (what vgg19-16x runs). */
export const VGG19_16X_FILE = 'wct_se_16x_new/20191109-211322_E20.pth';

export async function loadBackboneWeights(backbone: BackboneName, spec: string, opts: LoadOptions & { upTo: string }): Promise<NetWeights> {
  const bb = BACKBONES[backbone];
  // VGG19's pretrained download (the safetensors subset) and its random weights keep their own loader; a local file
  // of any backbone goes through the format-sniffing reader below (.safetensors or .pth).
  if (backbone === 'vgg19' && (spec === 'pretrained' || spec.startsWith('random'))) {
    const w = await loadVgg19Weights(spec, { ...opts, upTo: lastConv(backbone, opts.upTo) });
    return { convs: new Map(w.convs.map((c) => [c.name, c])), pretrained: w.pretrained, source: w.source };
  }
  if (spec.startsWith('random')) {
    const seed = parseRandomSpec(spec);
    return randomNetWeights(bb.desc, seed, { upTo: opts.upTo, channels: opts.channels });
  }
  if (opts.channels) throw new PainterlyError(`weights '${spec}': the channels option is only for random:SEED weights`);
  let src: ByteSource & { close?: () => Promise<void> };
  let what: string;
  if (spec === 'pretrained' && backbone !== 'vgg19-16x') {
    // torchvision's weights as timm publishes them on the Hub: only the tensors up to the deepest tapped layer are
    // fetched (range requests) and cached as a small safetensors file of their own.
    const { fetchBackboneSubset } = await import('./download.ts');
    const names = tensorNamesUpTo(backbone, opts.upTo);
    const got = await fetchBackboneSubset(backbone, names, opts);
    src = bytesSource(got.where, got.bytes);
    what = `${bb.pretrained}, cached in ${got.where}, up to ${opts.upTo}`;
  } else if (spec === 'pretrained') {
    const { fetchModelFile } = await import('./models.ts');
    const path = (await fetchModelFile('wct-16x', VGG19_16X_FILE, opts)).where;
    src = opts.files?.get(path) ?? await (await import('./cache-node.ts')).openFileSource(path);
    what = `${bb.pretrained}, ${path}`;
  } else {
    src = opts.files?.get(spec) ?? await (await import('./cache-node.ts')).openFileSource(spec);
    what = `${backbone} weights from ${src.name}${backbone === 'vgg19' ? ` up to ${lastConv(backbone, opts.upTo)}` : ''}`;
  }
  try {
    const table = await openTensorTable(src);
    return await readNetWeights(bb.desc, bb.tensorName, table, {
      upTo: backbone === 'vgg19' ? lastConv(backbone, opts.upTo) : opts.upTo, source: what, altName: bb.altName,
    });
  } finally {
    await src.close?.();
  }
}

/** The deepest conv needed to compute `upTo` (at least conv5_1 for VGG19, so one download serves all layers). */
function lastConv(backbone: BackboneName, upTo: string): string {
  const desc = BACKBONES[backbone].desc;
  const convs = layersUpTo(desc, upTo).filter((l) => l.op === 'conv').map((l) => l.name);
  const last = convs.at(-1) ?? 'conv1_1';
  return backbone === 'vgg19' && desc.layers.findIndex((l) => l.name === last) < desc.layers.findIndex((l) => l.name === 'conv5_1') ? 'conv5_1' : last;
}

/** The checkpoint tensor names (torchvision's, no prefix) of every conv and batch norm needed to compute `upTo`. */
export function tensorNamesUpTo(backbone: BackboneName, upTo: string): string[] {
  const bb = BACKBONES[backbone];
  const names: string[] = [];
  for (const l of layersUpTo(bb.desc, upTo)) {
    const base = bb.tensorName(l.name);
    if (l.op === 'conv') names.push(`${base}.weight`, ...(l.bias === false ? [] : [`${base}.bias`]));
    if (l.op === 'batchnorm') names.push(...['weight', 'bias', 'running_mean', 'running_var'].map((w) => `${base}.${w}`));
  }
  return names;
}
