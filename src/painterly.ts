// The library's front door, the same in Node and browsers:
//   const p = await Painterly.create();           // or Painterly.create({ device }) with your own GPUDevice
//   const { image } = await p.stylize({ content, style, size: 512, onProgress, signal });
// Images are RgbImage (planar float) or RGBA pixel arrays ({ data, width, height }, e.g. canvas ImageData);
// in Node, file paths too (see node.ts).
import { PainterlyError, type Gpu } from './gpu/device.ts';
import { fromRgba, toRgba, type RgbImage } from './image/image.ts';
import { createVgg19, deepest, lastConvUpTo, type Vgg19 } from './nets/vgg19.ts';
import { stylizeImages, type EngineSettings, type EvaluationRecord, type ProgressInfo, type StylizeResult } from './style/engine.ts';
import { loadVgg19Weights, type LoadOptions } from './weights/vgg19-weights.ts';
import { resolveStylizeOptions, type StylizeInput, type StylizeOptions } from './style/options.ts';

/** Pixels as RGBA bytes (canvas ImageData layout), or a planar RgbImage. */
export type PixelInput = RgbImage | { data: Uint8Array | Uint8ClampedArray; width: number; height: number };
export type ImageInput = PixelInput | string;

export interface PainterlyHooks {
  onProgress?: (p: ProgressInfo) => void;
  onEvaluation?: (r: EvaluationRecord) => void;
  onImage?: (img: RgbImage, iter: number, scale: number) => void | Promise<void>;
  onMessage?: (m: string) => void;
  signal?: AbortSignal;
}

export interface PainterlyResult extends StylizeResult {
  /** The result as RGBA bytes (clamped to [0, 1] then quantised), for canvases and encoders. */
  rgba: Uint8ClampedArray;
  width: number;
  height: number;
  /** Describes the weights used, e.g. "random:1 (NOT pretrained)". */
  weights: string;
}

export interface CreateOptions {
  /** A GPU entry point (navigator.gpu, or Dawn's) when no device is given. */
  gpu?: Gpu;
  /** Weight loading options (cache folder, store, URL, progress). */
  weights?: LoadOptions;
  /** Resolves file paths (Node only). */
  readImage?: (path: string) => Promise<RgbImage>;
}

export function toRgbImage(img: PixelInput, what: string): RgbImage {
  if (img.data instanceof Float32Array) return img as RgbImage;
  if (img.data instanceof Uint8Array || img.data instanceof Uint8ClampedArray) return fromRgba(img.data, img.width, img.height);
  throw new PainterlyError(`${what}: expected an RgbImage or RGBA pixels { data, width, height }`);
}

export class Painterly {
  readonly gpu: Gpu;
  private readonly opts: CreateOptions;
  private nets = new Map<string, Promise<Vgg19>>();

  constructor(gpu: Gpu, opts: CreateOptions = {}) {
    this.gpu = gpu;
    this.opts = opts;
  }

  /**
   * The network for a weight spec, loaded once and kept (up to conv5_1, or deeper when a layer needs it). `signal`
   * stops a download in progress (the partial file is kept for the next try).
   */
  async network(spec: string, upTo: string, onMessage?: (m: string) => void, signal?: AbortSignal): Promise<Vgg19> {
    const depth = deepest([lastConvUpTo(upTo), 'conv5_1']);
    const key = `${spec}|${depth}`;
    let net = this.nets.get(key);
    if (!net) {
      net = loadVgg19Weights(spec, {
        ...this.opts.weights, upTo: depth, onMessage: onMessage ?? this.opts.weights?.onMessage, signal: signal ?? this.opts.weights?.signal,
      })
        .then((w) => createVgg19(this.gpu, w));
      this.nets.set(key, net);
      net.catch(() => this.nets.delete(key));
    }
    return net;
  }

  async image(input: ImageInput, what: string): Promise<RgbImage> {
    if (typeof input === 'string') {
      if (!this.opts.readImage) throw new PainterlyError(`${what}: file paths need Node; pass pixels instead`);
      return this.opts.readImage(input);
    }
    return toRgbImage(input, what);
  }

  /** Runs style transfer with fully resolved settings (see options.ts for user-facing options and defaults). */
  async run(
    images: { content: ImageInput; styles: ImageInput[]; init?: ImageInput }, settings: EngineSettings, weights: string,
    hooks: PainterlyHooks = {},
  ): Promise<PainterlyResult> {
    this.gpu.checkAlive();
    const l = settings.loss;
    const taps = [...(l.contentWeight !== 0 ? l.contentLayers : []), ...(l.styleWeight !== 0 ? l.styleLayers : [])];
    const net = await this.network(weights, deepest(taps.length ? taps : ['relu1_1']), hooks.onMessage, hooks.signal);
    if (!net.pretrained) hooks.onMessage?.(`weights: ${net.source}`);
    const content = await this.image(images.content, 'content');
    const styles = await Promise.all(images.styles.map((s, i) => this.image(s, `style ${i + 1}`)));
    const init = images.init !== undefined ? await this.image(images.init, 'init') : undefined;
    const r = await stylizeImages(this.gpu, net, { content, styles, init }, settings, hooks);
    return { ...r, rgba: toRgba(r.image), width: r.image.width, height: r.image.height, weights: net.source };
  }

  /**
   * Style transfer with the user-facing options (same names and defaults as the CLI's flags, see options.ts);
   * returns the result as pixels.
   */
  async stylize(input: StylizeInput & PainterlyHooks): Promise<PainterlyResult> {
    const { onProgress, onEvaluation, onImage, onMessage, signal, ...rest } = input;
    const o = resolveStylizeOptions(rest);
    const init = typeof o.init === 'string' && ['noise', 'content', 'style'].includes(o.init) ? undefined : o.init;
    return this.run({ content: o.content, styles: o.style, init }, engineSettings(o), o.weights,
      { onProgress, onEvaluation, onImage, onMessage, signal });
  }

  destroy(): void {
    for (const n of this.nets.values()) n.then((v) => v.destroy(), () => {});
    this.nets.clear();
    this.gpu.destroy();
  }
}

/** Maps resolved user options onto the engine's settings. */
export function engineSettings(o: StylizeOptions): EngineSettings {
  const named = typeof o.init === 'string' && ['noise', 'content', 'style'].includes(o.init);
  return {
    size: o.size, scales: o.scales, styleScale: o.styleScale, styleBlendWeights: o.styleBlendWeights,
    loss: {
      contentLayers: o.contentLayers, styleLayers: o.styleLayers, styleLayerWeights: o.styleLayerWeights,
      contentWeight: o.contentWeight, styleWeight: o.styleWeight, tvWeight: o.tvWeight, normalization: o.lossNormalization,
    },
    pooling: o.pooling, init: named ? (o.init as 'noise' | 'content' | 'style') : 'image', optimizer: o.optimizer, lr: o.lr,
    iters: o.iters, lbfgsHistory: o.lbfgsHistory, lineSearch: o.lineSearch, seed: o.seed, preserveColors: o.preserveColors,
    saveEvery: o.saveEvery,
  };
}
