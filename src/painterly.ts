// The library's front door, the same in Node and browsers:
//   const p = await Painterly.create();           // or Painterly.create({ device }) with your own GPUDevice
//   const { image } = await p.stylize({ content, style, size: 512, onProgress, signal });
// Images are RgbImage (planar float) or RGBA pixel arrays ({ data, width, height }, e.g. canvas ImageData);
// in Node, file paths too (see node.ts).
import { PainterlyError, type Gpu } from './gpu/device.ts';
import { clampImage, fromRgba, toRgba, type RgbImage } from './image/image.ts';
import { BACKBONES, type BackboneName } from './nets/backbones.ts';
import { createNetwork, deepest, type Network } from './nets/executor.ts';
import { firstFeature } from './style/objective.ts';
import { loadBackboneWeights } from './weights/backbone-weights.ts';
import { checkMemoryBudget, stylizeImages, type EngineSettings, type EvaluationRecord, type ProgressInfo, type StylizeResult } from './style/engine.ts';
import type { LoadOptions } from './weights/vgg19-weights.ts';
import { DEFAULT_ALPHA, DEFAULT_MODEL, resolveStylizeOptions, type StylizeInput, type StylizeOptions } from './style/options.ts';
import { encodeStyle, stylizeFeedForward, type EncodedStyle, type FeedForwardMethod, type FeedForwardModel } from './style/feedforward.ts';
import { loadFeedForwardModel } from './style/ff-load.ts';
import { fitLongestSide } from './image/resize.ts';
import { matchColorHistogram, transferLuminance } from './image/color.ts';
import { smoothImage } from './style/photoreal.ts';

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

/** The layer a backbone's weights are loaded to for a run up to `upTo`: VGG19 to conv5_1 at least (one download serves every default layer), others whole. */
function netDepth(backbone: BackboneName, upTo: string): string {
  const desc = BACKBONES[backbone].desc;
  return backbone === 'vgg19' ? deepest(desc, [upTo, 'relu5_1']) : desc.layers.at(-1)!.name;
}

const netKey = (backbone: BackboneName, spec: string, upTo: string) => `${backbone}|${spec}|${netDepth(backbone, upTo)}`;

export class Painterly {
  readonly gpu: Gpu;
  private readonly opts: CreateOptions;
  private nets = new Map<string, Promise<Network>>();
  private models = new Map<string, Promise<FeedForwardModel>>();

  constructor(gpu: Gpu, opts: CreateOptions = {}) {
    this.gpu = gpu;
    this.opts = opts;
  }

  /**
   * A backbone with a weight spec, loaded once and kept. VGG19 loads up to conv5_1 (or deeper when a layer needs
   * it), so one download serves every default layer. `signal` stops a download in progress (the partial file is
   * kept for the next try).
   */
  async network(backbone: BackboneName, spec: string, upTo: string, onMessage?: (m: string) => void, signal?: AbortSignal): Promise<Network> {
    const desc = BACKBONES[backbone].desc;
    const depth = netDepth(backbone, upTo);
    const key = netKey(backbone, spec, upTo);
    let net = this.nets.get(key);
    if (!net) {
      net = loadBackboneWeights(backbone, spec, {
        ...this.opts.weights, upTo: depth, onMessage: onMessage ?? this.opts.weights?.onMessage, signal: signal ?? this.opts.weights?.signal,
      })
        .then((w) => createNetwork(this.gpu, desc, w));
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
    images: { content: ImageInput; styles: ImageInput[]; init?: ImageInput; contentMask?: ImageInput; styleMask?: ImageInput }, settings: EngineSettings, weights: string,
    hooks: PainterlyHooks = {}, backbone: BackboneName = 'vgg19',
  ): Promise<PainterlyResult> {
    this.gpu.checkAlive();
    const l = settings.loss;
    const taps = [...(l.contentWeight !== 0 ? l.contentLayers : []), ...(l.styleWeight !== 0 ? l.styleLayers : [])];
    const desc = BACKBONES[backbone].desc;
    const upTo = deepest(desc, taps.length ? taps : [firstFeature(desc)]);
    const content = await this.image(images.content, 'content');
    const styles = await Promise.all(images.styles.map((s, i) => this.image(s, `style ${i + 1}`)));
    // An impossible memory budget is refused from the adapter's limits alone, before the weights are loaded (or
    // downloaded); once they are, stylizeImages makes the same check on the real network.
    if (!this.nets.has(netKey(backbone, weights, upTo))) await checkMemoryBudget(this.gpu, desc, netDepth(backbone, upTo), { content, styles }, settings);
    const net = await this.network(backbone, weights, upTo, hooks.onMessage, hooks.signal);
    const init = images.init !== undefined ? await this.image(images.init, 'init') : undefined;
    const contentMask = images.contentMask !== undefined ? await this.image(images.contentMask, 'contentMask') : undefined;
    const styleMask = images.styleMask !== undefined ? await this.image(images.styleMask, 'styleMask') : undefined;
    const r = await stylizeImages(this.gpu, net, { content, styles, init, contentMask, styleMask }, settings, hooks);
    // Said once the run has an image, not ahead of an error that stops it.
    if (!net.pretrained) hooks.onMessage?.(`weights: ${net.source}`);
    return { ...r, rgba: toRgba(r.image), width: r.image.width, height: r.image.height, weights: net.source };
  }

  /**
   * Style transfer with the user-facing options (same names and defaults as the CLI's flags, see options.ts);
   * returns the result as pixels.
   */
  async stylize(input: StylizeInput & PainterlyHooks): Promise<PainterlyResult> {
    const { onProgress, onEvaluation, onImage, onMessage, signal, ...rest } = input;
    return this.stylizeResolved(resolveStylizeOptions(rest), { onProgress, onEvaluation, onImage, onMessage, signal });
  }

  /** stylize() with options already resolved by resolveStylizeOptions (the CLI resolves them to report errors early). */
  async stylizeResolved(o: StylizeOptions, hooks: PainterlyHooks = {}): Promise<PainterlyResult> {
    if (o.method !== 'gatys') return this.smoothed(o, await this.stylizeFeedForward(o, hooks));
    const init = typeof o.init === 'string' && ['noise', 'content', 'style'].includes(o.init) ? undefined : o.init;
    const masks = { contentMask: o.contentMask, styleMask: o.styleMask };
    return this.smoothed(o, await this.run({ content: o.content, styles: o.style, init, ...masks }, engineSettings(o), o.weights, hooks, o.backbone));
  }

  /** With o.smooth: the result through the guided filter guided by the content photo (photoreal.ts). */
  private async smoothed(o: Pick<StylizeOptions, 'smooth' | 'smoothRadius' | 'smoothEps' | 'content'>, r: PainterlyResult): Promise<PainterlyResult> {
    if (!o.smooth || r.stopped === 'aborted') return r;
    const t0 = performance.now();
    const image = await smoothImage(this.gpu, await this.image(o.content, 'content'), r.image, o.smoothRadius, o.smoothEps);
    return { ...r, image, rgba: toRgba(image), seconds: r.seconds + (performance.now() - t0) / 1000 };
  }

  /** A feed-forward model (a name from the model table, downloaded and cached, or a folder), loaded once and kept. */
  async feedForwardModel(spec: string, onMessage?: (m: string) => void): Promise<FeedForwardModel> {
    let m = this.models.get(spec);
    if (!m) {
      m = loadFeedForwardModel(this.gpu, spec, { ...this.opts.weights, onMessage: onMessage ?? this.opts.weights?.onMessage });
      this.models.set(spec, m);
      m.catch(() => this.models.delete(spec));
    }
    return m;
  }

  /**
   * Encodes style images once for a feed-forward method, to stylise many content images (video frames, a webcam)
   * with stylizeWithStyle() without re-encoding.
   */
  async encodeStyle(o: { method: FeedForwardMethod; model?: string; style: ImageInput | ImageInput[]; styleSize?: number; styleBlendWeights?: number[]; levels?: number[]; onMessage?: (m: string) => void }): Promise<EncodedStyle & { model: string }> {
    const spec = o.model ?? DEFAULT_MODEL;
    const model = await this.feedForwardModel(spec, o.onMessage);
    const inputs = Array.isArray(o.style) ? o.style : [o.style];
    const styles = await Promise.all(inputs.map(async (s, i) => {
      const img = await this.image(s, `style ${i + 1}`);
      return o.styleSize ? fitLongestSide(img, o.styleSize) : img;
    }));
    const levels = o.levels?.length ? o.levels : model.spec.defaultLevels[o.method];
    const enc = await encodeStyle(this.gpu, model, o.method, styles, o.styleBlendWeights ?? styles.map(() => 1), levels);
    return { ...enc, model: spec };
  }

  /**
   * Stylises one content image with an encoded style (feed-forward); `size` resizes the content's longest side; `alpha`
   * defaults to the method's, as in stylize() (WCT 0.6, AdaIN 1).
   */
  async stylizeWithStyle(content: ImageInput, style: EncodedStyle & { model: string }, o: { alpha?: number; size?: number; preserveColors?: StylizeOptions['preserveColors']; signal?: AbortSignal; smooth?: boolean | { radius?: number; eps?: number }; onMessage?: (m: string) => void; maxBytes?: number } = {}): Promise<PainterlyResult> {
    const t0 = performance.now();
    const model = await this.feedForwardModel(style.model);
    let img = await this.image(content, 'content');
    if (o.size) img = fitLongestSide(img, o.size);
    // Past the binding limit (or o.maxBytes per tensor) every level runs in tiles, with the same result (ff-tiled.ts).
    let out = await stylizeFeedForward(this.gpu, model, img, style, { alpha: o.alpha ?? DEFAULT_ALPHA[style.method], signal: o.signal, onMessage: o.onMessage, maxBytes: o.maxBytes });
    if (o.preserveColors === 'luminance') out = transferLuminance(out, img);
    out = clampImage(out);
    // Photorealistic smoothing (photoreal.ts); radius at 512 px, scaled.
    if (o.smooth && !o.signal?.aborted) out = await smoothImage(this.gpu, img, out, o.smooth === true ? undefined : o.smooth.radius, o.smooth === true ? undefined : o.smooth.eps);
    return {
      image: out, terms: undefined, iterations: 0, stopped: o.signal?.aborted ? 'aborted' : 'done', seconds: (performance.now() - t0) / 1000,
      rgba: toRgba(out), width: out.width, height: out.height, weights: model.source,
    };
  }

  private async stylizeFeedForward(o: StylizeOptions, hooks: PainterlyHooks): Promise<PainterlyResult> {
    const method = o.method as FeedForwardMethod;
    const content = fitLongestSide(await this.image(o.content, 'content'), o.size);
    let styleInputs: ImageInput[] = o.style;
    if (o.preserveColors === 'histogram') {
      const styles = await Promise.all(o.style.map((s, i) => this.image(s, `style ${i + 1}`)));
      styleInputs = styles.map((s) => matchColorHistogram(fitLongestSide(s, o.styleSize), content));
    }
    const style = await this.encodeStyle({ method, model: o.model, style: styleInputs, styleSize: o.styleSize, styleBlendWeights: o.styleBlendWeights, levels: o.levels, onMessage: hooks.onMessage });
    return this.stylizeWithStyle(content, style, { alpha: o.alpha, preserveColors: o.preserveColors, signal: hooks.signal, onMessage: hooks.onMessage });
  }

  destroy(): void {
    for (const n of this.nets.values()) n.then((v) => v.destroy(), () => {});
    this.nets.clear();
    for (const m of this.models.values()) m.then((v) => v.destroy(), () => {});
    this.models.clear();
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
      mattingWeight: o.mattingWeight, featureTransform: o.featureTransform, softmaxTemperature: o.softmaxTemperature,
    },
    pooling: o.pooling, init: named ? (o.init as 'noise' | 'content' | 'style') : 'image', optimizer: o.optimizer, lr: o.lr,
    iters: o.iters, lbfgsHistory: o.lbfgsHistory, lineSearch: o.lineSearch, seed: o.seed, preserveColors: o.preserveColors,
    saveEvery: o.saveEvery, maxMemoryBytes: o.maxMemory, verbose: o.verbose,
  };
}
