// Entry point for VGG19 weights: pretrained (downloaded once, cached), seeded random, or a local safetensors file.
import { PainterlyError } from '../gpu/device.ts';
import { fetchVgg19Subset, VGG19_URL, type Progress } from './download.ts';
import { convsUpTo, DEFAULT_UP_TO, readConvs, selectTensors, type ConvWeights } from './layout.ts';
import { parseRandomSpec, randomConvs } from './random.ts';
import { bytesSource, readHeader, type ByteSource } from './safetensors.ts';
import type { WeightStore } from './store.ts';

export { VGG19_CONVS, type ConvWeights, type VggConv } from './layout.ts';
export { VGG19_URL } from './download.ts';
export type { WeightStore } from './store.ts';

export interface VggWeights {
  /** conv1_1 .. the requested layer, in order. */
  convs: ConvWeights[];
  pretrained: boolean;
  /** Human description of where the weights came from. */
  source: string;
}

export interface LoadOptions {
  /** Deepest conv needed (default 'conv5_1'); only the tensors up to it are fetched and decoded. */
  upTo?: string;
  /** Cache directory (Node); default $PAINTERLY_CACHE, else $XDG_CACHE_HOME/painterly, else ~/.cache/painterly. */
  cacheDir?: string;
  /** Where the pretrained weights are cached; overrides cacheDir (e.g. a browser store). */
  store?: WeightStore;
  /** The remote safetensors file (default: timm/vgg19.tv_in1k on the Hugging Face Hub). */
  url?: string;
  onProgress?: (p: Progress) => void;
  /** Informational messages; default console.warn. */
  onMessage?: (m: string) => void;
  signal?: AbortSignal;
  /** random only: cout of each conv (tiny test networks). */
  channels?: number[];
  /** Download retries without progress before giving up (default 4), and the first retry's delay in ms. */
  retries?: number;
  retryDelayMs?: number;
  /**
   * Weight files held in memory or behind a Blob (a browser's file picker), by spec: a spec found here is read from
   * its ByteSource instead of the file system.
   */
  files?: Map<string, ByteSource>;
}

/** spec: 'pretrained' (default Hub file, cached), 'random:SEED', or a path to a local .safetensors file. */
export async function loadVgg19Weights(spec: string, opts: LoadOptions = {}): Promise<VggWeights> {
  const convs = convsUpTo(opts.upTo ?? DEFAULT_UP_TO);
  const upTo = convs.at(-1)!.name;
  if (spec.startsWith('random:') || spec === 'random') {
    const seed = parseRandomSpec(spec);
    return {
      convs: randomConvs(seed, convs, opts.channels),
      pretrained: false,
      source: `random He-initialized weights (seed ${seed}), NOT pretrained: style transfer needs --weights pretrained or a VGG19 file`,
    };
  }
  if (opts.channels) throw new PainterlyError(`weights '${spec}': the channels option is only for random:SEED weights`);

  if (spec === 'pretrained') {
    const url = opts.url ?? VGG19_URL;
    const store = opts.store ?? new (await import('./cache-node.ts')).DirStore(opts.cacheDir ?? (await import('./cache-node.ts')).defaultCacheDir());
    const got = await fetchVgg19Subset({
      url, convs, store, onProgress: opts.onProgress, onMessage: opts.onMessage, signal: opts.signal,
      retries: opts.retries, retryDelayMs: opts.retryDelayMs,
    });
    const src = bytesSource(got.where, got.bytes);
    return { convs: await fromSource(src, convs), pretrained: true, source: `pretrained VGG19 (${url}, cached in ${got.where}) up to ${upTo}` };
  }

  if (spec === '') throw new PainterlyError(`weights: expected 'pretrained', 'random:SEED' or a path to a .safetensors file`);
  const given = opts.files?.get(spec);
  if (given) return { convs: await fromSource(given, convs), pretrained: true, source: `VGG19 weights from ${given.name} up to ${upTo}` };
  const { openFileSource } = await import('./cache-node.ts');
  const src = await openFileSource(spec);
  try {
    return { convs: await fromSource(src, convs), pretrained: true, source: `VGG19 weights from ${spec} up to ${upTo}` };
  } finally {
    await src.close();
  }
}

async function fromSource(src: ByteSource, convs: ReturnType<typeof convsUpTo>): Promise<ConvWeights[]> {
  return readConvs(src, selectTensors(await readHeader(src), convs));
}
