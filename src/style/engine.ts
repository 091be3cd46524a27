// The style-transfer loop: images in, image out. Environment-neutral (Node and browsers): files are the caller's.
import { fmtMiB, GpuMemoryError, PainterlyError, type Gpu } from '../gpu/device.ts';
import { dryRunGpu } from '../gpu/dry.ts';
import { readTensor, uploadTensor, type Tensor, createTensor, destroyTensors } from '../gpu/tensor.ts';
import { rgbToYiq, transferLuminance, matchColorHistogram } from '../image/color.ts';
import { clampImage, createImage, type RgbImage } from '../image/image.ts';
import { fitLongestSide, fittedSize, resize } from '../image/resize.ts';
import { createNetwork, deepest, layersUpTo, minimumSide as netMinimumSide, type Network } from '../nets/executor.ts';
import type { NetDescription, NetWeights } from '../nets/describe.ts';
import type { Pooling } from '../nets/vgg19.ts';
import { createAdam } from '../optim/adam.ts';
import { createLbfgs } from '../optim/lbfgs.ts';
import { createSgd } from '../optim/sgd.ts';
import type { Objective, Optimizer, StepResult } from '../optim/types.ts';
import { firstFeature, GatysObjective, type LossConfig, type LossTerms } from './objective.ts';
import { contentTargets, maskedStyleTargets, positionsAt, styleTargets } from './targets.ts';
import { featureTransformOf } from './transform.ts';
import { convInputChannels, normChannels } from '../nets/graph.ts';
import { labelMasks, maskPyramid, resizeLabels, unmatchedMessage, type LabelMap, type MaskLabels } from './masks.ts';
import type { MaskedRegion } from '../ops/mask.ts';
import { mulberry32 } from '../weights/random.ts';
import { needsTiling, planPeakBytes, planTiles, tiledContentTargets, tiledGrams, TiledObjective, type TileGrid } from './tiled.ts';

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
  /** GPU memory budget of a run, bytes (network, plan, optimiser state): tiles, or refuses, when the plan exceeds it. */
  maxMemoryBytes?: number;
  /** Reports the planned and the measured GPU bytes through onMessage. */
  verbose?: boolean;
}

export interface StylizeImages {
  content: RgbImage;
  styles: RgbImage[];
  /** Used when init is 'image'. */
  init?: RgbImage;
  /** Semantic masks (style/masks.ts): colour-coded segmentations of the content and the one style image; both or neither. */
  contentMask?: RgbImage;
  styleMask?: RgbImage;
}

/** Label maps of a scale: the content's at the output size, the style's at the style image's, and the matched labels. */
interface ScaleMasks { content: LabelMap; style: LabelMap; labels: number[] }

/** Labels of the two masks, checked; the message about unmatched labels (and stretched masks) said once. */
function prepareMasks(images: StylizeImages, s: EngineSettings, hooks: StylizeHooks): MaskLabels | undefined {
  const { contentMask: cm, styleMask: sm } = images;
  if (!cm && !sm) return undefined;
  if (!cm || !sm) throw new PainterlyError(`semantic masks come in pairs: ${cm ? 'a content mask without a style mask' : 'a style mask without a content mask'}`);
  if (images.styles.length !== 1) throw new PainterlyError(`semantic masks: expected one style image, got ${images.styles.length}`);
  if (s.loss.styleWeight === 0) return undefined;
  const stretched = (m: RgbImage, img: RgbImage) => Math.abs(Math.log((m.width / m.height) / (img.width / img.height))) > 0.02;
  for (const [m, img, what] of [[cm, images.content, 'content'], [sm, images.styles[0], 'style']] as const) {
    if (stretched(m, img)) hooks.onMessage?.(`masks: the ${what} mask (${m.width}x${m.height}) is stretched to the ${what} image's shape (${img.width}x${img.height})`);
  }
  const labels = labelMasks(cm, sm);
  const msg = unmatchedMessage(labels);
  if (msg) hooks.onMessage?.(msg);
  return labels;
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
  /** Most GPU bytes live at once during the run (counted from the buffers actually created). */
  peakBytes?: number;
}

/**
 * The one-line error when the output or a style image, fitted to some scale, is smaller than the deepest loss layer
 * allows (one pixel left after each pooling); undefined when every scale fits. From the images' sizes alone, so the
 * CLI refuses such input before it opens the GPU or downloads weights.
 */
export function imageSizeProblem(
  desc: NetDescription, s: EngineSettings, content: { width: number; height: number }, styles: { width: number; height: number }[],
): string | undefined {
  const l = s.loss;
  const taps = [...(l.contentWeight !== 0 ? l.contentLayers : []), ...(l.styleWeight !== 0 ? l.styleLayers : [])];
  const layer = deepest(desc, taps.length ? taps : [firstFeature(desc)]);
  const need = netMinimumSide(desc, layer);
  for (const size of s.scales.length ? s.scales : [s.size]) {
    const [w, h] = fittedSize(content.width, content.height, size);
    if (Math.min(w, h) < need) return `the output is ${w}x${h} at size ${size}: ${layer} needs at least ${need}x${need}; use a larger --size/--scales`;
    for (const [i, st] of styles.entries()) {
      const [sw, sh] = fittedSize(st.width, st.height, Math.max(1, Math.round(size * s.styleScale)));
      if (Math.min(sw, sh) < need) return `style image ${i + 1} is ${sw}x${sh} at --style-scale ${s.styleScale}: ${layer} needs at least ${need}x${need}`;
    }
  }
  return undefined;
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

export async function stylizeImages(gpu: Gpu, net: Network, images: StylizeImages, s: EngineSettings, hooks: StylizeHooks = {}): Promise<StylizeResult> {
  if (images.styles.length === 0 && s.loss.styleWeight !== 0) throw new PainterlyError('no style image given');
  const t0 = performance.now();
  gpu.resetPeak();
  const scales = s.scales.length ? s.scales : [s.size];
  const tooSmall = imageSizeProblem(net.desc, s, images.content, images.styles);
  if (tooSmall) throw new PainterlyError(tooSmall);
  const labels = prepareMasks(images, s, hooks);
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
    const masks = labels && { content: resizeLabels(labels.content, width, height), style: resizeLabels(labels.style, styles[0].width, styles[0].height), labels: labels.matched };
    result = await stylizeAtScale(gpu, net, content, styles, init, s, hooks, k, scales.length, masks);
    current = result.image;
    if (s.preserveColors === 'luminance') result.image = transferLuminance(result.image, original);
    if (result.stopped === 'aborted' || result.stopped === 'non-finite') break;
  }
  result!.seconds = (performance.now() - t0) / 1000;
  result!.image = clampImage(result!.image);
  result!.peakBytes = gpu.peakBytes;
  if (s.verbose) hooks.onMessage?.(`GPU memory: peak ${fmtMiB(gpu.peakBytes)} (counted from the buffers created)`);
  return result!;
}

// ---------------------------------------------------------------------------------------------- memory planning

/** What a run at one scale allocates on the GPU, counted by running its planning code on a dry-run device. */
export interface PlannedBytes {
  /** Most bytes live at once: network + plan + optimiser state (with a full L-BFGS history). */
  total: number;
  /** The network's weights, as uploaded and rearranged for the kernels. */
  network: number;
  /** Optimiser state: its vectors and the L-BFGS history. */
  optimizer: number;
  /** Everything else at the peak: activations, gradients, conv scratch, loss targets and scratch, images. */
  plan: number;
  /** Tiles of the plan (1 when untiled). */
  tiles: number;
}

const dryNets = new WeakMap<Network, { gpu: Gpu; net: Network }>();

/** The network rebuilt on a dry-run device (zero weights of the same shapes), once per network and adapter. */
function dryNetwork(gpu: Gpu, net: Network): { gpu: Gpu; net: Network } {
  let d = dryNets.get(net);
  if (!d || d.gpu.maxBindingBytes !== gpu.maxBindingBytes) {
    const dry = dryRunGpu(gpu);
    const convs: NetWeights['convs'] = new Map([...net.convs].map(([name, c]) => [name, {
      name, cin: c.cin, cout: c.cout, k: c.k, weight: new Float32Array(c.cout * c.cin * c.k * c.k), bias: new Float32Array(c.cout),
    }]));
    d = { gpu: dry, net: createNetwork(dry, net.desc, { convs, pretrained: net.pretrained, source: net.source }) };
    dryNets.set(net, d);
  }
  return d;
}

/** Network `desc` up to layer `upTo` with zero weights of its shapes, on a dry-run device: planning without the weights. */
function dryNetworkOf(gpu: Gpu, desc: NetDescription, upTo: string): Network {
  const dry = dryRunGpu(gpu);
  const convs: NetWeights['convs'] = new Map();
  const norms: NonNullable<NetWeights['norms']> = new Map();
  const cins = convInputChannels(desc, upTo);
  const normCh = normChannels(desc, upTo);
  for (const l of layersUpTo(desc, upTo)) {
    if (l.op === 'conv') {
      const cin = cins.get(l.name)!;
      convs.set(l.name, { name: l.name, cin, cout: l.cout, k: l.k, weight: new Float32Array(l.cout * cin * l.k * l.k), bias: new Float32Array(l.cout) });
    } else if (l.op === 'batchnorm') {
      const C = normCh.get(l.name)!;
      const z = () => new Float32Array(C);
      norms.set(l.name, { name: l.name, channels: C, weight: z(), bias: z(), mean: z(), variance: z().fill(1), eps: 1e-5 });
    }
  }
  const net = createNetwork(dry, desc, { convs, norms, pretrained: false, source: 'planning' });
  dryNets.set(net, { gpu: dry, net });
  return net;
}

/**
 * The planned bytes of a run with network `desc` (up to the deepest loss layer) without loading its weights: a dry
 * network of zero weights with the description's shapes (painterly info --size).
 */
export async function plannedBytesForDescription(
  gpu: Gpu, desc: NetDescription, width: number, height: number, s: EngineSettings,
): Promise<PlannedBytes & { grid?: TileGrid }> {
  const layers = lossLayersOf(s.loss);
  const net = dryNetworkOf(gpu, desc, deepest(desc, layers.length ? layers : [firstFeature(desc)]));
  return plannedBytesAt(gpu, net, width, height, s);
}

type ImageSize = { width: number; height: number };

/**
 * Refuses a run that no tiling fits in s.maxMemoryBytes, before its weights are loaded or downloaded: the check
 * stylizeImages makes at every scale (gridWithin, same message), on a dry network of `desc` up to `upTo` (the depth
 * the weights will be loaded to, so the same bytes). Needs only the adapter's limits and the images' sizes. Plans
 * without semantic masks; stylizeImages checks again, with them, once the weights are loaded.
 */
export async function checkMemoryBudget(
  gpu: Gpu, desc: NetDescription, upTo: string, images: { content: ImageSize; styles: ImageSize[] }, s: EngineSettings,
): Promise<void> {
  if (s.maxMemoryBytes === undefined) return;
  if (images.styles.length === 0 && s.loss.styleWeight !== 0) throw new PainterlyError('no style image given');
  const tooSmall = imageSizeProblem(desc, s, images.content, images.styles);
  if (tooSmall) throw new PainterlyError(tooSmall);
  const net = dryNetworkOf(gpu, desc, upTo);
  const layers = lossLayersOf(s.loss);
  try {
    for (const size of s.scales.length ? s.scales : [s.size]) {
      // Only the sizes matter on the dry device (its uploads are dropped): blank images of the fitted sizes.
      const content = createImage(...fittedSize(images.content.width, images.content.height, size));
      const styleSide = Math.max(1, Math.round(size * s.styleScale));
      const styles = images.styles.map((st) => createImage(...fittedSize(st.width, st.height, styleSide)));
      const { width: w, height: h } = content;
      const grid = needsTiling(gpu, net, h, w, layers) ? planTiles(gpu, net, h, w, layers) : undefined;
      await gridWithin(gpu, net, content, styles, s, layers, grid, s.maxMemoryBytes);
    }
  } finally {
    net.destroy();
  }
}

/** L-BFGS history the optimiser will grow to (allocated lazily, so a one-step dry run does not see it). */
function historyBytes(s: EngineSettings, n: number): number {
  if (s.optimizer !== 'lbfgs') return 0;
  const vec = Math.max(16, Math.ceil((n * 4) / 16) * 16);
  const fit = Math.floor((s.maxHistoryBytes ?? 2 ** 30) / (2 * n * 4)) - 1;
  const m = Math.max(1, Math.min(s.lbfgsHistory, fit));
  const lineSearch = s.lineSearch === 'strong-wolfe' ? 3 * vec : 0; // trial point and trial gradients
  return 2 * Math.min(m + 1, Math.max(1, s.iters)) * vec + lineSearch;
}

/**
 * The GPU bytes a run of `content` with `styles` (already at this scale's sizes) allocates with tile grid `grid`
 * (undefined: untiled): the engine's own planning code (targets, objective, optimiser, one evaluation) runs on a
 * dry-run device that counts the buffers it creates, plus the L-BFGS history the run grows to.
 */
export async function plannedBytes(
  gpu: Gpu, net: Network, content: RgbImage, styles: RgbImage[], s: EngineSettings, grid: TileGrid | undefined, masks?: ScaleMasks,
): Promise<PlannedBytes> {
  const d = dryNetwork(gpu, net);
  const network = d.gpu.liveBytes;
  d.gpu.resetPeak();
  const stats = { optimizerBytes: 0 };
  const dry = { ...s, iters: 1, saveEvery: 0, verbose: false, maxMemoryBytes: undefined };
  await runAtScale(d.gpu, d.net, content, styles, content, dry, {}, 0, 1, grid, stats, grid ? undefined : masks);
  const history = historyBytes(s, 3 * content.width * content.height);
  const total = d.gpu.peakBytes + history;
  const optimizer = stats.optimizerBytes + history;
  return { total, network, optimizer, plan: total - network - optimizer, tiles: grid?.tiles.length ?? 1 };
}

/** The planned bytes of a default-sized run: a width x height content and one style image of the same size. */
export async function plannedBytesAt(gpu: Gpu, net: Network, width: number, height: number, s: EngineSettings): Promise<PlannedBytes & { grid?: TileGrid }> {
  const content = createImage(width, height);
  const sw = Math.max(1, Math.round(width * s.styleScale));
  const sh = Math.max(1, Math.round(height * s.styleScale));
  const style = sw === width && sh === height ? content : createImage(sw, sh);
  const layers = lossLayersOf(s.loss);
  let grid = needsTiling(gpu, net, height, width, layers) ? planTiles(gpu, net, height, width, layers) : undefined;
  if (s.maxMemoryBytes !== undefined) grid = await gridWithin(gpu, net, content, [style], s, layers, grid, s.maxMemoryBytes);
  return { ...(await plannedBytes(gpu, net, content, [style], s, grid)), grid };
}

function lossLayersOf(cfg: LossConfig): string[] {
  return [...(cfg.contentWeight !== 0 ? cfg.contentLayers : []), ...(cfg.styleWeight !== 0 ? cfg.styleLayers : [])];
}

/**
 * The tile grid (from `grid`, which the binding limit may already require, to ever smaller tiles) whose planned
 * bytes fit `budget`; a one-line error saying what would fit when even the smallest tiles do not.
 */
async function gridWithin(
  gpu: Gpu, net: Network, content: RgbImage, styles: RgbImage[], s: EngineSettings, layers: string[],
  grid: TileGrid | undefined, budget: number, masks?: ScaleMasks,
): Promise<TileGrid | undefined> {
  const { width: w, height: h } = content;
  let best = (await plannedBytes(gpu, net, content, styles, s, grid, masks)).total;
  if (best <= budget) return grid;
  if (layers.length > 0) {
    let maxBytes = Math.min(gpu.maxBindingBytes, planPeakBytes(net, h, w, deepest(net.desc, layers)));
    let tiles = grid?.tiles.length ?? 1;
    for (let i = 0; i < 24; i++) {
      maxBytes = Math.floor(maxBytes / 2);
      let g: TileGrid;
      try {
        g = planTiles(gpu, net, h, w, layers, { maxBytes });
      } catch (e) {
        if (e instanceof PainterlyError) break; // tiles cannot get smaller
        throw e;
      }
      if (g.tiles.length === tiles) continue;
      tiles = g.tiles.length;
      const bytes = (await plannedBytes(gpu, net, content, styles, s, g)).total;
      if (bytes <= budget) return g;
      best = Math.min(best, bytes);
    }
  }
  throw new PainterlyError(`a ${w}x${h} run needs at least ${fmtMiB(best)} of GPU memory${layers.length ? ' (tiled as far as it goes)' : ''}, ` +
    `past the budget of ${fmtMiB(budget)}; use --max-memory ${Math.ceil(best / 2 ** 20)}M or more, or a smaller --size`);
}

async function stylizeAtScale(
  gpu: Gpu, net: Network, content: RgbImage, styles: RgbImage[], init: RgbImage, s: EngineSettings,
  hooks: StylizeHooks, scale: number, scales: number, masks?: ScaleMasks,
): Promise<StylizeResult> {
  const { width: w, height: h } = content;
  const lossLayers = lossLayersOf(s.loss);
  // Past the adapter's storage-binding limit the network runs in tiles (tiled.ts): same losses and gradient.
  let grid = needsTiling(gpu, net, h, w, lossLayers) ? planTiles(gpu, net, h, w, lossLayers) : undefined;
  if (s.maxMemoryBytes !== undefined) grid = await gridWithin(gpu, net, content, styles, s, lossLayers, grid, s.maxMemoryBytes, masks);
  if (masks && grid) {
    throw new PainterlyError(`semantic masks do not run on tiled images (${w}x${h} is past the ` +
      `${s.maxMemoryBytes !== undefined ? 'memory budget' : 'storage binding limit'}); use a smaller --size`);
  }
  const announce = async (g: TileGrid | undefined) => {
    if (g) {
      hooks.onMessage?.(`${w}x${h} runs in ${g.tiles.length} tiles of ${g.tileW}x${g.tileH} ` +
        `(storage binding limit ${(gpu.maxBindingBytes / 2 ** 20).toFixed(0)} MiB` +
        (s.maxMemoryBytes !== undefined ? `, memory budget ${fmtMiB(s.maxMemoryBytes)})` : ')'));
    }
    if (s.verbose) {
      const p = await plannedBytes(gpu, net, content, styles, s, g, masks);
      hooks.onMessage?.(`planned GPU memory at ${w}x${h}: ${fmtMiB(p.total)} (network ${fmtMiB(p.network)}, ` +
        `activations/scratch/targets ${fmtMiB(p.plan)}, optimiser ${fmtMiB(p.optimizer)})`);
    }
  };
  await announce(grid);
  try {
    return await runAtScale(gpu, net, content, styles, init, s, hooks, scale, scales, grid, undefined, masks);
  } catch (e) {
    if (!(e instanceof GpuMemoryError) || e.message.includes('at iteration') || lossLayers.length === 0 || masks) throw e;
    // Out of memory while planning: retry once in tiles planned within half of what failed.
    const failed = (await plannedBytes(gpu, net, content, styles, s, grid)).total;
    let smaller: TileGrid | undefined;
    try {
      smaller = await gridWithin(gpu, net, content, styles, s, lossLayers, grid, Math.floor(failed / 2));
    } catch (e2) {
      throw new GpuMemoryError(`${e.message}; the plan needs ${fmtMiB(failed)} and no tiling fits half of that (${(e2 as Error).message})`);
    }
    hooks.onMessage?.(`out of GPU memory with a plan of ${fmtMiB(failed)}; retrying within ${fmtMiB(Math.floor(failed / 2))}`);
    await announce(smaller);
    return await runAtScale(gpu, net, content, styles, init, s, hooks, scale, scales, smaller);
  }
}

/** One scale with a fixed tile grid; `stats` receives the optimiser's eager allocation (for plannedBytes). */
async function runAtScale(
  gpu: Gpu, net: Network, content: RgbImage, styles: RgbImage[], init: RgbImage, s: EngineSettings,
  hooks: StylizeHooks, scale: number, scales: number, grid: TileGrid | undefined, stats?: { optimizerBytes: number },
  masks?: ScaleMasks,
): Promise<StylizeResult> {
  const { width: w, height: h } = content;
  const cfg = s.loss;
  const contentLayers = cfg.contentWeight !== 0 ? cfg.contentLayers : [];
  // Everything this scale creates (plans, loss scratch, bind-time uniforms) is freed when it ends.
  const all = gpu.collect();
  const plan = await gpu.allocating(`the plan for ${w}x${h}`, async () => {
    // Targets: their plans and scratch (and the content and style images) are freed as soon as they are computed.
    const tc = gpu.collect();
    const contentT = toTensor(gpu, content, 'content');
    const transform = featureTransformOf(cfg);
    if (grid && transform) throw new PainterlyError(`a ${w}x${h} run needs tiling, which the ${transform.kind} feature transform does not support; use a smaller --size`);
    const P = grid ? undefined : contentTargets(gpu, net, contentT, contentLayers, s.pooling, transform);
    const Pt = grid ? tiledContentTargets(gpu, net, contentT, contentLayers, s.pooling, grid) : undefined;
    const styleTs = styles.map((st, i) => toTensor(gpu, st, `style${i}`));
    const blend = s.styleBlendWeights.length ? s.styleBlendWeights : styles.map(() => 1);
    const styleLayers = cfg.styleWeight !== 0 ? cfg.styleLayers : [];
    // Under a memory budget the style images run in tiles of the same per-tensor limit as the objective.
    // Semantic masks: per-region targets (untiled only) in place of the Grams.
    const masked: Map<string, MaskedRegion[]> | undefined = masks && !grid
      ? maskedStyleTargets(gpu, net, styleTs[0], styleLayers, s.pooling, h, w,
        maskPyramid(net.desc, masks.content, masks.labels, styleLayers), maskPyramid(net.desc, masks.style, masks.labels, styleLayers))
      : undefined;
    const A = masked ? new Map<string, Tensor>() : grid && grid.maxBytes < gpu.maxBindingBytes
      ? await styleTargetsWithin(gpu, net, styleTs, blend, styleLayers, s.pooling, h, w, grid.maxBytes)
      : await styleTargets(gpu, net, styleTs, blend, styleLayers, s.pooling, h, w, transform);
    const targets = [...(P?.values() ?? []), ...[...(Pt?.values() ?? [])].flat(), ...A.values(),
      ...[...(masked?.values() ?? [])].flat().flatMap((r) => [r.mask, r.A])];
    tc.destroy(targets.map((t) => t.buffer));
    const objective = grid
      ? new TiledObjective(gpu, net, grid, s.pooling, cfg, { content: Pt!, style: A })
      : new GatysObjective(gpu, net, h, w, s.pooling, cfg, { content: P!, style: A, masked }, content);
    if (grid && cfg.mattingWeight) {
      objective.destroy();
      throw new PainterlyError(`the matting regulariser does not run on tiled images (${w}x${h} is past the storage binding limit); use a smaller --size`);
    }
    return { objective, targets };
  }).catch((e) => { all.destroy(); throw e; });
  const { objective } = plan;
  const owned: Tensor[] = [...plan.targets];

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
  const makeOptimizer = (x: Tensor): Optimizer => {
    if (s.optimizer === 'adam') return createAdam(gpu, logged, x, { lr: s.lr });
    if (s.optimizer === 'sgd') return createSgd(gpu, logged, x, { lr: s.lr });
    return createLbfgs(gpu, logged, x, {
      lr: s.lr, history: s.lbfgsHistory, lineSearch: s.lineSearch, maxHistoryBytes: s.maxHistoryBytes, onMessage: hooks.onMessage,
    });
  };
  let x: Tensor, snap: Tensor, good: Tensor, opt: Optimizer;
  try {
    ({ x, snap, good, opt } = await gpu.allocating(`the image and optimiser state for ${w}x${h}`, () => {
      const x = toTensor(gpu, init, 'x');
      // Before each step x is copied into `snap`; a finite step makes that snapshot the last good image (a swap).
      const snap = createTensor(gpu, x.shape, 'x.snapshot');
      const good = createTensor(gpu, x.shape, 'x.good');
      const oc = gpu.collect();
      const opt = makeOptimizer(x);
      oc.stop();
      if (stats) stats.optimizerBytes = oc.bytes();
      return { x, snap, good, opt };
    }));
  } catch (e) {
    objective.destroy();
    all.destroy();
    throw e;
  }
  owned.push(x);
  // Later allocations (the first evaluation's loss scratch, the L-BFGS history as it grows) are checked per step.
  const step = async (): Promise<StepResult> => {
    try {
      return await gpu.allocating(`${iter === 0 ? 'the first evaluation' : `iteration ${iter + 1}`} at ${w}x${h}`, () => opt.step());
    } catch (e) {
      // Past the first step, out of memory is the history growing: no fallback plan, say what to change.
      if (e instanceof GpuMemoryError && iter > 0) {
        throw new PainterlyError(`${e.message}; use a smaller --lbfgs-history or --max-memory`);
      }
      throw e;
    }
  };
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
      const r = await step();
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
        await hooks.onImage(clampImage(await readImage(gpu, x, w, h)), iter, scale);
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
    all.destroy();
  }
}

/** styleTargets (targets.ts) with every style image run in tiles whose tensors stay within `maxBytes`. */
async function styleTargetsWithin(
  gpu: Gpu, net: Network, images: Tensor[], blend: number[], layers: string[], pooling: Pooling, outH: number, outW: number, maxBytes: number,
): Promise<Map<string, Tensor>> {
  const out = new Map<string, Tensor>();
  if (layers.length === 0) return out;
  const total = blend.reduce((a, b) => a + b, 0);
  const sums = layers.map(() => undefined as Float64Array | undefined);
  for (let k = 0; k < images.length; k++) {
    const [h, w] = [images[k].shape[1], images[k].shape[2]];
    const scales = layers.map((l) => (blend[k] / total) * (positionsAt(net, l, outH, outW) / positionsAt(net, l, h, w)));
    const vals = await tiledGrams(gpu, net, images[k], layers, scales, pooling, { maxBytes });
    vals.forEach((v, i) => {
      const acc = (sums[i] ??= new Float64Array(v.length));
      v.forEach((x, j) => { acc[j] += x; });
    });
  }
  layers.forEach((l, i) => {
    const n = Math.round(Math.sqrt(sums[i]!.length));
    out.set(l, uploadTensor(gpu, Float32Array.from(sums[i]!), [n, n], `A.${l}`));
  });
  return out;
}

async function readImage(gpu: Gpu, x: Tensor, w: number, h: number): Promise<RgbImage> {
  return { width: w, height: h, data: await readTensor(gpu, x) };
}
