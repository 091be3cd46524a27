// User-facing stylize options (names and meanings follow jcjohnson/neural-style), their defaults and validation.
// The CLI (src/cli/args.ts) maps kebab-case flags onto these; the engine receives the resolved, checked object.
// Plain data only: no I/O, no GPU, safe in browsers.
import { PainterlyError } from '../gpu/device.ts';
import type { RgbImage } from '../image/image.ts';
import { BACKBONE_NAMES, BACKBONES, getBackbone, type BackboneName } from '../nets/backbones.ts';
import { FEATURE_TRANSFORMS, type FeatureTransformName } from './transform.ts';
import { PHOTOREAL_KEYS, resolvePhotoreal, type PhotorealOptions } from './photoreal.ts';

/** An image given by file path (Node), as a planar RgbImage, or as RGBA bytes (canvas ImageData layout). */
export type ImageSource = string | RgbImage | { data: Uint8Array | Uint8ClampedArray; width: number; height: number };

export type Pooling = 'max' | 'avg';
export type OptimizerName = 'lbfgs' | 'adam' | 'sgd';
export type LineSearch = 'none' | 'strong-wolfe';
export type PreserveColors = 'none' | 'luminance' | 'histogram';
export type LossNormalization = 'paper' | 'scale-free';
/** 'noise' (seeded), 'content', 'style' (the first style image, resized), or an image to start from. */
export type InitSpec = 'noise' | 'content' | 'style' | ImageSource;

/** Layers whose activations may be matched: every conv and relu of VGG19, in network order. */
export const VGG19_FEATURE_LAYERS: readonly string[] = [[2, 1], [2, 2], [4, 3], [4, 4], [4, 5]].flatMap(([convs, b]) =>
  Array.from({ length: convs }, (_, i) => [`conv${b}_${i + 1}`, `relu${b}_${i + 1}`]).flat());

// Defaults. The loss weights are derived in docs/loss-weights.md from neural-style's tuned settings for Caffe's VGG19
// (content 5, style 100, TV 1e-3 on 0-255 inputs, MSE losses) rescaled to torchvision's input normalisation and to the
// paper's sums; they are for 512 px with 'paper' normalisation ('scale-free' has its own, size-independent set).
export const DEFAULT_SIZE = 512;
// These are VGG19's (the default backbone); other backbones carry their own (src/nets/backbones.ts).
const VGG = BACKBONES.vgg19.defaults;
export const DEFAULT_CONTENT_WEIGHT = VGG.paper.contentWeight;
export const DEFAULT_STYLE_WEIGHT = VGG.paper.styleWeight;
export const DEFAULT_TV_WEIGHT = VGG.paper.tvWeight;
export const SCALE_FREE_DEFAULT_WEIGHTS = { content: VGG.scaleFree.contentWeight, style: VGG.scaleFree.styleWeight, tv: VGG.scaleFree.tvWeight } as const;
export const DEFAULT_CONTENT_LAYERS: readonly string[] = VGG.contentLayers;
export const DEFAULT_STYLE_LAYERS: readonly string[] = VGG.styleLayers;
export const DEFAULT_POOLING: Pooling = VGG.pooling;
export const DEFAULT_INIT = 'noise';
export const DEFAULT_OPTIMIZER: OptimizerName = 'lbfgs';
/**
 * Step sizes per optimiser, for pixels in [0, 1]. L-BFGS: 1 = take the full quasi-Newton step (its first step is
 * scaled by 1/|g| as usual). Adam: 0.02 moves each pixel by up to ~5/255 per step, neural-style's 10 on a 0-255
 * scale halved for stability. SGD: plain gradient steps, so it depends on the loss scale; a starting point only.
 */
export const DEFAULT_LR: Readonly<Record<OptimizerName, number>> = { lbfgs: 1, adam: 0.02, sgd: 0.01 };
export const DEFAULT_ITERS = 500;
export const DEFAULT_LBFGS_HISTORY = 100;
export const DEFAULT_LINE_SEARCH: LineSearch = 'none';
export const DEFAULT_SEED = 0;
export const DEFAULT_STYLE_SCALE = 1;
export const DEFAULT_PRESERVE_COLORS: PreserveColors = 'none';
export const DEFAULT_SAVE_EVERY = 0;
export const DEFAULT_PRINT_EVERY = 10;
export const DEFAULT_WEIGHTS = 'pretrained';
export const DEFAULT_LOSS_NORMALIZATION: LossNormalization = 'paper';
/** Smallest output side: relu5_1 sits after four 2x poolings. */
export const MIN_SIZE = 16;
export const MAX_SIZE = 16384;

/** Fully resolved options, as the engine receives them. */
export type Method = 'gatys' | 'wct' | 'adain';
/** Wang et al.'s T for the softmax transform of ResNet features (their code's default). */
export const DEFAULT_SOFTMAX_TEMPERATURE = 1;
export const METHODS: readonly Method[] = ['gatys', 'wct', 'adain'];
export const DEFAULT_MODEL = 'wct-16x';
/** WCT at α = 1 over five levels wipes out most of the content; 0.6 keeps the scene (chosen by looking at wct-16x output). */
export const DEFAULT_ALPHA: Readonly<Record<'wct' | 'adain', number>> = { wct: 0.6, adain: 1 };

/** Options only one kind of method takes (giving them to the other is an error naming the method). */
export const GATYS_ONLY: readonly (keyof StylizeOptions)[] = [
  'styleScale', 'contentWeight', 'styleWeight', 'tvWeight', 'contentLayers', 'styleLayers', 'styleLayerWeights', 'pooling',
  'init', 'optimizer', 'lr', 'iters', 'lbfgsHistory', 'lineSearch', 'scales', 'saveEvery', 'lossNormalization', 'backbone', 'weights',
  'mattingWeight', 'photorealistic', 'featureTransform', 'softmaxTemperature', 'contentMask', 'styleMask',
];
export const FEED_FORWARD_ONLY: readonly (keyof StylizeOptions)[] = ['model', 'alpha', 'levels', 'styleSize'];

/** smooth, smoothRadius, smoothEps, mattingWeight, photorealistic: see photoreal.ts. */
export interface StylizeOptions extends PhotorealOptions {
  content: ImageSource;
  /** gatys: optimise the image (Gatys et al. 2016); wct, adain: one feed-forward pass through an encoder/decoder. */
  method: Method;
  /** Feed-forward: a named model ('wct-16x', 'adain': downloaded and cached) or a folder laid out like upstream's. */
  model: string;
  /** Feed-forward: content/style blend of the features (1 = full style). */
  alpha: number;
  /** Feed-forward: the levels (relu{K}_1) run, coarse to fine; default the model's for the method. */
  levels: number[];
  /** Feed-forward: longest side of the style images (default: size). */
  styleSize: number;
  /** The network whose features the losses compare (its own default layers, pooling and loss weights). */
  backbone: BackboneName;
  style: ImageSource[];
  /** Output file (the CLI requires it; the library returns the image either way). */
  out?: string;
  /** Longest side of the output, in pixels (the last of `scales`). */
  size: number;
  /** Style images are resized so their longest side is styleScale x size. */
  styleScale: number;
  /** One per style image, non-negative, normalised to sum 1. */
  styleBlendWeights: number[];
  /** alpha, beta, gamma: weights of the content, style and total-variation terms. */
  contentWeight: number;
  styleWeight: number;
  tvWeight: number;
  contentLayers: string[];
  styleLayers: string[];
  /** w_l per style layer (same length as styleLayers); default 1/len each. Not normalised. */
  styleLayerWeights: number[];
  pooling: Pooling;
  init: InitSpec;
  optimizer: OptimizerName;
  lr: number;
  /** Iterations per scale. */
  iters: number;
  lbfgsHistory: number;
  lineSearch: LineSearch;
  /** Seeds the noise initialisation (and random weights when none are given). */
  seed: number;
  preserveColors: PreserveColors;
  /** Longest side at each scale of a coarse-to-fine run, strictly increasing; the last equals size. */
  scales: number[];
  /** Write an intermediate image every N iterations (0 = never). */
  saveEvery: number;
  /** Print progress every N iterations (0 = never). */
  printEvery: number;
  /** Append one JSON line per loss evaluation to this file. */
  log?: string;
  verbose: boolean;
  /** 'pretrained' (download/cache VGG19), 'random:SEED' (for tests; results are meaningless), or a weights file. */
  weights: string;
  /**
   * 'paper': Gatys et al.'s sums (L_content = 1/2 sum (F-P)^2, E_l = 1/(4 N^2 M^2) sum (G-A)^2), so the useful
   * alpha/beta depends on image size. 'scale-free': the content loss is divided by its number of elements and each
   * style term uses Gram matrices normalised by N.M (N channels, M pixels), so alpha/beta mean the same at any size.
   */
  lossNormalization: LossNormalization;
  /** 'softmax': the losses compare softmax(F/T) over channels (Wang et al. 2021, for ResNet); default the backbone's. */
  featureTransform: FeatureTransformName;
  /** T of the softmax transform. */
  softmaxTemperature: number;
  /** GPU memory budget in bytes (a number, or a string like '512M', '2G'): the run tiles, or refuses, to fit it. */
  maxMemory?: number;
  /**
   * Semantic masks (gatys; Luan et al. 2017): colour-coded segmentations of the content and the (one) style image,
   * any size; each colour region of the content gets the style of the same colour's region (style/masks.ts). Both
   * or neither.
   */
  contentMask?: ImageSource;
  styleMask?: ImageSource;
}

/** What callers pass: content and style, anything else optional (a single style need not be an array). */
export type StylizeInput = Partial<Omit<StylizeOptions, 'style' | 'lr'>> & {
  content: ImageSource;
  style: ImageSource | ImageSource[];
  /** Default depends on the optimiser (DEFAULT_LR). */
  lr?: number;
};

const KEYS: readonly (keyof StylizeOptions)[] = [
  'content', 'style', 'out', 'size', 'styleScale', 'styleBlendWeights', 'contentWeight', 'styleWeight', 'tvWeight',
  'contentLayers', 'styleLayers', 'styleLayerWeights', 'pooling', 'init', 'optimizer', 'lr', 'iters', 'lbfgsHistory',
  'lineSearch', 'seed', 'preserveColors', 'scales', 'saveEvery', 'printEvery', 'log', 'verbose', 'weights',
  'lossNormalization', 'backbone', 'method', 'model', 'alpha', 'levels', 'styleSize', ...PHOTOREAL_KEYS,
  'maxMemory', 'featureTransform', 'softmaxTemperature', 'contentMask', 'styleMask',
];
export const STYLIZE_OPTION_KEYS = KEYS;

/** Bytes from a count or a string with a binary suffix: 1048576, '512M', '2G', '1.5GiB', '64k'; undefined if malformed. */
export function parseBytes(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v > 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(v);
  if (!m) return undefined;
  const bytes = Math.floor(Number(m[1]) * 1024 ** ' kmgt'.indexOf((m[2] || ' ').toLowerCase()));
  return bytes > 0 && Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** How an option is named in error messages: the property name, or the CLI flag. */
export type OptionLabel = (key: keyof StylizeOptions) => string;
const plainLabel: OptionLabel = (k) => k;

const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : Array.isArray(v) ? `[${v.map(show).join(',')}]` : String(v));
const orList = (xs: readonly string[]) => (xs.length === 1 ? xs[0] : `${xs.slice(0, -1).join(', ')} or ${xs[xs.length - 1]}`);
const isImageObject = (v: unknown): boolean => {
  const o = v as { width?: unknown; height?: unknown; data?: unknown };
  return !!o && typeof o === 'object' && Number.isInteger(o.width) && Number.isInteger(o.height) &&
    (o.data instanceof Float32Array || o.data instanceof Uint8Array || o.data instanceof Uint8ClampedArray);
};

/**
 * Fills in defaults and checks every option, throwing a one-line PainterlyError that names the option (via
 * `label`) and what is allowed. Returns a fresh object; arrays are copied.
 */
export function resolveStylizeOptions(input: StylizeInput, label: OptionLabel = plainLabel): StylizeOptions {
  const bad = (key: keyof StylizeOptions, what: string): never => {
    throw new PainterlyError(`${label(key)}: ${what}`);
  };
  if (!input || typeof input !== 'object') throw new PainterlyError('stylize options: expected an object');
  for (const [k, v] of Object.entries(input)) {
    if (v !== undefined && !(KEYS as readonly string[]).includes(k)) {
      throw new PainterlyError(`unknown stylize option "${k}"; valid: ${KEYS.join(', ')}`);
    }
  }
  const get = <K extends keyof StylizeOptions>(k: K) => (input as Partial<Record<keyof StylizeOptions, unknown>>)[k];

  const number = (k: keyof StylizeOptions, def: number, ok: (v: number) => boolean, expect: string): number => {
    const v = get(k) ?? def;
    if (typeof v !== 'number' || !ok(v)) bad(k, `expected ${expect}, got ${show(v)}`);
    return v as number;
  };
  const nonNeg = (v: number) => Number.isFinite(v) && v >= 0;
  const positive = (v: number) => Number.isFinite(v) && v > 0;
  const posInt = (v: number) => Number.isInteger(v) && v > 0;
  const nonNegInt = (v: number) => Number.isInteger(v) && v >= 0;
  const sizeOk = (v: number) => Number.isInteger(v) && v >= MIN_SIZE && v <= MAX_SIZE;
  const oneOf = <T extends string>(k: keyof StylizeOptions, def: T, allowed: readonly T[]): T => {
    const v = get(k) ?? def;
    if (!allowed.includes(v as T)) bad(k, `expected ${orList(allowed)}, got ${show(v)}`);
    return v as T;
  };
  const list = (k: keyof StylizeOptions, def: readonly unknown[]): unknown[] => {
    const v = get(k) ?? def;
    if (!Array.isArray(v)) bad(k, `expected a list, got ${show(v)}`);
    return [...(v as unknown[])];
  };
  const numbers = (k: keyof StylizeOptions, def: readonly number[], ok: (v: number) => boolean, expect: string) => {
    const v = list(k, def);
    for (const x of v) if (typeof x !== 'number' || !ok(x)) bad(k, `expected ${expect}, got ${show(x)}`);
    return v as number[];
  };
  const backbone = oneOf('backbone', 'vgg19', BACKBONE_NAMES);
  const bb = getBackbone(backbone);
  const layers = (k: keyof StylizeOptions, def: readonly string[]): string[] => {
    const v = list(k, def);
    if (v.length === 0) bad(k, 'expected at least one layer');
    for (const name of v) {
      if (typeof name !== 'string' || !bb.featureLayers.includes(name)) {
        bad(k, `unknown layer ${show(name)} for backbone ${backbone}; valid: ${bb.featureLayers.join(', ')}`);
      }
    }
    const dup = v.find((x, i) => v.indexOf(x) !== i);
    if (dup !== undefined) bad(k, `layer ${show(dup)} is listed twice`);
    return v as string[];
  };
  const image = (k: keyof StylizeOptions, v: unknown): ImageSource => {
    if ((typeof v === 'string' && v.length > 0) || isImageObject(v)) return v as ImageSource;
    return bad(k, `expected a file path or an image ({width, height, data}), got ${v === '' ? 'an empty string' : show(v)}`);
  };
  const path = (k: keyof StylizeOptions): string | undefined => {
    const v = get(k);
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v.length === 0) bad(k, `expected a file path, got ${v === '' ? 'an empty string' : show(v)}`);
    return v as string;
  };

  const method = oneOf('method', 'gatys', METHODS);
  for (const k of method === 'gatys' ? FEED_FORWARD_ONLY : GATYS_ONLY) {
    if (get(k) !== undefined) bad(k, `does not apply to --method ${method} (it is for ${method === 'gatys' ? 'wct and adain' : 'gatys'})`);
  }
  const model = get('model') ?? DEFAULT_MODEL;
  if (typeof model !== 'string' || model === '') bad('model', `expected a model name (wct-16x, adain) or a folder, got ${show(model)}`);
  const levels = numbers('levels', [], (v) => Number.isInteger(v) && v >= 1 && v <= 5, 'levels from 1 to 5');
  if (levels.some((v, i) => levels.indexOf(v) !== i)) bad('levels', `a level is listed twice: ${levels.join(',')}`);

  if (get('content') === undefined) bad('content', 'required (the content image)');
  const content = image('content', get('content'));
  const rawStyle = get('style');
  if (rawStyle === undefined) bad('style', 'required (one or more style images)');
  const style = (Array.isArray(rawStyle) ? rawStyle : [rawStyle]).map((s) => image('style', s));
  if (style.length === 0) bad('style', 'expected at least one style image');

  const contentMask = get('contentMask') === undefined ? undefined : image('contentMask', get('contentMask'));
  const styleMask = get('styleMask') === undefined ? undefined : image('styleMask', get('styleMask'));
  if (!contentMask !== !styleMask) {
    const [given, missing] = contentMask ? ['contentMask', 'styleMask'] as const : ['styleMask', 'contentMask'] as const;
    bad(given, `needs ${label(missing)} too (semantic masks come in pairs: the content's and the style's segmentation)`);
  }
  if (styleMask && style.length !== 1) bad('styleMask', `expected one style image with semantic masks, got ${style.length}`);
  if (styleMask && get('featureTransform') !== undefined && get('featureTransform') !== 'none') {
    bad('featureTransform', 'semantic masks (--content-mask, --style-mask) do not combine with a feature transform');
  }

  const out = path('out');
  if (out !== undefined && !/\.(png|jpe?g)$/i.test(out)) bad('out', `expected a .png, .jpg or .jpeg file name, got ${show(out)}`);

  const sizeExpect = `an integer from ${MIN_SIZE} to ${MAX_SIZE}`;
  const sizeGiven = get('size') !== undefined;
  let size = number('size', DEFAULT_SIZE, sizeOk, sizeExpect);
  let scales: number[];
  if (get('scales') === undefined) {
    scales = [size];
  } else {
    scales = numbers('scales', [], sizeOk, `sizes that are integers from ${MIN_SIZE} to ${MAX_SIZE}`);
    if (scales.length === 0) bad('scales', 'expected at least one size');
    for (let i = 1; i < scales.length; i++) {
      if (scales[i] <= scales[i - 1]) bad('scales', `expected increasing sizes, got ${scales.join(',')}`);
    }
    const last = scales[scales.length - 1];
    if (sizeGiven && last !== size) bad('scales', `the last scale (${last}) must equal ${label('size')} (${size})`);
    size = last;
  }

  const blendDefault = style.map(() => 1);
  const blend = numbers('styleBlendWeights', blendDefault, nonNeg, 'non-negative numbers');
  if (blend.length !== style.length) {
    bad('styleBlendWeights', `${blend.length} weights given for ${style.length} style image${style.length === 1 ? '' : 's'}`);
  }
  const blendSum = blend.reduce((a, b) => a + b, 0);
  if (!(blendSum > 0)) bad('styleBlendWeights', 'expected weights with a positive sum');

  const styleLayers = layers('styleLayers', bb.defaults.styleLayers);
  const styleLayerWeights = numbers('styleLayerWeights', styleLayers.map(() => 1 / styleLayers.length), nonNeg, 'non-negative numbers');
  if (styleLayerWeights.length !== styleLayers.length) {
    bad('styleLayerWeights', `${styleLayerWeights.length} weights given for ${styleLayers.length} style layers (${styleLayers.join(',')})`);
  }

  const optimizer = oneOf('optimizer', DEFAULT_OPTIMIZER, ['lbfgs', 'adam', 'sgd'] as const);

  let init: InitSpec = 'noise';
  const rawInit = get('init') ?? (get('photorealistic') === true ? 'content' : undefined);
  if (rawInit === undefined || rawInit === 'noise' || rawInit === 'content' || rawInit === 'style') init = (rawInit ?? DEFAULT_INIT) as InitSpec;
  else {
    if (rawInit === '' || (typeof rawInit !== 'string' && !isImageObject(rawInit))) {
      bad('init', `expected noise, content, style, or an image file, got ${rawInit === '' ? 'an empty string' : show(rawInit)}`);
    }
    init = rawInit as ImageSource;
  }

  const weights = get('weights') ?? DEFAULT_WEIGHTS;
  if (typeof weights !== 'string' || weights === '' ||
    (weights.startsWith('random') && !/^random:(0|[1-9]\d{0,9})$/.test(weights))) {
    bad('weights', `expected pretrained, random:SEED (SEED a non-negative integer) or a weights file, got ${show(weights)}`);
  }

  const lossNormalization = oneOf('lossNormalization', DEFAULT_LOSS_NORMALIZATION, ['paper', 'scale-free'] as const);
  const lossWeights = lossNormalization === 'scale-free' ? bb.defaults.scaleFree : bb.defaults.paper;

  const verbose = get('verbose') ?? false;
  if (typeof verbose !== 'boolean') bad('verbose', `expected true or false, got ${show(verbose)}`);

  return {
    content,
    style,
    out,
    size,
    styleScale: number('styleScale', DEFAULT_STYLE_SCALE, (v) => positive(v) && v <= 16, 'a positive number (at most 16)'),
    styleBlendWeights: blend.map((w) => w / blendSum),
    contentWeight: number('contentWeight', lossWeights.contentWeight, nonNeg, 'a non-negative number'),
    styleWeight: number('styleWeight', lossWeights.styleWeight, nonNeg, 'a non-negative number'),
    tvWeight: number('tvWeight', lossWeights.tvWeight, nonNeg, 'a non-negative number'),
    contentLayers: layers('contentLayers', bb.defaults.contentLayers),
    styleLayers,
    styleLayerWeights,
    pooling: oneOf('pooling', bb.defaults.pooling, ['max', 'avg'] as const),
    init,
    optimizer,
    lr: number('lr', DEFAULT_LR[optimizer], positive, 'a positive number'),
    iters: number('iters', DEFAULT_ITERS, posInt, 'a positive integer'),
    lbfgsHistory: number('lbfgsHistory', DEFAULT_LBFGS_HISTORY, posInt, 'a positive integer'),
    lineSearch: oneOf('lineSearch', bb.defaults.lineSearch, ['none', 'strong-wolfe'] as const),
    seed: number('seed', DEFAULT_SEED, (v) => nonNegInt(v) && v <= 0xffffffff, 'an integer from 0 to 4294967295'),
    preserveColors: oneOf('preserveColors', DEFAULT_PRESERVE_COLORS, ['none', 'luminance', 'histogram'] as const),
    scales,
    saveEvery: number('saveEvery', DEFAULT_SAVE_EVERY, nonNegInt, 'a non-negative integer (0 = never)'),
    printEvery: number('printEvery', DEFAULT_PRINT_EVERY, nonNegInt, 'a non-negative integer (0 = never)'),
    log: path('log'),
    verbose: verbose as boolean,
    weights: weights as string,
    lossNormalization,
    featureTransform: oneOf('featureTransform', bb.defaults.featureTransform ?? 'none', FEATURE_TRANSFORMS),
    softmaxTemperature: number('softmaxTemperature', DEFAULT_SOFTMAX_TEMPERATURE, (v) => positive(v) && v <= 1e6, 'a positive number'),
    backbone,
    method,
    model: model as string,
    alpha: number('alpha', method === 'gatys' ? 1 : DEFAULT_ALPHA[method], (v) => Number.isFinite(v) && v >= 0 && v <= 1, 'a number from 0 to 1'),
    levels,
    styleSize: number('styleSize', size, sizeOk, sizeExpect),
    ...resolvePhotoreal(get, bad, lossWeights.tvWeight),
    maxMemory: get('maxMemory') === undefined ? undefined
      : parseBytes(get('maxMemory')) ?? bad('maxMemory', `expected a byte count such as 512M or 2G, got ${show(get('maxMemory'))}`),
    ...(contentMask ? { contentMask, styleMask } : {}),
  };
}
