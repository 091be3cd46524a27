// Feed-forward arbitrary style transfer: WCT (Li et al. 2017) and AdaIN (Huang & Belongie 2017) on encoder/decoder
// pairs run by the executor. Per level (coarse to fine): encode the current image to relu{K}_1, transform its
// features towards the style's statistics (transforms.ts: y = T F + b), decode; the next level encodes that output.
// The statistics are computed on the GPU (channel means, centred Grams) and read back (C <= 512: C² floats); the
// float64 transform is computed on the CPU and applied on the GPU.
//
// Sizes: a decoder doubles what its encoder halved, so the image is reflection-padded to a multiple of 2^(levels-1)
// (at most 16 px more per side) and the result cropped back: the output has exactly the content's size.
import { settleTuning } from '../gpu/tune.ts';
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { encodeSteps } from '../gpu/kernel.ts';
import { createTensor, destroyTensors, readBuffers, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { createImage, type RgbImage } from '../image/image.ts';
import { createNetwork, forwardFrom, planNetwork, type NetPlan, type Network } from '../nets/executor.ts';
import { channelAffine, channelMix } from '../ops/channel.ts';
import type { NetWeights } from '../nets/describe.ts';
import type { FeedForwardModelSpec } from './ff-models.ts';
import { featureStatsGpu, moments, submit } from './ff-stats.ts';
import { describeGrid, encoderPeak, levelFields, levelGrids, levelPeak, mib, planFFGrid, tiledDecode, tiledFeatureStats, type LevelMap, type TilingOptions } from './ff-tiled.ts';
import { adainMap, momentsFromVariance, styleColoring, wctMap, type ChannelMoments, type FeatureStats, type StyleColoring } from './transforms.ts';

export type FeedForwardMethod = 'wct' | 'adain';

/**
 * Loads one checkpoint of the model into NetWeights (the caller knows where files live: folder, cache, memory).
 * `exact` (decoders): the file must hold that network and no other tensors (readNetWeights' exact).
 */
export type LoadNet = (
  file: string, desc: import('../nets/describe.ts').NetDescription, names: (layer: string) => string, o?: { exact?: boolean },
) => Promise<NetWeights>;

interface Level { level: number; feature: string; encoder: Network; decoder: Network }

/** A model's networks on the GPU, with plans cached per image size (video frames of one size reuse them). */
export class FeedForwardModel {
  readonly spec: FeedForwardModelSpec;
  readonly source: string;
  private readonly gpu: Gpu;
  private readonly levels = new Map<number, Level>();
  private readonly plans = new Map<string, NetPlan>();

  private constructor(gpu: Gpu, spec: FeedForwardModelSpec, source: string) {
    this.gpu = gpu;
    this.spec = spec;
    this.source = source;
  }

  /** Loads the encoders and decoders of `levels` (all of the model's when omitted). */
  static async load(gpu: Gpu, spec: FeedForwardModelSpec, load: LoadNet, source: string, levels = spec.levels): Promise<FeedForwardModel> {
    const m = new FeedForwardModel(gpu, spec, source);
    try {
      for (const k of levels) {
        const l = spec.level(k);
        const enc = await load(l.encoderFile, l.encoder, l.encoderNames);
        const dec = await load(l.decoderFile, l.decoder, l.decoderNames, { exact: true });
        m.levels.set(k, { level: k, feature: l.feature, encoder: createNetwork(gpu, l.encoder, enc), decoder: createNetwork(gpu, l.decoder, dec) });
      }
    } catch (e) {
      m.destroy();
      throw e;
    }
    return m;
  }

  level(k: number): Level {
    const l = this.levels.get(k);
    if (!l) throw new PainterlyError(`--levels: level ${k} of ${this.spec.name} is not loaded (available: ${[...this.levels.keys()].join(',')})`);
    return l;
  }

  /** A forward-only plan of a network at a size, cached. */
  plan(net: Network, h: number, w: number, tap: string): NetPlan {
    const key = `${net.desc.name}|${h}x${w}`;
    let p = this.plans.get(key);
    if (!p) {
      p = planNetwork(this.gpu, net, { h, w, upTo: tap, taps: [tap], backward: false });
      this.plans.set(key, p);
    }
    return p;
  }

  destroy(): void {
    for (const p of this.plans.values()) p.destroy();
    this.plans.clear();
    for (const l of this.levels.values()) { l.encoder.destroy(); l.decoder.destroy(); }
    this.levels.clear();
  }
}

/** What a style contributes at each level, computed once and reusable across content images. */
export interface EncodedStyle {
  method: FeedForwardMethod;
  levels: number[];
  /** Interpolation weights of the styles (sum 1). */
  weights: number[];
  /** Per level, per style: WCT colourings or AdaIN moments. */
  perLevel: Map<number, (StyleColoring | ChannelMoments)[]>;
}

function imageTensor(gpu: Gpu, img: RgbImage, label: string): Tensor {
  return uploadTensor(gpu, img.data, [3, img.height, img.width], label);
}

/** Encodes style images at each level (their sizes need not match the content's); styles past the limit run in tiles. */
export async function encodeStyle(
  gpu: Gpu, model: FeedForwardModel, method: FeedForwardMethod, styles: RgbImage[], weights: number[], levels: number[], tiling: TilingOptions = {},
): Promise<EncodedStyle> {
  if (styles.length === 0) throw new PainterlyError('no style image given');
  const sum = weights.reduce((a, b) => a + b, 0);
  if (weights.length !== styles.length || !(sum > 0)) throw new PainterlyError('style blend weights: one non-negative weight per style image, with a positive sum');
  const maxBytes = tiling.maxBytes ?? gpu.maxBindingBytes;
  const perLevel = new Map<number, (StyleColoring | ChannelMoments)[]>();
  for (const k of levels) {
    const lv = model.level(k);
    const list: (StyleColoring | ChannelMoments)[] = [];
    for (const [i, img] of styles.entries()) {
      if (tiling.tileSize !== undefined || encoderPeak(lv, img.height, img.width) > maxBytes) {
        const grid = planFFGrid(img.height, img.width, levelFields(lv).encoder, levelFields(lv).align, (th, tw) => encoderPeak(lv, th, tw), maxBytes, tiling.tileSize);
        tiling.onMessage?.(`style ${i + 1} (${img.width}x${img.height}), level ${k}: encoded in ${describeGrid(grid)}`);
        const acc = await tiledFeatureStats(gpu, lv, img, grid, method === 'wct' ? 'cov' : 'var');
        if (method === 'wct') list.push(styleColoring(acc.stats()));
        else { const m = acc.moments(); list.push(momentsFromVariance(m.mean, m.variance)); }
        continue;
      }
      const x = imageTensor(gpu, img, 'style');
      const plan = planNetwork(gpu, lv.encoder, { h: img.height, w: img.width, upTo: lv.feature, taps: [lv.feature], backward: false });
      try {
        submit(gpu, forwardFrom(gpu, plan, x), 'encode style');
        const F = plan.acts.get(lv.feature)!;
        if (method === 'wct') list.push(styleColoring(await featureStatsGpu(gpu, F)));
        else { const m = await moments(gpu, F); list.push(momentsFromVariance(m.mean, m.variance)); }
      } finally {
        plan.destroy();
        x.buffer.destroy();
      }
    }
    perLevel.set(k, list);
  }
  return { method, levels: [...levels], weights: weights.map((w) => w / sum), perLevel };
}

/** The level's per-position map from the content's statistics (covariance for WCT, moments for AdaIN). */
function levelMap(style: EncodedStyle, k: number, alpha: number, content: FeatureStats | { mean: ArrayLike<number>; variance: ArrayLike<number> }): LevelMap {
  const styles = style.perLevel.get(k)!;
  if (style.method === 'wct') {
    const { T, b } = wctMap(content as FeatureStats, styles as StyleColoring[], style.weights, alpha);
    return { kind: 'mix', T, b };
  }
  const m = content as { mean: ArrayLike<number>; variance: ArrayLike<number> };
  const { a, b } = adainMap(momentsFromVariance(m.mean, m.variance), styles as ChannelMoments[], style.weights, alpha);
  return { kind: 'affine', a, b };
}

/** Reflection padding of an image to (ph, pw) >= its size (bottom and right), for sizes the poolings divide. */
export function reflectPadImage(img: RgbImage, ph: number, pw: number): RgbImage {
  const { width: w, height: h } = img;
  if (ph === h && pw === w) return img;
  if (ph - h >= h || pw - w >= w) throw new PainterlyError(`image ${w}x${h} is too small to pad to ${pw}x${ph}`);
  const out = createImage(pw, ph);
  const refl = (i: number, n: number) => (i < n ? i : 2 * n - 2 - i);
  for (let c = 0; c < 3; c++) for (let y = 0; y < ph; y++) {
    const sy = refl(y, h);
    for (let x = 0; x < pw; x++) out.data[(c * ph + y) * pw + x] = img.data[(c * h + sy) * w + refl(x, w)];
  }
  return out;
}

export function cropImage(img: RgbImage, h: number, w: number): RgbImage {
  if (img.height === h && img.width === w) return img;
  const out = createImage(w, h);
  for (let c = 0; c < 3; c++) for (let y = 0; y < h; y++) {
    out.data.set(img.data.subarray((c * img.height + y) * img.width, (c * img.height + y) * img.width + w), (c * h + y) * w);
  }
  return out;
}

export interface FeedForwardOptions extends TilingOptions {
  /** Content/style blend of the features: 1 = full style, 0 = the content's reconstruction. */
  alpha: number;
  onLevel?: (level: number, index: number, count: number) => void;
  signal?: AbortSignal;
}

/** Cached content features of one level, so a new α re-decodes without re-encoding (the page's α slider). */
export interface EncodedContent { level: number; h: number; w: number; F: Tensor; stats?: FeatureStats; moments?: ChannelMoments }

/**
 * Stylises `content` with an encoded style; returns the image at the content's size (values not clamped). When a
 * level's untiled plan would hold a tensor past `maxBytes` (default: the binding limit), or `tileSize` is given,
 * every level runs in tiles on a host-memory image (ff-tiled.ts; the same result).
 */
export async function stylizeFeedForward(
  gpu: Gpu, model: FeedForwardModel, content: RgbImage, style: EncodedStyle, o: FeedForwardOptions,
): Promise<RgbImage> {
  const deepestLevel = Math.max(...style.levels);
  const mult = 2 ** (deepestLevel - 1);
  const H = Math.ceil(content.height / mult) * mult;
  const W = Math.ceil(content.width / mult) * mult;
  const maxBytes = o.maxBytes ?? gpu.maxBindingBytes;
  const peak = Math.max(...style.levels.map((k) => levelPeak(model.level(k), H, W)));
  if (o.tileSize !== undefined || peak > maxBytes) {
    o.onMessage?.(`${style.method}: ${W}x${H} runs in tiles (${o.tileSize !== undefined ? `forced cores of ${o.tileSize} px` : `untiled it needs a ${mib(peak)} tensor, past the ${mib(maxBytes)} limit`})`);
    return cropImage(await stylizeTiled(gpu, model, reflectPadImage(content, H, W), style, o, maxBytes), content.height, content.width);
  }
  let x = imageTensor(gpu, reflectPadImage(content, H, W), 'content');
  try {
    for (const [i, k] of style.levels.entries()) {
      if (o.signal?.aborted) break;
      o.onLevel?.(k, i, style.levels.length);
      const y = await transferLevel(gpu, model, x, style, k, o.alpha);
      x.buffer.destroy();
      x = y;
    }
    const [data] = await readBuffers(gpu, [{ buffer: x.buffer, bytes: x.size * 4 }]);
    return cropImage({ width: W, height: H, data: data.slice() }, content.height, content.width);
  } finally {
    x.buffer.destroy();
  }
}

/** All levels in tiles: statistics pass, then encode-transform-decode pass, per level. */
async function stylizeTiled(gpu: Gpu, model: FeedForwardModel, img: RgbImage, style: EncodedStyle, o: FeedForwardOptions, maxBytes: number): Promise<RgbImage> {
  for (const [i, k] of style.levels.entries()) {
    if (o.signal?.aborted) break;
    o.onLevel?.(k, i, style.levels.length);
    const lv = model.level(k);
    const grids = levelGrids(lv, img.height, img.width, maxBytes, o.tileSize);
    o.onMessage?.(`level ${k}: statistics in ${describeGrid(grids.stats)}, decoding in ${describeGrid(grids.chain)}`);
    const acc = await tiledFeatureStats(gpu, lv, img, grids.stats, style.method === 'wct' ? 'cov' : 'var', o.signal);
    if (o.signal?.aborted) break;
    const map = levelMap(style, k, o.alpha, style.method === 'wct' ? acc.stats() : acc.moments());
    img = await tiledDecode(gpu, lv, img, grids.chain, map, o.signal);
  }
  return img;
}

/** One level: encode x, transform the features, decode into a new image tensor. */
async function transferLevel(gpu: Gpu, model: FeedForwardModel, x: Tensor, style: EncodedStyle, k: number, alpha: number): Promise<Tensor> {
  const lv = model.level(k);
  const [, h, w] = x.shape;
  const enc = model.plan(lv.encoder, h, w, lv.feature);
  const encSteps = forwardFrom(gpu, enc, x);
  await settleTuning(gpu); // first use of these shapes on this adapter: time their kernel variants (tuning 'on' only)
  submit(gpu, encSteps, `encode level ${k}`);
  const F = enc.acts.get(lv.feature)!;
  const c = F.shape[0];
  const Y = createTensor(gpu, F.shape, `features level ${k}`);
  const owned: Tensor[] = [Y];
  try {
    const map = levelMap(style, k, alpha, style.method === 'wct' ? await featureStatsGpu(gpu, F) : await moments(gpu, F));
    if (map.kind === 'mix') {
      const T = uploadTensor(gpu, Float32Array.from(map.T), [c, c], 'wct.T');
      const b = uploadTensor(gpu, Float32Array.from(map.b), [c], 'wct.b');
      owned.push(T, b);
      submit(gpu, channelMix(gpu, F, T, b, Y), 'wct');
    } else {
      const coef = uploadTensor(gpu, Float32Array.from([...map.a, ...map.b]), [2 * c], 'adain.coef');
      owned.push(coef);
      submit(gpu, channelAffine(gpu, F, coef, Y), 'adain');
    }
    const dec = model.plan(lv.decoder, F.shape[1], F.shape[2], lv.decoder.desc.layers.at(-1)!.name);
    const out = createTensor(gpu, [3, h, w], `decoded level ${k}`);
    const last = dec.acts.get(lv.decoder.desc.layers.at(-1)!.name)!;
    if (last.shape[1] !== h || last.shape[2] !== w) throw new PainterlyError(`decoder ${k} gives ${last.shape[2]}x${last.shape[1]}, expected ${w}x${h}`);
    const decSteps = forwardFrom(gpu, dec, Y);
    await settleTuning(gpu);
    const encd = gpu.device.createCommandEncoder({ label: `decode level ${k}` });
    const pass = encd.beginComputePass();
    encodeSteps(pass, decSteps);
    pass.end();
    encd.copyBufferToBuffer(last.buffer, 0, out.buffer, 0, out.size * 4);
    gpu.device.queue.submit([encd.finish()]);
    return out;
  } finally {
    destroyTensors(...owned);
  }
}
