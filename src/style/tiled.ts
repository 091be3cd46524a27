// Images larger than the adapter's storage-binding limit: the network runs in spatial tiles with the halo its
// receptive field needs, and the results are EXACTLY the untiled ones (up to float32 summation order).
//
// Geometry (per axis, pixel coordinates; float32 NCHW, batch 1). A level-k position j (after k poolings) covers the
// pixels [j·2^k, (j+1)·2^k), its "footprint". Tiles start at multiples of `align` (16, or 2^pools when larger), so a
// tile's positions at every level are exactly the global positions whose footprint lies inside the tile (floor
// pooling included, also at the image's far border). A position's value depends on pixels within r of its footprint,
// r = Σ over the 3x3 convs up to it of that conv's stride; it is exact in the tile when that cone is inside the tile
// or crosses a real image border (zero padding is the same there).
//
// The image is cut into cores (multiples of `align`) that partition it; each tile is its core plus a halo, all tiles
// the same size (shifted inward at the borders) so that one network plan serves them all.
//   Pass 1, per tile: forward; each style layer's Gram over the core's positions, the content loss over the core's.
//   Between passes (GPU): D_l = G_l - A_l and E_l, as the untiled style loss.
//   Pass 2, per tile: forward, backward with the loss gradient at layer l restricted to the "loss window": positions
//   whose cone meets the core (footprint within r of it). Those are exact when halo >= 2r + 2^k - 1, and they are
//   all the positions whose gradient reaches core pixels, so the image gradient on the core is exact; it is pasted
//   into the full gradient. Total variation runs on the whole image (3 channels: always small).
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { encodeSteps, type Step } from '../gpu/kernel.ts';
import { createTensor, destroyTensors, readBuffers, type Tensor } from '../gpu/tensor.ts';
import { backwardInto, deepest, forwardFrom, layersUpTo, layerShapes, planNetwork, pooledSize, type Network, type NetPlan } from '../nets/executor.ts';
import type { Pooling } from '../nets/vgg19.ts';
import { windowCopy, type Rect } from '../ops/crop.ts';
import { gram, symMatmul } from '../ops/gram.ts';
import { reduceFinalSpec, styleDiffSpec, tvLoss } from '../ops/loss.ts';
import { createScalars, reducePartials, vecAxpy, vecDot, type Scalars } from '../ops/vector.ts';
import { bind } from '../gpu/kernel.ts';
import { firstFeature, type LossConfig, type LossTerms } from './objective.ts';

// ---------------------------------------------------------------------------------------------- geometry

/** Level (poolings before it) and receptive-field radius r (pixels beyond its footprint) of a layer's output. */
export function receptiveField(net: Network, layer: string): { level: number; radius: number } {
  let level = 0;
  let radius = 0;
  for (const l of layersUpTo(net.desc, layer)) {
    if (l.op === 'pool') {
      if (l.ceil) throw new PainterlyError(`${net.desc.name}: tiling needs floor-mode pooling; ${l.name} uses ceil_mode`);
      level++;
    } else if (l.op === 'upsample') {
      throw new PainterlyError(`${net.desc.name}: tiling is for encoders; ${l.name} upsamples`);
    } else if (l.op === 'conv') radius += ((l.k - 1) / 2) * 2 ** level;
  }
  return { level, radius };
}

const ceilTo = (v: number, a: number) => Math.ceil(v / a) * a;
const bytesOf = (elems: number) => Math.max(16, ceilTo(elems * 4, 16));

/** The largest tensor (bytes) a network plan up to `upTo` on an h x w input allocates: activations, conv scratch, gradients. */
export function planPeakBytes(net: Network, h: number, w: number, upTo: string): number {
  let peak = net.desc.inputChannels * h * w;
  for (const [c, H, W] of layerShapes(net, h, w, upTo).values()) peak = Math.max(peak, c * H * W);
  return bytesOf(peak);
}

/** Whether an untiled plan for these loss layers at h x w would exceed the device's storage-binding limit. */
export function needsTiling(gpu: Gpu, net: Network, h: number, w: number, layers: string[]): boolean {
  return layers.length > 0 && planPeakBytes(net, h, w, deepest(net.desc, layers)) > gpu.maxBindingBytes;
}

export interface Tile {
  /** Top-left pixel of the tile (multiples of the grid's align). */
  y0: number;
  x0: number;
  /** The pixels this tile is responsible for (cores partition the image). */
  core: Rect;
}

export interface TileGrid {
  h: number;
  w: number;
  /** Size of every tile (the whole image along an axis that is not split). */
  tileH: number;
  tileW: number;
  halo: number;
  align: number;
  /** Loss layers the halo was sized for. */
  layers: string[];
  /** Whether the halo covers pass 2 (gradients) or only exact features on the cores. */
  backward: boolean;
  /** The per-tensor limit the tiles were sized for (the binding limit, or less under a memory budget). */
  maxBytes: number;
  tiles: Tile[];
  /** Level and radius per layer of `layers`. */
  fields: Map<string, { level: number; radius: number }>;
}

interface Axis { T: number; spans: { s: number; c0: number; c1: number }[] }

/** Splits [0, L) into about n cores of a multiple of `align` with tiles of one size T ≡ L (mod align). */
function splitAxis(L: number, n: number, halo: number, align: number): Axis {
  const whole: Axis = { T: L, spans: [{ s: 0, c0: 0, c1: L }] };
  if (n <= 1) return whole;
  const K = ceilTo(Math.ceil(L / n), align);
  const count = Math.ceil(L / K);
  let T = K + 2 * halo;
  T += (((L - T) % align) + align) % align;
  if (count < 2 || T >= L) return whole;
  const spans = Array.from({ length: count }, (_, i) => {
    const c0 = i * K;
    return { s: Math.min(Math.max(0, c0 - halo), L - T), c0, c1: Math.min(L, c0 + K) };
  });
  return { T, spans };
}

/**
 * Tiles for loss layers `layers` on an h x w image, as few as keep every tensor of the tile's network plan within
 * `maxBytes` (default: the device's binding limit). `backward: false` sizes the halo for forward features only.
 */
export function planTiles(gpu: Gpu, net: Network, h: number, w: number, layers: string[], opts: { backward?: boolean; maxBytes?: number } = {}): TileGrid {
  if (layers.length === 0) throw new PainterlyError('planTiles: expected at least one loss layer');
  const backward = opts.backward ?? true;
  const maxBytes = opts.maxBytes ?? gpu.maxBindingBytes;
  const upTo = deepest(net.desc, layers);
  const fields = new Map(layers.map((l) => [l, receptiveField(net, l)]));
  const pools = layersUpTo(net.desc, upTo).filter((l) => l.op === 'pool').length;
  const align = Math.max(16, 2 ** pools);
  const need = Math.max(...[...fields.values()].map(({ level, radius }) => (backward ? 2 * radius + 2 ** level - 1 : radius)));
  const halo = ceilTo(Math.max(1, need), align);
  if (bytesOf(3 * h * w) > gpu.maxBindingBytes) {
    throw new PainterlyError(`image ${w}x${h} needs ${(bytesOf(3 * h * w) / 2 ** 20).toFixed(1)} MiB per RGB tensor, past this adapter's ` +
      `storage binding limit of ${(gpu.maxBindingBytes / 2 ** 20).toFixed(1)} MiB; use a smaller size`);
  }
  let [ny, nx] = [1, 1];
  for (;;) {
    const ay = splitAxis(h, ny, halo, align);
    const ax = splitAxis(w, nx, halo, align);
    if (planPeakBytes(net, ay.T, ax.T, upTo) <= maxBytes) {
      const tiles: Tile[] = [];
      for (const sy of ay.spans) for (const sx of ax.spans) {
        tiles.push({ y0: sy.s, x0: sx.s, core: { y0: sy.c0, x0: sx.c0, h: sy.c1 - sy.c0, w: sx.c1 - sx.c0 } });
      }
      return { h, w, tileH: ay.T, tileW: ax.T, halo, align, layers: [...layers], backward, maxBytes, tiles, fields };
    }
    // Split the longer tile side further; stop when cores are down to one alignment unit.
    const canY = Math.ceil(h / ny) > align;
    const canX = Math.ceil(w / nx) > align;
    if (!canY && !canX) {
      throw new PainterlyError(`image ${w}x${h} cannot be tiled within ${(maxBytes / 2 ** 20).toFixed(2)} MiB per tensor: ` +
        `a tile needs at least ${2 * halo + align} px per side for layer ${upTo}; use a smaller size or shallower layers`);
    }
    if (canY && (ay.T >= ax.T || !canX)) ny++; else nx++;
  }
}

/** Rows/columns [lo, hi) of a level-k axis for a core [c0, c1) grown by `grow` pixels, clipped to the axis. */
function levelSpan(c0: number, c1: number, grow: number, level: number, L: number): [number, number] {
  const s = 2 ** level;
  let extent = L;
  for (let i = 0; i < level; i++) extent = Math.floor(extent / 2);
  return [Math.max(0, Math.floor((c0 - grow) / s)), Math.min(extent, Math.floor((c1 - 1 + grow) / s) + 1)];
}

/**
 * A tile's window at a layer, in the layer's global coordinates: 'core' = the positions the tile owns (their
 * footprints partition the image), 'loss' = positions whose cone meets the core (where pass 2 applies loss gradients).
 */
export function tileWindow(grid: TileGrid, tile: Tile, layer: string, kind: 'core' | 'loss'): Rect {
  const f = grid.fields.get(layer);
  if (!f) throw new PainterlyError(`tile grid was planned for layers [${grid.layers}], not ${layer}`);
  const grow = kind === 'core' ? 0 : f.radius;
  const c = tile.core;
  let [y0, y1] = levelSpan(c.y0, c.y0 + c.h, grow, f.level, grid.h);
  let [x0, x1] = levelSpan(c.x0, c.x0 + c.w, grow, f.level, grid.w);
  if (kind === 'core') { // footprints inside the core: [c0/2^k, c1/2^k) floored (c0 is aligned)
    const s = 2 ** f.level;
    [y0, y1] = [c.y0 / s, Math.min(y1, Math.floor((c.y0 + c.h) / s))];
    [x0, x1] = [c.x0 / s, Math.min(x1, Math.floor((c.x0 + c.w) / s))];
  }
  return { y0, x0, h: Math.max(0, y1 - y0), w: Math.max(0, x1 - x0) };
}

/** The same window relative to the tile's own plan. */
function local(grid: TileGrid, tile: Tile, layer: string, r: Rect): Rect {
  const s = 2 ** grid.fields.get(layer)!.level;
  return { ...r, y0: r.y0 - tile.y0 / s, x0: r.x0 - tile.x0 / s };
}

function submit(gpu: Gpu, steps: Step[], label = 'tile'): void {
  const enc = gpu.device.createCommandEncoder({ label });
  const pass = enc.beginComputePass({ label });
  encodeSteps(pass, steps);
  pass.end();
  gpu.device.queue.submit([enc.finish()]);
}

const view = (base: Tensor, shape: number[], label: string): Tensor => ({ buffer: base.buffer, shape, size: shape.reduce((a, b) => a * b, 1), label });

// ---------------------------------------------------------------------------------------------- targets

/** Content features per tile: P at each layer over the tile's loss window (tensors owned by the caller). */
export type TiledContentTargets = Map<string, Tensor[]>;

/** P_l for the tiles of `grid` (which must have been planned with these layers), computed tile by tile. */
export function tiledContentTargets(gpu: Gpu, net: Network, image: Tensor, layers: string[], pooling: Pooling, grid: TileGrid): TiledContentTargets {
  const out: TiledContentTargets = new Map(layers.map((l) => [l, []]));
  if (layers.length === 0) return out;
  if (!grid.backward) throw new PainterlyError('tiledContentTargets: expected a tile grid planned for the backward pass');
  const plan = planNetwork(gpu, net, { h: grid.tileH, w: grid.tileW, pooling, upTo: deepest(net.desc, layers), taps: layers, backward: false });
  const xt = createTensor(gpu, [3, grid.tileH, grid.tileW], 'tile.content');
  const fwd = forwardFrom(gpu, plan, xt);
  try {
    for (const tile of grid.tiles) {
      const steps = [windowCopy(gpu, image, xt, { from: { y0: tile.y0, x0: tile.x0, h: grid.tileH, w: grid.tileW } }), ...fwd];
      for (const l of layers) {
        const win = tileWindow(grid, tile, l, 'loss');
        const F = plan.acts.get(l)!;
        const P = createTensor(gpu, [F.shape[0], win.h, win.w], `P.${l}.tile`);
        out.get(l)!.push(P);
        steps.push(windowCopy(gpu, F, P, { from: local(grid, tile, l, win) }));
      }
      submit(gpu, steps, 'tiled content targets');
    }
  } finally {
    plan.destroy();
    xt.buffer.destroy();
  }
  return out;
}

/**
 * scale_l · F_l F_lᵀ of one image, tile by tile (for style images past the binding limit, or past `opts.maxBytes`
 * per tensor under a memory budget); values read back.
 */
export async function tiledGrams(
  gpu: Gpu, net: Network, image: Tensor, layers: string[], scales: number[], pooling: Pooling, opts: { maxBytes?: number } = {},
): Promise<Float32Array[]> {
  const [h, w] = [image.shape[1], image.shape[2]];
  const grid = planTiles(gpu, net, h, w, layers, { backward: false, maxBytes: opts.maxBytes });
  const plan = planNetwork(gpu, net, { h: grid.tileH, w: grid.tileW, pooling, upTo: deepest(net.desc, layers), taps: layers, backward: false });
  const xt = createTensor(gpu, [3, grid.tileH, grid.tileW], 'tile.style');
  const owned: Tensor[] = [xt];
  const acc = layers.map((l) => {
    const F = plan.acts.get(l)!;
    const N = F.shape[0];
    const mk = (label: string, shape: number[]) => { const t = createTensor(gpu, shape, label); owned.push(t); return t; };
    return { l, F, N, G: mk(`A.${l}`, [N, N]), Gt: mk(`A.${l}.tile`, [N, N]), crop: mk(`${l}.core`, [F.size]) };
  });
  try {
    const fwd = forwardFrom(gpu, plan, xt);
    grid.tiles.forEach((tile, t) => {
      const steps = [windowCopy(gpu, image, xt, { from: { y0: tile.y0, x0: tile.x0, h: grid.tileH, w: grid.tileW } }), ...fwd];
      layers.forEach((l, i) => {
        const a = acc[i];
        const core = tileWindow(grid, tile, l, 'core');
        if (core.h * core.w === 0) return;
        const Fc = view(a.crop, [a.N, core.h, core.w], `${l}.core`);
        steps.push(windowCopy(gpu, a.F, Fc, { from: local(grid, tile, l, core) }));
        if (t === 0) steps.push(...gram(gpu, Fc, a.G, scales[i]));
        else steps.push(...gram(gpu, Fc, a.Gt, scales[i]), vecAxpy(gpu, 1, a.Gt, a.G));
      });
      submit(gpu, steps, 'tiled grams');
    });
    return (await readBuffers(gpu, acc.map((a) => ({ buffer: a.G.buffer, bytes: a.G.size * 4 })))).map((v) => v.slice());
  } finally {
    plan.destroy();
    destroyTensors(...owned);
  }
}

// ---------------------------------------------------------------------------------------------- objective

export interface TiledTargets {
  content: TiledContentTargets;
  /** Target Gram A per style layer (as for GatysObjective). */
  style: Map<string, Tensor>;
}

interface Slot { kind: 'content' | 'style' | 'tv'; layer: string; weight: number; tile?: number }

interface TileSteps { pass1: Step[]; pass2: Step[] }
interface Program { x: GPUBuffer; grad: GPUBuffer; crops: Step[]; pastes: Step[]; tv: Step[] }

/**
 * The Gatys loss and its gradient (see objective.ts) computed in tiles: the same public surface as GatysObjective.
 * Each evaluate() submits pass 1 per tile, the style differences, pass 2 per tile and TV, then reads the terms once.
 */
export class TiledObjective {
  readonly n: number;
  readonly grid: TileGrid;
  last: LossTerms | undefined;
  private readonly gpu: Gpu;
  private readonly cfg: LossConfig;
  private readonly plan: NetPlan;
  private readonly scalars: Scalars;
  private readonly slots: Slot[];
  private readonly xt: Tensor;
  private readonly gt: Tensor;
  private readonly owned: Tensor[] = [];
  private readonly tileSteps: TileSteps[] = [];
  private readonly between: Step[] = [];
  private readonly programs: Program[] = [];

  constructor(gpu: Gpu, net: Network, grid: TileGrid, pooling: Pooling, cfg: LossConfig, targets: TiledTargets) {
    if (cfg.styleLayers.length !== cfg.styleLayerWeights.length) {
      throw new PainterlyError(`style layer weights: ${cfg.styleLayerWeights.length} given for ${cfg.styleLayers.length} style layers`);
    }
    if (!grid.backward) throw new PainterlyError('TiledObjective: expected a tile grid planned for the backward pass');
    this.gpu = gpu;
    this.cfg = cfg;
    this.grid = grid;
    const { h, w } = grid;
    this.n = 3 * h * w;
    const contentLayers = cfg.contentWeight !== 0 ? cfg.contentLayers : [];
    const styleLayers = cfg.styleWeight !== 0 ? cfg.styleLayers : [];
    for (const l of [...contentLayers, ...styleLayers]) {
      if (!grid.fields.has(l)) throw new PainterlyError(`TiledObjective: tile grid was planned for layers [${grid.layers}], not ${l}`);
    }
    const taps = [...contentLayers, ...styleLayers];
    this.plan = planNetwork(gpu, net, { h: grid.tileH, w: grid.tileW, pooling, upTo: deepest(net.desc, taps.length ? taps : [firstFeature(net.desc)]), taps, backward: true });
    const alloc = (shape: number[], label: string) => { const t = createTensor(gpu, shape, label); this.owned.push(t); return t; };
    this.xt = alloc([3, grid.tileH, grid.tileW], 'tile.x');
    this.gt = alloc([3, grid.tileH, grid.tileW], 'tile.grad');
    // Global sizes of each loss layer (for the scale-free content weight and the style normalisation 1/(N M)).
    const globalSize = (l: string) => {
      const f = grid.fields.get(l)!;
      let [H, W] = [h, w];
      for (let i = 0; i < f.level; i++) [H, W] = pooledSize(H, W);
      return { N: this.plan.acts.get(l)!.shape[0], M: H * W };
    };
    const T = grid.tiles.length;
    this.slots = [
      ...styleLayers.map((layer) => ({ kind: 'style' as const, layer, weight: cfg.styleWeight * cfg.styleLayerWeights[cfg.styleLayers.indexOf(layer)] })),
      ...(cfg.tvWeight !== 0 ? [{ kind: 'tv' as const, layer: 'image', weight: cfg.tvWeight / (cfg.normalization === 'scale-free' ? h * w : 1) }] : []),
      ...contentLayers.flatMap((layer) => {
        const { N, M } = globalSize(layer);
        const weight = cfg.contentWeight / (cfg.normalization === 'scale-free' ? N * M : 1);
        return grid.tiles.map((_, tile) => ({ kind: 'content' as const, layer, weight, tile }));
      }),
    ];
    this.scalars = createScalars(gpu, Math.max(1, this.slots.length), 'tiled loss scalars');
    const slotOf = (kind: Slot['kind'], layer: string, tile?: number) => this.slots.findIndex((s) => s.kind === kind && s.layer === layer && s.tile === tile);

    // Per style layer: global Gram, a tile's Gram, D, crop and product scratch shared by all tiles.
    const maxWin = (l: string, kind: 'core' | 'loss') => Math.max(...grid.tiles.map((t) => { const r = tileWindow(grid, t, l, kind); return r.h * r.w; }));
    const style = new Map(styleLayers.map((l) => {
      const { N, M } = globalSize(l);
      const A = targets.style.get(l);
      if (!A || A.size !== N * N) throw new PainterlyError(`TiledObjective: expected target Gram A [${N},${N}] for ${l}, got ${A ? `[${A.shape}]` : 'none'}`);
      const m = Math.max(maxWin(l, 'core'), maxWin(l, 'loss'));
      return [l, {
        N, inv: 1 / (N * M), A, G: alloc([N, N], `G.${l}`), Gt: alloc([N, N], `G.${l}.tile`), D: alloc([N, N], `D.${l}`),
        crop: alloc([N * m], `${l}.window`), prod: alloc([N * maxWin(l, 'loss')], `${l}.DF`),
        weight: this.slots[slotOf('style', l)].weight,
      }];
    }));
    const content = new Map(contentLayers.map((l) => {
      const Ps = targets.content.get(l);
      if (!Ps || Ps.length !== T) throw new PainterlyError(`TiledObjective: expected ${T} tiled content targets for ${l}, got ${Ps?.length ?? 0}`);
      const N = this.plan.acts.get(l)!.shape[0];
      const m = maxWin(l, 'core');
      return [l, { N, Ps, diff: alloc([N * m], `${l}.content.diff`), work: alloc([reducePartials(N * m)], `${l}.reduce`), weight: this.slots[slotOf('content', l, 0)].weight }];
    }));

    // The backward is recorded once; each tile substitutes its own loss steps at the taps' markers.
    const markers = new Map<Step, { layer: string; act: Tensor; grad: Tensor }>();
    const back = backwardInto(gpu, this.plan, (layer, act, grad) => {
      if (!style.has(layer) && !content.has(layer)) return [];
      const marker = { label: `loss marker ${layer}` } as Step;
      markers.set(marker, { layer, act, grad });
      return [marker];
    }, this.gt);
    const fwd = forwardFrom(gpu, this.plan, this.xt);

    grid.tiles.forEach((tile, t) => {
      const pass1 = [...fwd];
      for (const [l, s] of style) {
        const core = tileWindow(grid, tile, l, 'core');
        if (core.h * core.w === 0) continue;
        const Fc = view(s.crop, [s.N, core.h, core.w], `${l}.core`);
        pass1.push(windowCopy(gpu, this.plan.acts.get(l)!, Fc, { from: local(grid, tile, l, core) }));
        // G' = F Fᵀ / (N M) summed over cores in tile order (the first tile writes, the others add).
        if (t === 0) pass1.push(...gram(gpu, Fc, s.G, s.inv));
        else pass1.push(...gram(gpu, Fc, s.Gt, s.inv), vecAxpy(gpu, 1, s.Gt, s.G));
      }
      for (const [l, c] of content) {
        const core = tileWindow(grid, tile, l, 'core');
        if (core.h * core.w === 0) continue;
        const win = tileWindow(grid, tile, l, 'loss');
        const d = view(c.diff, [c.N, core.h, core.w], `${l}.diff`);
        pass1.push(
          windowCopy(gpu, this.plan.acts.get(l)!, d, { from: local(grid, tile, l, core) }),
          windowCopy(gpu, c.Ps[t], d, { from: { ...core, y0: core.y0 - win.y0, x0: core.x0 - win.x0 }, alpha: -1, beta: 1 }),
          ...vecDot(gpu, d, d, { s: this.scalars, i: slotOf('content', l, t), c: 0.5 }, c.work),
        );
      }
      const lossSteps = (layer: string, act: Tensor, grad: Tensor): Step[] => {
        const win = tileWindow(grid, tile, layer, 'loss');
        if (win.h * win.w === 0) return [];
        const at = local(grid, tile, layer, win);
        const steps: Step[] = [];
        const s = style.get(layer);
        if (s) { // grad += weight/(N M) · D F over the window
          const Fm = view(s.crop, [s.N, win.h, win.w], `${layer}.window`);
          const Y = view(s.prod, [s.N, win.h, win.w], `${layer}.DF`);
          steps.push(windowCopy(gpu, act, Fm, { from: at }), symMatmul(gpu, s.D, Fm, Y, s.weight * s.inv, false, 'tiled style'),
            windowCopy(gpu, Y, grad, { to: at, beta: 1 }));
        }
        const c = content.get(layer);
        if (c) { // grad += weight · (F - P) over the window
          steps.push(windowCopy(gpu, act, grad, { from: at, to: at, alpha: c.weight, beta: 1 }),
            windowCopy(gpu, c.Ps[t], grad, { to: at, alpha: -c.weight, beta: 1 }));
        }
        return steps;
      };
      const pass2 = [...fwd, ...back.steps.flatMap((st) => {
        const m = markers.get(st);
        return m ? lossSteps(m.layer, m.act, m.grad) : [st];
      })];
      this.tileSteps.push({ pass1, pass2 });
    });
    for (const [l, s] of style) {
      const Tp = Math.min(4096, Math.max(1, Math.ceil((s.N * s.N) / 16)));
      const partial = alloc([Tp], `${l}.style.partial`);
      this.between.push(
        bind(gpu, styleDiffSpec, { sG: s.G.buffer, sA: s.A.buffer, sD: s.D.buffer, spartial: partial.buffer }, { N: s.N, T: Tp, inv: s.inv },
          Math.ceil(Tp / 256), `style_diff ${l}`),
        bind(gpu, reduceFinalSpec, { partial: partial.buffer, scalars: this.scalars.buffer }, { T: Tp, slot: slotOf('style', l), factor: 0.25 }, 1, `reduce_final style ${l}`),
      );
    }
  }

  private programFor(x: Tensor, grad: Tensor): Program {
    const hit = this.programs.find((p) => p.x === x.buffer && p.grad === grad.buffer);
    if (hit) return hit;
    for (const t of [x, grad]) {
      if (t.size !== this.n) throw new PainterlyError(`${t.label}: expected ${this.n} values (3x${this.grid.h}x${this.grid.w}), got ${t.size}`);
    }
    const g = this.grid;
    const shape = [3, g.h, g.w];
    x = { ...x, shape };
    grad = { ...grad, shape };
    const crops = g.tiles.map((tile) => windowCopy(this.gpu, x, this.xt, { from: { y0: tile.y0, x0: tile.x0, h: g.tileH, w: g.tileW } }));
    const pastes = g.tiles.map((tile) => windowCopy(this.gpu, this.gt, grad, {
      from: { ...tile.core, y0: tile.core.y0 - tile.y0, x0: tile.core.x0 - tile.x0 }, to: tile.core,
    }));
    const tvSlot = this.slots.findIndex((s) => s.kind === 'tv');
    const tv = tvSlot >= 0 ? tvLoss(this.gpu, { x, grad, weight: this.slots[tvSlot].weight, scalars: this.scalars.buffer, slot: tvSlot }).steps : [];
    const p = { x: x.buffer, grad: grad.buffer, crops, pastes, tv };
    this.programs.push(p);
    return p;
  }

  /** f(x), with ∇f written into grad: 2 x tiles + 2 submits, one readback of the loss terms. */
  async evaluate(x: Tensor, grad: Tensor): Promise<number> {
    const p = this.programFor(x, grad);
    this.tileSteps.forEach((s, t) => submit(this.gpu, [p.crops[t], ...s.pass1], 'tiled pass 1'));
    submit(this.gpu, this.between, 'tiled style differences');
    this.tileSteps.forEach((s, t) => submit(this.gpu, [p.crops[t], ...s.pass2, p.pastes[t]], 'tiled pass 2'));
    submit(this.gpu, p.tv, 'tiled tv');
    const [vals] = await readBuffers(this.gpu, [{ buffer: this.scalars.buffer, bytes: this.slots.length * 4 }]);
    const terms: LossTerms = { content: 0, style: 0, tv: 0, total: 0 };
    this.slots.forEach((s, i) => {
      const v = vals[i];
      if (s.kind === 'content') terms.content += v;
      else if (s.kind === 'style') terms.style += (s.weight / this.cfg.styleWeight) * v;
      else terms.tv += v;
      terms.total += s.weight * v;
    });
    this.last = terms;
    return terms.total;
  }

  destroy(): void {
    this.plan.destroy();
    destroyTensors(...this.owned);
    this.scalars.buffer.destroy();
  }
}
