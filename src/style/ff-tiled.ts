// Feed-forward transfer (WCT, AdaIN) on images past the storage-binding limit: each level's encoder and decoder run
// in spatial tiles, and the result equals the untiled one up to float32 summation order.
//
// The image lives in host memory (a Float32Array); tiles are uploaded, their cores read back. Per level k (encoder
// to relu{k}_1 with k−1 poolings, so scale S = 2^(k−1); decoder back to pixels), receptive fields from the
// descriptions (src/nets/receptive.ts):
//   (a) statistics: the encoder over tiles with halo ≥ its radius; each tile's core features (the positions whose
//       footprint lies in the core) are exact, and their mean and centred covariance (GPU, as untiled) merge in
//       float64 over all cores (StatsAccumulator: Chan's pairwise rule, no uncentred sums);
//   (b) the transform y = T F + b (WCT) or a F + b (AdaIN) from the whole image's statistics, as untiled;
//   (c) encoder, transform and decoder as one chain over tiles with halo ≥ the chain's radius (encoder radius plus
//       the decoder's, composed at the feature scale): each tile's core pixels are exact and pasted into the output.
//       The features are recomputed rather than kept: level 1 of a 4096² image has 24 x 4096² floats (1.6 GB).
// Tiles start at multiples of S (and of the alignment `align` = S), cores partition the image, every tile of a
// grid has one size (shifted inward at the borders) so that one plan serves all.
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { createTensor, destroyTensors, readBuffers, uploadTensor, writeTensor, type Tensor } from '../gpu/tensor.ts';
import type { RgbImage } from '../image/image.ts';
import { forwardFrom, layerShapes, planNetwork, type Network } from '../nets/executor.ts';
import { receptiveField, type Field } from '../nets/receptive.ts';
import { channelAffine, channelMix } from '../ops/channel.ts';
import { windowCopy, type Rect } from '../ops/crop.ts';
import { featureStatsGpu, moments, StatsAccumulator, submit } from './ff-stats.ts';

/** How the feed-forward methods tile (all optional). */
export interface TilingOptions {
  /** Largest tensor (bytes) a plan may allocate; tiling starts when an untiled plan would exceed it (default: the
   * adapter's storage-binding limit). */
  maxBytes?: number;
  /** Forces tiling with cores of this many pixels per side (rounded up to the level's alignment; for tests). */
  tileSize?: number;
  /** Where the tiling decision is reported. */
  onMessage?: (m: string) => void;
}

/** The networks of one level. */
export interface TiledLevel { level: number; feature: string; encoder: Network; decoder: Network }

export interface FFTile {
  /** Top-left pixel of the tile (multiples of the grid's align). */
  y0: number;
  x0: number;
  /** The pixels this tile is responsible for (cores partition the image). */
  core: Rect;
}

export interface FFGrid { h: number; w: number; tileH: number; tileW: number; halo: number; align: number; tiles: FFTile[] }

const ceilTo = (v: number, a: number) => Math.ceil(v / a) * a;
const bytesOf = (elems: number) => Math.max(16, ceilTo(elems * 4, 16));
/** Bytes for messages: MiB, or KiB below 1 MiB (test devices). */
export const mib = (b: number) => (b >= 2 ** 20 ? `${(b / 2 ** 20).toFixed(1)} MiB` : `${(b / 1024).toFixed(1)} KiB`);

interface Axis { T: number; spans: { s: number; c0: number; c1: number }[] }

/** Splits [0, L) into cores of K (a multiple of align) with tiles of one size T ≡ L (mod align), core ± halo. */
function splitAxis(L: number, K: number, halo: number, align: number): Axis {
  const count = Math.ceil(L / K);
  let T = K + 2 * halo;
  T += (((L - T) % align) + align) % align;
  if (count < 2 || T >= L) return { T: L, spans: [{ s: 0, c0: 0, c1: L }] };
  return {
    T,
    spans: Array.from({ length: count }, (_, i) => {
      const c0 = i * K;
      return { s: Math.min(Math.max(0, c0 - halo), L - T), c0, c1: Math.min(L, c0 + K) };
    }),
  };
}

/**
 * Tiles of an h x w image for a chain with receptive field `field` (radius in pixels) whose coarsest scale is
 * `align` (2^poolings: tiles must share the image's pooling grid): halo = the radius rounded up to `align`, as few
 * tiles as keep `peak(tileH, tileW)` within maxBytes, or cores of `tileSize` when given.
 */
export function planFFGrid(h: number, w: number, field: Field, align: number, peak: (th: number, tw: number) => number, maxBytes: number, tileSize?: number): FFGrid {
  const halo = ceilTo(Math.max(1, Math.ceil(field.radius - 1e-9)), align);
  const make = (ay: Axis, ax: Axis): FFGrid => {
    const tiles: FFTile[] = [];
    for (const sy of ay.spans) for (const sx of ax.spans) {
      tiles.push({ y0: sy.s, x0: sx.s, core: { y0: sy.c0, x0: sx.c0, h: sy.c1 - sy.c0, w: sx.c1 - sx.c0 } });
    }
    return { h, w, tileH: ay.T, tileW: ax.T, halo, align, tiles };
  };
  if (tileSize !== undefined) {
    const K = ceilTo(Math.max(1, tileSize), align);
    return make(splitAxis(h, K, halo, align), splitAxis(w, K, halo, align));
  }
  let [ny, nx] = [1, 1];
  for (;;) {
    const ay = splitAxis(h, ceilTo(Math.ceil(h / ny), align), halo, align);
    const ax = splitAxis(w, ceilTo(Math.ceil(w / nx), align), halo, align);
    if (peak(ay.T, ax.T) <= maxBytes) return make(ay, ax);
    const canY = Math.ceil(h / ny) > align;
    const canX = Math.ceil(w / nx) > align;
    if (!canY && !canX) {
      throw new PainterlyError(`image ${w}x${h} cannot be tiled within ${mib(maxBytes)} per tensor: a tile needs at least ` +
        `${2 * halo + align} px per side; use a smaller size`);
    }
    if (canY && (ay.T >= ax.T || !canX)) ny++; else nx++;
  }
}

/** Largest tensor (bytes) of a forward plan of `net` up to `upTo` on an h x w input (input included). */
function netPeak(net: Network, h: number, w: number, upTo: string): number {
  let peak = net.desc.inputChannels * h * w;
  for (const [c, H, W] of layerShapes(net, h, w, upTo).values()) peak = Math.max(peak, c * H * W);
  return bytesOf(peak);
}

const lastLayer = (net: Network) => net.desc.layers.at(-1)!.name;

/** Tiles must share the image's pooling grid: starts and cores at multiples of the level's scale. */
function checkAligned(grid: FFGrid, s: number, what: string): void {
  const bad = grid.tiles.find((t) => [t.y0, t.x0, t.core.y0, t.core.x0].some((v) => v % s !== 0));
  if (bad) throw new PainterlyError(`${what}: tile at (${bad.x0}, ${bad.y0}) with core at (${bad.core.x0}, ${bad.core.y0}) is not aligned to the level's scale ${s}`);
}

/**
 * Geometry of a level: the encoder's field at its feature layer, the whole chain's (encoder then decoder, back at
 * scale 1), and the grids' alignment S = 2^poolings (the features' scale: tiles share the image's pooling grid).
 * (Aligning to 4 S, so that Winograd's 4x4 blocks also fall alike, did not reduce the float32 differences.)
 */
export function levelFields(lv: TiledLevel): { encoder: Field; chain: Field; align: number } {
  const encoder = receptiveField(lv.encoder.desc, lv.feature);
  const chain = receptiveField(lv.decoder.desc, undefined, encoder);
  if (chain.scale !== 1) throw new PainterlyError(`${lv.decoder.desc.name} does not return to the image's scale after ${lv.encoder.desc.name}`);
  return { encoder, chain, align: encoder.scale };
}

/** Largest tensor of the encoder plan on an h x w image. */
export function encoderPeak(lv: TiledLevel, h: number, w: number): number {
  return netPeak(lv.encoder, h, w, lv.feature);
}

/** Largest tensor of the encoder and decoder plans (and the decoded image) for an h x w image. */
export function levelPeak(lv: TiledLevel, h: number, w: number): number {
  const s = receptiveField(lv.encoder.desc, lv.feature).scale;
  return Math.max(encoderPeak(lv, h, w), netPeak(lv.decoder, Math.floor(h / s), Math.floor(w / s), lastLayer(lv.decoder)));
}

/** Grids of a level: statistics (encoder only) and the encode-transform-decode chain. */
export function levelGrids(lv: TiledLevel, h: number, w: number, maxBytes: number, tileSize?: number): { stats: FFGrid; chain: FFGrid } {
  const f = levelFields(lv);
  return {
    stats: planFFGrid(h, w, f.encoder, f.align, (th, tw) => encoderPeak(lv, th, tw), maxBytes, tileSize),
    chain: planFFGrid(h, w, f.chain, f.align, (th, tw) => levelPeak(lv, th, tw), maxBytes, tileSize),
  };
}

/** Copies an image window [3, r.h, r.w] out of a host image. */
function cropWindow(img: RgbImage, r: Rect): Float32Array {
  const out = new Float32Array(3 * r.h * r.w);
  for (let c = 0; c < 3; c++) for (let y = 0; y < r.h; y++) {
    const src = (c * img.height + r.y0 + y) * img.width + r.x0;
    out.set(img.data.subarray(src, src + r.w), (c * r.h + y) * r.w);
  }
  return out;
}

export function describeGrid(g: FFGrid): string {
  const ny = new Set(g.tiles.map((t) => t.core.y0)).size, nx = new Set(g.tiles.map((t) => t.core.x0)).size;
  return `${ny}x${nx} tiles of ${g.tileW}x${g.tileH} (halo ${g.halo} px)`;
}

/**
 * Mean and covariance (kind 'cov': WCT) or mean and unbiased variance (kind 'var': AdaIN) of the level's features
 * of a host image, over the cores of `grid` (planned for the encoder's field).
 */
export async function tiledFeatureStats(gpu: Gpu, lv: TiledLevel, img: RgbImage, grid: FFGrid, kind: 'cov' | 'var', signal?: AbortSignal): Promise<StatsAccumulator> {
  const s = receptiveField(lv.encoder.desc, lv.feature).scale;
  const plan = planNetwork(gpu, lv.encoder, { h: grid.tileH, w: grid.tileW, upTo: lv.feature, taps: [lv.feature], backward: false });
  const xt = createTensor(gpu, [3, grid.tileH, grid.tileW], 'tile.image');
  const F = plan.acts.get(lv.feature)!;
  const c = F.shape[0];
  checkAligned(grid, s, 'tiled statistics');
  const acc = new StatsAccumulator(c, kind === 'cov');
  try {
    const fwd = forwardFrom(gpu, plan, xt);
    for (const tile of grid.tiles) {
      if (signal?.aborted) break;
      // Feature positions whose footprint lies in the core (cores start at multiples of S; the last one may end
      // in a partial footprint that floor pooling drops).
      const k = tile.core;
      const y0 = k.y0 / s, x0 = k.x0 / s;
      const fh = Math.floor((k.y0 + k.h) / s) - y0, fw = Math.floor((k.x0 + k.w) / s) - x0;
      if (fh <= 0 || fw <= 0) continue;
      writeTensor(gpu, xt, cropWindow(img, { y0: tile.y0, x0: tile.x0, h: grid.tileH, w: grid.tileW }));
      const core = createTensor(gpu, [c, fh, fw], 'tile.core.features');
      try {
        submit(gpu, [...fwd, windowCopy(gpu, F, core, { from: { y0: y0 - tile.y0 / s, x0: x0 - tile.x0 / s, h: fh, w: fw } })], 'tiled statistics');
        const n = fh * fw;
        if (kind === 'cov') {
          const st = await featureStatsGpu(gpu, core);
          acc.add(n, st.mean, st.cov.map((v) => v * Math.max(1, n - 1)));
        } else {
          const m = await moments(gpu, core);
          acc.add(n, m.mean, m.variance.map((v) => v * (n - 1)));
        }
      } finally {
        core.buffer.destroy();
      }
    }
  } finally {
    plan.destroy();
    xt.buffer.destroy();
  }
  return acc;
}

/** The per-position map of a level: WCT's T [C,C] and b, or AdaIN's a and b per channel. */
export type LevelMap = { kind: 'mix'; T: Float64Array; b: Float64Array } | { kind: 'affine'; a: Float64Array; b: Float64Array };

/**
 * Encoder, map and decoder over the tiles of `grid` (planned for the level's chain field) of a host image whose
 * sides the level's scale divides: the decoded image, pasted core by core (host memory).
 */
export async function tiledDecode(gpu: Gpu, lv: TiledLevel, img: RgbImage, grid: FFGrid, map: LevelMap, signal?: AbortSignal): Promise<RgbImage> {
  const s = receptiveField(lv.encoder.desc, lv.feature).scale;
  const { tileH, tileW } = grid;
  if (tileH % s || tileW % s) throw new PainterlyError(`tiled decode: tiles ${tileW}x${tileH} are not multiples of the level's scale ${s}`);
  checkAligned(grid, s, 'tiled decode');
  const owned: Tensor[] = [];
  const enc = planNetwork(gpu, lv.encoder, { h: tileH, w: tileW, upTo: lv.feature, taps: [lv.feature], backward: false });
  const dec = planNetwork(gpu, lv.decoder, { h: tileH / s, w: tileW / s, upTo: lastLayer(lv.decoder), taps: [lastLayer(lv.decoder)], backward: false });
  const out: RgbImage = { width: img.width, height: img.height, data: new Float32Array(3 * img.width * img.height) };
  try {
    const alloc = (shape: number[], label: string) => { const t = createTensor(gpu, shape, label); owned.push(t); return t; };
    const xt = alloc([3, tileH, tileW], 'tile.image');
    const F = enc.acts.get(lv.feature)!;
    const c = F.shape[0];
    const Y = alloc(F.shape, 'tile.features');
    const upload = (v: Float64Array, shape: number[], label: string) => { const t = uploadTensor(gpu, Float32Array.from(v), shape, label); owned.push(t); return t; };
    const mapSteps = map.kind === 'mix'
      ? channelMix(gpu, F, upload(map.T, [c, c], 'wct.T'), upload(map.b, [c], 'wct.b'), Y)
      : channelAffine(gpu, F, upload(Float64Array.from([...map.a, ...map.b]), [2 * c], 'adain.coef'), Y);
    const D = dec.acts.get(lastLayer(lv.decoder))!;
    if (D.shape[0] !== 3 || D.shape[1] !== tileH || D.shape[2] !== tileW) {
      throw new PainterlyError(`${lv.decoder.desc.name} gives [${D.shape}] for a ${tileW}x${tileH} tile, expected [3,${tileH},${tileW}]`);
    }
    const steps = [...forwardFrom(gpu, enc, xt), ...mapSteps, ...forwardFrom(gpu, dec, Y)];
    for (const tile of grid.tiles) {
      if (signal?.aborted) break;
      writeTensor(gpu, xt, cropWindow(img, { y0: tile.y0, x0: tile.x0, h: tileH, w: tileW }));
      submit(gpu, steps, 'tiled decode');
      const [v] = await readBuffers(gpu, [{ buffer: D.buffer, bytes: D.size * 4 }]);
      const k = tile.core;
      for (let ch = 0; ch < 3; ch++) for (let y = 0; y < k.h; y++) {
        const src = (ch * tileH + k.y0 - tile.y0 + y) * tileW + k.x0 - tile.x0;
        out.data.set(v.subarray(src, src + k.w), (ch * img.height + k.y0 + y) * img.width + k.x0);
      }
    }
  } finally {
    enc.destroy();
    dec.destroy();
    destroyTensors(...owned);
  }
  return out;
}
