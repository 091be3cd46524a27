// Feed-forward arbitrary style transfer: WCT (Li et al. 2017) and AdaIN (Huang & Belongie 2017) on encoder/decoder
// pairs run by the executor. Per level (coarse to fine): encode the current image to relu{K}_1, transform its
// features towards the style's statistics (transforms.ts: y = T F + b), decode; the next level encodes that output.
// The statistics are computed on the GPU (channel means, centred Grams) and read back (C <= 512: C² floats); the
// float64 transform is computed on the CPU and applied on the GPU.
//
// Sizes: a decoder doubles what its encoder halved, so the image is reflection-padded to a multiple of 2^(levels-1)
// (at most 16 px more per side) and the result cropped back: the output has exactly the content's size.
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { encodeSteps, type Step } from '../gpu/kernel.ts';
import { createTensor, destroyTensors, readBuffers, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { createImage, type RgbImage } from '../image/image.ts';
import { createNetwork, forwardFrom, planNetwork, type NetPlan, type Network } from '../nets/executor.ts';
import { channelAffine, channelMix, channelMoments } from '../ops/channel.ts';
import { gram } from '../ops/gram.ts';
import type { NetWeights } from '../nets/describe.ts';
import type { FeedForwardModelSpec } from './ff-models.ts';
import { adainMap, momentsFromVariance, styleColoring, wctMap, type ChannelMoments, type FeatureStats, type StyleColoring } from './transforms.ts';

export type FeedForwardMethod = 'wct' | 'adain';

/** Loads one checkpoint of the model into NetWeights (the caller knows where files live: folder, cache, memory). */
export type LoadNet = (file: string, desc: import('../nets/describe.ts').NetDescription, names: (layer: string) => string) => Promise<NetWeights>;

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
        const dec = await load(l.decoderFile, l.decoder, l.decoderNames);
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

function submit(gpu: Gpu, steps: Step[], label: string): void {
  const enc = gpu.device.createCommandEncoder({ label });
  const pass = enc.beginComputePass({ label });
  encodeSteps(pass, steps);
  pass.end();
  gpu.device.queue.submit([enc.finish()]);
}

/** Per-channel mean and unbiased variance of F [C,H,W] (GPU), read back. */
async function moments(gpu: Gpu, F: Tensor): Promise<{ mean: Float32Array; variance: Float32Array }> {
  const c = F.shape[0];
  const out = createTensor(gpu, [2 * c], 'moments');
  try {
    submit(gpu, channelMoments(gpu, F, out), 'moments');
    const [v] = await readBuffers(gpu, [{ buffer: out.buffer, bytes: 2 * c * 4 }]);
    return { mean: v.slice(0, c), variance: v.slice(c, 2 * c) };
  } finally {
    out.buffer.destroy();
  }
}

/** Means and centred covariance F̄F̄ᵀ/(M−1) of F on the GPU (centre, then a Gram), read back as float64. */
async function featureStatsGpu(gpu: Gpu, F: Tensor): Promise<FeatureStats> {
  const c = F.shape[0];
  const m = F.size / c;
  const { mean } = await moments(gpu, F);
  const coef = new Float32Array(2 * c);
  coef.fill(1, 0, c);
  for (let i = 0; i < c; i++) coef[c + i] = -mean[i];
  const coefT = uploadTensor(gpu, coef, [2 * c], 'centre.coef');
  const centred = createTensor(gpu, F.shape, 'centred');
  const G = createTensor(gpu, [c, c], 'covariance');
  try {
    submit(gpu, [...channelAffine(gpu, F, coefT, centred), ...gram(gpu, centred, G, 1 / Math.max(1, m - 1))], 'covariance');
    const [cov] = await readBuffers(gpu, [{ buffer: G.buffer, bytes: c * c * 4 }]);
    return { channels: c, mean: Float64Array.from(mean), cov: Float64Array.from(cov) };
  } finally {
    destroyTensors(coefT, centred, G);
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

/** Encodes style images at each level (their sizes need not match the content's). */
export async function encodeStyle(
  gpu: Gpu, model: FeedForwardModel, method: FeedForwardMethod, styles: RgbImage[], weights: number[], levels: number[],
): Promise<EncodedStyle> {
  if (styles.length === 0) throw new PainterlyError('no style image given');
  const sum = weights.reduce((a, b) => a + b, 0);
  if (weights.length !== styles.length || !(sum > 0)) throw new PainterlyError('style blend weights: one non-negative weight per style image, with a positive sum');
  const perLevel = new Map<number, (StyleColoring | ChannelMoments)[]>();
  for (const k of levels) {
    const lv = model.level(k);
    const list: (StyleColoring | ChannelMoments)[] = [];
    for (const img of styles) {
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

export interface FeedForwardOptions {
  /** Content/style blend of the features: 1 = full style, 0 = the content's reconstruction. */
  alpha: number;
  onLevel?: (level: number, index: number, count: number) => void;
  signal?: AbortSignal;
}

/** Cached content features of one level, so a new α re-decodes without re-encoding (the page's α slider). */
export interface EncodedContent { level: number; h: number; w: number; F: Tensor; stats?: FeatureStats; moments?: ChannelMoments }

/**
 * Stylises `content` with an encoded style; returns the image at the content's size (values not clamped).
 */
export async function stylizeFeedForward(
  gpu: Gpu, model: FeedForwardModel, content: RgbImage, style: EncodedStyle, o: FeedForwardOptions,
): Promise<RgbImage> {
  const deepestLevel = Math.max(...style.levels);
  const mult = 2 ** (deepestLevel - 1);
  const H = Math.ceil(content.height / mult) * mult;
  const W = Math.ceil(content.width / mult) * mult;
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

/** One level: encode x, transform the features, decode into a new image tensor. */
async function transferLevel(gpu: Gpu, model: FeedForwardModel, x: Tensor, style: EncodedStyle, k: number, alpha: number): Promise<Tensor> {
  const lv = model.level(k);
  const [, h, w] = x.shape;
  const enc = model.plan(lv.encoder, h, w, lv.feature);
  submit(gpu, forwardFrom(gpu, enc, x), `encode level ${k}`);
  const F = enc.acts.get(lv.feature)!;
  const c = F.shape[0];
  const styles = style.perLevel.get(k)!;
  const Y = createTensor(gpu, F.shape, `features level ${k}`);
  const owned: Tensor[] = [Y];
  try {
    if (style.method === 'wct') {
      const map = wctMap(await featureStatsGpu(gpu, F), styles as StyleColoring[], style.weights, alpha);
      const T = uploadTensor(gpu, Float32Array.from(map.T), [c, c], 'wct.T');
      const b = uploadTensor(gpu, Float32Array.from(map.b), [c], 'wct.b');
      owned.push(T, b);
      submit(gpu, channelMix(gpu, F, T, b, Y), 'wct');
    } else {
      const m = await moments(gpu, F);
      const { a, b } = adainMap(momentsFromVariance(m.mean, m.variance), styles as ChannelMoments[], style.weights, alpha);
      const coef = uploadTensor(gpu, Float32Array.from([...a, ...b]), [2 * c], 'adain.coef');
      owned.push(coef);
      submit(gpu, channelAffine(gpu, F, coef, Y), 'adain');
    }
    const dec = model.plan(lv.decoder, F.shape[1], F.shape[2], lv.decoder.desc.layers.at(-1)!.name);
    const out = createTensor(gpu, [3, h, w], `decoded level ${k}`);
    const last = dec.acts.get(lv.decoder.desc.layers.at(-1)!.name)!;
    if (last.shape[1] !== h || last.shape[2] !== w) throw new PainterlyError(`decoder ${k} gives ${last.shape[2]}x${last.shape[1]}, expected ${w}x${h}`);
    const encd = gpu.device.createCommandEncoder({ label: `decode level ${k}` });
    const pass = encd.beginComputePass();
    encodeSteps(pass, forwardFrom(gpu, dec, Y));
    pass.end();
    encd.copyBufferToBuffer(last.buffer, 0, out.buffer, 0, out.size * 4);
    gpu.device.queue.submit([encd.finish()]);
    return out;
  } finally {
    destroyTensors(...owned);
  }
}
