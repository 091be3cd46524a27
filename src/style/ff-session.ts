// An interactive feed-forward session (the web page, a webcam): one model, the style encoded once per (style,
// method, levels) and reused for every content image and α, and, for a single-level run, the content's features
// kept on the GPU so that a new α only transforms and decodes (no encoding at all).
//
// Why only single-level runs re-decode from cached features: WCT/AdaIN over several levels encode each level's
// input from the previous level's output, which depends on α, so a new α must re-run the chain (it still reuses the
// encoded style). With one level, encode(content) does not depend on α and the result is exactly what
// stylizeFeedForward gives for that α (same kernels, same order: tested in test/style/ff-session.test.ts).
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { encodeSteps, type Step } from '../gpu/kernel.ts';
import { createTensor, destroyTensors, readBuffers, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import type { RgbImage } from '../image/image.ts';
import { settleTuning } from '../gpu/tune.ts';
import { forwardFrom } from '../nets/executor.ts';
import { channelAffine, channelMix } from '../ops/channel.ts';
import { featureStatsGpu, moments } from './ff-stats.ts';
import {
  cropImage, encodeStyle, reflectPadImage, stylizeFeedForward,
  type EncodedContent, type EncodedStyle, type FeedForwardMethod, type FeedForwardModel,
} from './feedforward.ts';
import { adainMap, momentsFromVariance, wctMap, type ChannelMoments, type StyleColoring } from './transforms.ts';

/** What the session has computed, for tests and the page's status line. */
export interface SessionCounters {
  /** Style images encoded (one per style per encodeStyle call that missed the cache). */
  styleEncodes: number;
  /** Content encoder passes (one per level of a chain; one per new content image on the single-level path). */
  contentEncodes: number;
  /** Decoder passes. */
  decodes: number;
}

function submit(gpu: Gpu, steps: Step[], label: string, copy?: { from: Tensor; to: Tensor }): void {
  const enc = gpu.device.createCommandEncoder({ label });
  const pass = enc.beginComputePass({ label });
  encodeSteps(pass, steps);
  pass.end();
  if (copy) enc.copyBufferToBuffer(copy.from.buffer, 0, copy.to.buffer, 0, copy.from.size * 4);
  gpu.device.queue.submit([enc.finish()]);
}

export class FeedForwardSession {
  readonly counters: SessionCounters = { styleEncodes: 0, contentEncodes: 0, decodes: 0 };
  private style: { key: string; enc: EncodedStyle } | undefined;
  private content: { key: string; image: RgbImage; cached: EncodedContent } | undefined;

  constructor(readonly gpu: Gpu, readonly model: FeedForwardModel) {}

  /** The encoded style for `key` (the caller's name for these styles, weights and sizes), encoding only on a miss. */
  async useStyle(key: string, method: FeedForwardMethod, styles: RgbImage[], weights: number[], levels: number[]): Promise<EncodedStyle> {
    const full = `${key}|${method}|${levels.join(',')}|${weights.join(',')}`;
    if (this.style?.key === full) return this.style.enc;
    const enc = await encodeStyle(this.gpu, this.model, method, styles, weights, levels);
    this.counters.styleEncodes += styles.length;
    this.style = { key: full, enc };
    return enc;
  }

  get encodedStyle(): EncodedStyle | undefined { return this.style?.enc; }

  /** Whether stylize() with this content key and the current style re-decodes without encoding anything. */
  cachedFor(contentKey: string): boolean {
    const s = this.style?.enc;
    return !!s && s.levels.length === 1 && this.content?.key === this.contentKey(contentKey, s);
  }

  /**
   * Stylises `content` with the current style (useStyle first). With a single level and a `contentKey` (the
   * caller's name for this exact image), the content's features are encoded once and kept: later calls with the same
   * key and another α only transform and decode. Without a key (video frames) or with several levels, the whole chain runs.
   */
  async stylize(content: RgbImage, alpha: number, contentKey?: string, signal?: AbortSignal): Promise<RgbImage> {
    const style = this.style?.enc;
    if (!style) throw new PainterlyError('FeedForwardSession.stylize: no style encoded yet (call useStyle first)');
    if (style.levels.length !== 1 || contentKey === undefined) {
      const out = await stylizeFeedForward(this.gpu, this.model, content, style, { alpha, signal });
      const n = signal?.aborted ? 0 : style.levels.length;
      this.counters.contentEncodes += n;
      this.counters.decodes += n;
      return out;
    }
    const key = this.contentKey(contentKey, style);
    if (this.content?.key !== key) {
      this.dropContent();
      this.content = { key, image: content, cached: await this.encodeContent(content, style) };
    }
    return this.decode(this.content.cached, style, alpha);
  }

  private contentKey(key: string, style: EncodedStyle): string {
    return `${key}|${style.method}|${style.levels[0]}`;
  }

  /** Encodes the (reflection-padded) content at the style's single level and keeps its features and statistics. */
  private async encodeContent(content: RgbImage, style: EncodedStyle): Promise<EncodedContent> {
    const k = style.levels[0];
    const lv = this.model.level(k);
    const mult = 2 ** (k - 1);
    const H = Math.ceil(content.height / mult) * mult;
    const W = Math.ceil(content.width / mult) * mult;
    const x = uploadTensor(this.gpu, reflectPadImage(content, H, W).data, [3, H, W], 'content');
    const plan = this.model.plan(lv.encoder, H, W, lv.feature);
    let F: Tensor | undefined;
    try {
      const act = plan.acts.get(lv.feature)!;
      // The plan's activations are reused by the next image of this size: keep a copy.
      F = createTensor(this.gpu, act.shape, `cached features level ${k}`);
      const steps = forwardFrom(this.gpu, plan, x);
      await settleTuning(this.gpu); // kernel variants of new shapes, timed once per adapter (tuning 'on' only)
      submit(this.gpu, steps, `encode level ${k}`, { from: act, to: F });
      this.counters.contentEncodes++;
      const cached: EncodedContent = { level: k, h: H, w: W, F };
      // The statistics stylizeFeedForward computes, with the same kernels (ff-stats.ts).
      if (style.method === 'adain') { const m = await moments(this.gpu, F); cached.moments = momentsFromVariance(m.mean, m.variance); }
      else cached.stats = await featureStatsGpu(this.gpu, F);
      return cached;
    } catch (e) {
      destroyTensors(F);
      throw e;
    } finally {
      x.buffer.destroy();
    }
  }

  /** Transform the cached features with α and decode, cropped back to the content's size. */
  private async decode(c: EncodedContent, style: EncodedStyle, alpha: number): Promise<RgbImage> {
    const gpu = this.gpu;
    const lv = this.model.level(c.level);
    const F = c.F;
    const ch = F.shape[0];
    const styles = style.perLevel.get(c.level)!;
    const Y = createTensor(gpu, F.shape, `features level ${c.level}`);
    const owned: Tensor[] = [Y];
    try {
      let steps: Step[];
      if (style.method === 'wct') {
        const map = wctMap(c.stats!, styles as StyleColoring[], style.weights, alpha);
        const T = uploadTensor(gpu, Float32Array.from(map.T), [ch, ch], 'wct.T');
        const b = uploadTensor(gpu, Float32Array.from(map.b), [ch], 'wct.b');
        owned.push(T, b);
        steps = channelMix(gpu, F, T, b, Y);
      } else {
        const { a, b } = adainMap(c.moments!, styles as ChannelMoments[], style.weights, alpha);
        const coef = uploadTensor(gpu, Float32Array.from([...a, ...b]), [2 * ch], 'adain.coef');
        owned.push(coef);
        steps = channelAffine(gpu, F, coef, Y);
      }
      const lastName = lv.decoder.desc.layers.at(-1)!.name;
      const dec = this.model.plan(lv.decoder, F.shape[1], F.shape[2], lastName);
      const last = dec.acts.get(lastName)!;
      if (last.shape[1] !== c.h || last.shape[2] !== c.w) throw new PainterlyError(`decoder ${c.level} gives ${last.shape[2]}x${last.shape[1]}, expected ${c.w}x${c.h}`);
      const all = [...steps, ...forwardFrom(gpu, dec, Y)];
      await settleTuning(gpu);
      submit(gpu, all, `decode level ${c.level}`);
      this.counters.decodes++;
      const [data] = await readBuffers(gpu, [{ buffer: last.buffer, bytes: last.size * 4 }]);
      const content = this.content!.image;
      return cropImage({ width: c.w, height: c.h, data: data.slice() }, content.height, content.width);
    } finally {
      destroyTensors(...owned);
    }
  }

  private dropContent(): void {
    if (this.content) destroyTensors(this.content.cached.F);
    this.content = undefined;
  }

  /** Frees the cached features (the model is the caller's). */
  destroy(): void {
    this.dropContent();
    this.style = undefined;
  }
}
