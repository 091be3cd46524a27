// The style-transfer loop: images in, image out. Environment-neutral (Node and browsers): files are the caller's.
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { readTensor, uploadTensor, type Tensor, createTensor, destroyTensors } from '../gpu/tensor.ts';
import { rgbToYiq, transferLuminance, matchColorHistogram } from '../image/color.ts';
import { createImage, type RgbImage } from '../image/image.ts';
import { fitLongestSide, resize } from '../image/resize.ts';
import { deepest, minimumSide as netMinimumSide, type Network } from '../nets/executor.ts';
import type { Pooling } from '../nets/vgg19.ts';
import { createAdam } from '../optim/adam.ts';
import { createLbfgs } from '../optim/lbfgs.ts';
import { createSgd } from '../optim/sgd.ts';
import type { Objective, Optimizer } from '../optim/types.ts';
import { firstFeature, GatysObjective, type LossConfig, type LossTerms } from './objective.ts';
import { contentTargets, styleTargets } from './targets.ts';
import { mulberry32 } from '../weights/random.ts';
import { needsTiling, planTiles, tiledContentTargets, TiledObjective } from './tiled.ts';

/** Fully resolved engine settings (see options.ts for the user-facing names, defaults and validation). */
export interface EngineSettings {
  size: number;
  scales: number[];
  styleScale: number;
  styleBlendWeights: number[];
  loss: LossConfig;
  pooling: Pooling;
  init: 'noise' | 'content' | 'style' | 'image';
  optimizer: 'lbfgs' | 'adam' | 'sgd';
  lr: number;
  iters: number;
  lbfgsHistory: number;
  lineSearch: 'none' | 'strong-wolfe';
  seed: number;
  preserveColors: 'none' | 'luminance' | 'histogram';
  saveEvery: number;
  /** Memory budget for L-BFGS history, bytes. */
  maxHistoryBytes?: number;
}

export interface StylizeImages {
  content: RgbImage;
  styles: RgbImage[];
  /** Used when init is 'image'. */
  init?: RgbImage;
}

/** One loss evaluation, as logged with --log (raw loss terms, weighted total). */
export interface EvaluationRecord {
  eval: number;
  /** Optimiser steps taken (at this scale) before this evaluation. */
  iter: number;
  content: number;
  style: number;
  tv: number;
  total: number;
  seconds: number;
  scale?: number;
}

export interface ProgressInfo {
  /** Index of the current scale and how many there are. */
  scale: number;
  scales: number;
  width: number;
  height: number;
  iter: number;
  iters: number;
  terms: LossTerms;
  elapsed: number;
  itPerSec: number;
  etaSeconds: number;
}

export interface StylizeHooks {
  onProgress?: (p: ProgressInfo) => void;
  onEvaluation?: (r: EvaluationRecord) => void;
  /** Intermediate images every `saveEvery` iterations (and never for the final one, which is the result). */
  onImage?: (img: RgbImage, iter: number, scale: number) => void | Promise<void>;
  onMessage?: (m: string) => void;
  signal?: AbortSignal;
}

export interface StylizeResult {
  image: RgbImage;
  terms: LossTerms | undefined;
  iterations: number;
  /** Why it stopped: all iterations done, optimiser converged, cancelled, or a non-finite loss. */
  stopped: 'done' | 'converged' | 'aborted' | 'non-finite';
  message?: string;
  seconds: number;
}

function deepestLayer(net: Network, l: LossConfig): string {
  const taps = [...(l.contentWeight !== 0 ? l.contentLayers : []), ...(l.styleWeight !== 0 ? l.styleLayers : [])];
  return deepest(net.desc, taps.length ? taps : [firstFeature(net.desc)]);
}

/** Smallest image side the deepest tapped layer allows: one pixel left after each pooling. */
function minimumSide(net: Network, l: LossConfig): number {
  return netMinimumSide(net.desc, deepestLayer(net, l));
}

/** White noise in [0, 1], seeded (the paper initialises from white noise). */
export function noiseImage(width: number, height: number, seed: number): RgbImage {
  const img = createImage(width, height);
  const r = mulberry32(seed * 2654435761 + 1);
  for (let i = 0; i < img.data.length; i++) img.data[i] = r() / 4294967296;
  return img;
}

/** The luminance Y of an image replicated into three channels (Gatys et al. 2017, luminance-only transfer). */
function lumaImage(img: RgbImage): RgbImage {
  const yiq = rgbToYiq(img);
  const n = img.width * img.height;
  const out = createImage(img.width, img.height);
  for (let c = 0; c < 3; c++) out.data.set(yiq.data.subarray(0, n), c * n);
  return out;
}

function toTensor(gpu: Gpu, img: RgbImage, label: string): Tensor {
  return uploadTensor(gpu, img.data, [3, img.height, img.width], label);
}

function clamp01(img: RgbImage): RgbImage {
  const out = createImage(img.width, img.height);
  for (let i = 0; i < img.data.length; i++) out.data[i] = Math.min(1, Math.max(0, img.data[i]));
  return out;
}

export async function stylizeImages(gpu: Gpu, net: Network, images: StylizeImages, s: EngineSettings, hooks: StylizeHooks = {}): Promise<StylizeResult> {
  if (images.styles.length === 0 && s.loss.styleWeight !== 0) throw new PainterlyError('no style image given');
  const t0 = performance.now();
  const scales = s.scales.length ? s.scales : [s.size];
  let current: RgbImage | undefined;
  let result: StylizeResult | undefined;
  for (let k = 0; k < scales.length; k++) {
    let content = fitLongestSide(images.content, scales[k]);
    let styles = images.styles.map((st) => fitLongestSide(st, Math.max(1, Math.round(scales[k] * s.styleScale))));
    if (s.preserveColors === 'histogram') styles = styles.map((st) => matchColorHistogram(st, content));
    const original = content;
    if (s.preserveColors === 'luminance') {
      content = lumaImage(content);
      styles = styles.map(lumaImage);
    }
    const { width, height } = content;
    const need = minimumSide(net, s.loss);
    if (Math.min(width, height) < need) {
      throw new PainterlyError(`the output is ${width}x${height} at size ${scales[k]}: ${deepestLayer(net, s.loss)} needs at least ${need}x${need}; use a larger --size/--scales`);
    }
    styles.forEach((st, i) => {
      if (Math.min(st.width, st.height) < need) {
        throw new PainterlyError(`style image ${i + 1} is ${st.width}x${st.height} at --style-scale ${s.styleScale}: ${deepestLayer(net, s.loss)} needs at least ${need}x${need}`);
      }
    });
    let init: RgbImage;
    if (current) init = resize(current, width, height);
    else if (s.init === 'noise') init = noiseImage(width, height, s.seed);
    else if (s.init === 'content') init = content;
    else if (s.init === 'style') init = resize(styles[0], width, height);
    else {
      if (!images.init) throw new PainterlyError('init "image" needs an init image');
      init = resize(images.init, width, height);
    }
    if (s.preserveColors === 'luminance' && (current || s.init === 'style' || s.init === 'image')) init = lumaImage(init);
    result = await stylizeAtScale(gpu, net, content, styles, init, s, hooks, k, scales.length);
    current = result.image;
    if (s.preserveColors === 'luminance') result.image = transferLuminance(result.image, original);
    if (result.stopped === 'aborted' || result.stopped === 'non-finite') break;
  }
  result!.seconds = (performance.now() - t0) / 1000;
  result!.image = clamp01(result!.image);
  return result!;
}

async function stylizeAtScale(
  gpu: Gpu, net: Network, content: RgbImage, styles: RgbImage[], init: RgbImage, s: EngineSettings,
  hooks: StylizeHooks, scale: number, scales: number,
): Promise<StylizeResult> {
  const { width: w, height: h } = content;
  const owned: Tensor[] = [];
  const cfg = s.loss;
  const contentT = toTensor(gpu, content, 'content');
  owned.push(contentT);
  const contentLayers = cfg.contentWeight !== 0 ? cfg.contentLayers : [];
  const lossLayers = [...contentLayers, ...(cfg.styleWeight !== 0 ? cfg.styleLayers : [])];
  // Past the adapter's storage-binding limit the network runs in tiles (tiled.ts): same losses and gradient.
  const grid = needsTiling(gpu, net, h, w, lossLayers) ? planTiles(gpu, net, h, w, lossLayers) : undefined;
  if (grid) {
    hooks.onMessage?.(`${w}x${h} runs in ${grid.tiles.length} tiles of ${grid.tileW}x${grid.tileH} ` +
      `(storage binding limit ${(gpu.maxBindingBytes / 2 ** 20).toFixed(0)} MiB)`);
  }
  const P = grid ? undefined : contentTargets(gpu, net, contentT, contentLayers, s.pooling);
  const Pt = grid ? tiledContentTargets(gpu, net, contentT, contentLayers, s.pooling, grid) : undefined;
  const styleTs = styles.map((st, i) => toTensor(gpu, st, `style${i}`));
  owned.push(...styleTs);
  const blend = s.styleBlendWeights.length ? s.styleBlendWeights : styles.map(() => 1);
  const A = await styleTargets(gpu, net, styleTs, blend, cfg.styleWeight !== 0 ? cfg.styleLayers : [], s.pooling, h, w);
  owned.push(...(P?.values() ?? []), ...[...(Pt?.values() ?? [])].flat(), ...A.values());
  const objective = grid
    ? new TiledObjective(gpu, net, grid, s.pooling, cfg, { content: Pt!, style: A })
    : new GatysObjective(gpu, net, h, w, s.pooling, cfg, { content: P!, style: A }, content);
  if (grid && cfg.mattingWeight) {
    objective.destroy();
    destroyTensors(...owned);
    throw new PainterlyError(`the matting regulariser does not run on tiled images (${w}x${h} is past the storage binding limit); use a smaller --size`);
  }

  const t0 = performance.now();
  let iter = 0;
  let evals = 0;
  const logged: Objective = {
    n: objective.n,
    evaluate: async (x, g) => {
      const f = await objective.evaluate(x, g);
      const t = objective.last!;
      hooks.onEvaluation?.({ eval: evals++, iter, content: t.content, style: t.style, tv: t.tv, total: t.total,
        seconds: (performance.now() - t0) / 1000, ...(scales > 1 ? { scale } : {}) });
      return f;
    },
  };
  const x = toTensor(gpu, init, 'x');
  // Before each step x is copied into `snap`; a finite step makes that snapshot the last good image (a swap).
  let snap = createTensor(gpu, x.shape, 'x.snapshot');
  let good = createTensor(gpu, x.shape, 'x.good');
  owned.push(x);
  const makeOptimizer = (): Optimizer => {
    if (s.optimizer === 'adam') return createAdam(gpu, logged, x, { lr: s.lr });
    if (s.optimizer === 'sgd') return createSgd(gpu, logged, x, { lr: s.lr });
    return createLbfgs(gpu, logged, x, {
      lr: s.lr, history: s.lbfgsHistory, lineSearch: s.lineSearch, maxHistoryBytes: s.maxHistoryBytes, onMessage: hooks.onMessage,
    });
  };
  const opt = makeOptimizer();
  let stopped: StylizeResult['stopped'] = 'done';
  let message: string | undefined;
  let haveGood = false;
  let retried = false;
  const copy = (from: Tensor, to: Tensor) => {
    const enc = gpu.device.createCommandEncoder({ label: 'snapshot' });
    enc.copyBufferToBuffer(from.buffer, 0, to.buffer, 0, from.size * 4);
    gpu.device.queue.submit([enc.finish()]);
  };
  try {
    while (iter < s.iters) {
      if (hooks.signal?.aborted) { stopped = 'aborted'; break; }
      copy(x, snap);
      const r = await opt.step();
      if (!Number.isFinite(r.loss)) {
        // Keep the last good image; L-BFGS gets one retry from it with a fresh history.
        if (s.optimizer === 'lbfgs' && !retried && haveGood) {
          retried = true;
          opt.reset();
          copy(good, x);
          hooks.onMessage?.(`non-finite loss at iteration ${iter}: L-BFGS history reset, retrying from the last good image`);
          continue;
        }
        if (haveGood) copy(good, x); else copy(snap, x);
        stopped = 'non-finite';
        message = `stopped at iteration ${iter}: the loss became non-finite (${r.loss}); kept the last good image. ` +
          'Try a smaller --lr or other loss weights.';
        hooks.onMessage?.(message);
        break;
      }
      [snap, good] = [good, snap];
      haveGood = true;
      iter++;
      const elapsed = (performance.now() - t0) / 1000;
      const itPerSec = iter / Math.max(elapsed, 1e-9);
      hooks.onProgress?.({
        scale, scales, width: w, height: h, iter, iters: s.iters, terms: objective.last!, elapsed, itPerSec,
        etaSeconds: (s.iters - iter) / Math.max(itPerSec, 1e-9),
      });
      if (s.saveEvery > 0 && iter % s.saveEvery === 0 && iter < s.iters && hooks.onImage) {
        await hooks.onImage(clamp01(await readImage(gpu, x, w, h)), iter, scale);
      }
      if (r.done) { stopped = 'converged'; message = r.reason; break; }
    }
    // The final image's loss, so the log ends with it (as iteration `iter`); not after an abort (a full evaluation
    // can take minutes when tiled).
    let final: number | undefined;
    if (stopped !== 'non-finite' && stopped !== 'aborted') {
      const g = createTensor(gpu, x.shape, 'grad.final');
      final = await logged.evaluate(x, g);
      g.buffer.destroy();
      if (!Number.isFinite(final) && haveGood) {
        copy(good, x);
        stopped = 'non-finite';
        message = 'the final loss was non-finite; kept the last good image';
      }
    }
    const image = await readImage(gpu, x, w, h);
    return { image, terms: objective.last, iterations: iter, stopped, message, seconds: (performance.now() - t0) / 1000 };
  } finally {
    opt.destroy();
    objective.destroy();
    destroyTensors(...owned, snap, good);
  }
}

async function readImage(gpu: Gpu, x: Tensor, w: number, h: number): Promise<RgbImage> {
  return { width: w, height: h, data: await readTensor(gpu, x) };
}
