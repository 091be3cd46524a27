// Tiled evaluation (images past the storage-binding limit): on a second device with a tiny binding limit, the tiled
// targets, loss terms and gradient equal the untiled ones computed on the normal test device (VGG19, and the
// vgg19-16x description: tiling is derived from the description).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openDawnGpu } from '../../src/gpu/dawn.ts';
import { PainterlyError, type Gpu } from '../../src/gpu/device.ts';
import { createTensor, poison, readTensor, uploadTensor, type Tensor } from '../../src/gpu/tensor.ts';
import { createVgg19, VGG19, VGG19_BLOCKS, type Pooling } from '../../src/nets/vgg19.ts';
import { VGG19_16X } from '../../src/nets/backbones.ts';
import { createNetwork, type Network } from '../../src/nets/executor.ts';
import { randomNetWeights } from '../../src/weights/net-weights.ts';
import { featuresReference, gatysReference, gramReference, type RefConv } from '../../src/reference/net.ts';
import { t64 } from '../../src/reference/tensor.ts';
import { windowCopy as windowCopyRef } from '../../src/reference/crop.ts';
import { GatysObjective, type LossConfig } from '../../src/style/objective.ts';
import { contentTargets, styleTargets } from '../../src/style/targets.ts';
import { stylizeImages, type EngineSettings } from '../../src/style/engine.ts';
import type { RgbImage } from '../../src/image/image.ts';
import { needsTiling, planTiles, receptiveField, tiledContentTargets, tileWindow, TiledObjective } from '../../src/style/tiled.ts';
import { assertClose, nextSeed, randArray, rng, takeGpuErrors, testGpu } from '../helpers.ts';

const test = suite('tiled objective');

/** VGG19's layer structure with small channel counts and He-style random weights. */
function tinyVgg(seed: number, width = [4, 6, 8, 8, 8]): (RefConv & { weight: Float32Array; bias: Float32Array })[] {
  const r = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  let cin = 3;
  return VGG19_BLOCKS.flatMap((block, b) => block.map((_, i) => {
    const cout = width[b];
    const std = Math.sqrt(2 / (cin * 9));
    const c = {
      name: `conv${b + 1}_${i + 1}`, cin, cout, k: 3,
      weight: Float32Array.from({ length: cout * cin * 9 }, () => std * gauss()),
      bias: Float32Array.from({ length: cout }, () => 0.05 * (r() - 0.5)),
    };
    cin = cout;
    return c;
  }));
}

const small = new Map<number, Promise<Gpu>>();
/** A device whose storage bindings are limited to `bytes` (one per limit, reused). */
function smallGpu(bytes: number): Promise<Gpu> {
  let g = small.get(bytes);
  if (!g) { g = openDawnGpu({ maxStorageBindingBytes: bytes, onError: (m) => { throw new Error(m); } }); small.set(bytes, g); }
  return g;
}

const shallow: LossConfig = {
  contentLayers: ['relu2_2'], styleLayers: ['relu1_1', 'relu2_1'], styleLayerWeights: [0.5, 0.5],
  contentWeight: 1, styleWeight: 1e3, tvWeight: 0.1, normalization: 'paper',
};
const deeper: LossConfig = {
  contentLayers: ['relu2_2', 'relu3_2'], styleLayers: ['relu1_1', 'relu2_1', 'relu3_1'], styleLayerWeights: [0.3, 0.3, 0.4],
  contentWeight: 2, styleWeight: 1e3, tvWeight: 3, normalization: 'scale-free',
};

/** The default configuration's layers (relu4_2 content; relu1_1..relu5_1 style): the halo for relu5_1 is 160 px. */
const defaults: LossConfig = {
  contentLayers: ['relu4_2'], styleLayers: ['relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1'],
  styleLayerWeights: [0.2, 0.2, 0.2, 0.2, 0.2], contentWeight: 1, styleWeight: 1e3, tvWeight: 0.1, normalization: 'paper',
};

const img = (h: number, w: number) => t64([3, h, w], randArray(3 * h * w, nextSeed(), 0, 1));

/**
 * Tiled (small device) against untiled (normal device). `backbone` 'vgg19-16x': that description (1x1 colour conv,
 * reflection padding, max pooling) with `width` per block, seeded random weights.
 */
async function compare(
  h: number, w: number, pooling: Pooling, cfg: LossConfig, styleSize: [number, number], width = [8, 8, 8, 8, 8], bothAxes = true,
  backbone: 'vgg19' | 'vgg19-16x' = 'vgg19',
) {
  const big = await testGpu();
  // Just enough for the whole RGB image: the first block's activations fit only for tiles of about a third of it
  // per side (8 channels), which makes many tiles with interior ones that have exactly the halo on each side.
  const gpu = await smallGpu(Math.ceil((3 * h * w * 4) / 16) * 16);
  let nets: Network[];
  if (backbone === 'vgg19') {
    const convs = tinyVgg(nextSeed(), width);
    nets = [big, gpu].map((g) => createVgg19(g, { convs, pretrained: false, source: 'test' }));
  } else {
    const channels = [3, ...VGG19_BLOCKS.flatMap((block, b) => block.map(() => width[b]))].slice(0, 14); // conv0, conv1_1..conv5_1
    const weights = randomNetWeights(VGG19_16X, nextSeed(), { channels });
    nets = [big, gpu].map((g) => createNetwork(g, VGG19_16X, weights));
  }
  const content = img(h, w), style = img(...styleSize), x = img(h, w);
  const layers = [...cfg.contentLayers, ...cfg.styleLayers];
  assert.ok(needsTiling(gpu, nets[1], h, w, layers) && !needsTiling(big, nets[0], h, w, layers), 'only the small device needs tiles');
  const grid = planTiles(gpu, nets[1], h, w, layers);
  const ys = new Set(grid.tiles.map((t) => t.y0)).size, xs = new Set(grid.tiles.map((t) => t.x0)).size;
  if (process.env.TILED_DEBUG) console.log(`tiles ${ys}x${xs} of ${grid.tileH}x${grid.tileW}, halo ${grid.halo}`);
  assert.ok(ys >= 2 && (xs >= 2 || !bothAxes), `several tiles in both directions (${ys} x ${xs}, tiles ${grid.tileH}x${grid.tileW}, halo ${grid.halo})`);
  assert.throws(() => new GatysObjective(gpu, nets[1], h, w, pooling, cfg, { content: new Map(), style: new Map() }),
    (e: Error) => e instanceof PainterlyError && /storage binding limit/.test(e.message), 'untiled plan exceeds the small limit');

  // Untiled, on the normal device.
  const up = (g: Gpu, t: ReturnType<typeof img>, label: string) => uploadTensor(g, t.data, t.shape, label);
  const P = contentTargets(big, nets[0], up(big, content, 'content'), cfg.contentLayers, pooling);
  const A = await styleTargets(big, nets[0], [up(big, style, 'style')], [1], cfg.styleLayers, pooling, h, w);
  const obj = new GatysObjective(big, nets[0], h, w, pooling, cfg, { content: P, style: A });
  const grad0 = createTensor(big, [3, h, w], 'grad');
  const f0 = await obj.evaluate(up(big, x, 'x'), grad0);
  const want = { terms: obj.last!, grad: await readTensor(big, grad0) };

  // Tiled, on the small device: targets first (the style image needs tiles too).
  const At = await styleTargets(gpu, nets[1], [up(gpu, style, 'style')], [1], cfg.styleLayers, pooling, h, w);
  for (const l of cfg.styleLayers) assertClose(await readTensor(gpu, At.get(l)!), await readTensor(big, A.get(l)!), 1e-5, `tiled style target ${l}`);
  const Pt = tiledContentTargets(gpu, nets[1], up(gpu, content, 'content'), cfg.contentLayers, pooling, grid);
  for (const l of cfg.contentLayers) {
    const full = t64(P.get(l)!.shape, await readTensor(big, P.get(l)!));
    for (let t = 0; t < grid.tiles.length; t++) {
      const win = tileWindow(grid, grid.tiles[t], l, 'loss');
      const crop = windowCopyRef(full, t64([full.shape[0], win.h, win.w]), win, { y0: 0, x0: 0 });
      assertClose(await readTensor(gpu, Pt.get(l)![t]), crop.data, 1e-5, `tiled content target ${l} tile ${t}`);
    }
  }
  const tiled = new TiledObjective(gpu, nets[1], grid, pooling, cfg, { content: Pt, style: At });
  const gx = up(gpu, x, 'x');
  const grad = createTensor(gpu, [3, h, w], 'grad');
  poison(gpu, grad);
  const f = await tiled.evaluate(gx, grad);
  for (const k of ['content', 'style', 'tv', 'total'] as const) assertClose([tiled.last![k]], [want.terms[k]], 1e-4, `${k} loss`);
  assert.ok(want.terms.content > 0 && want.terms.style > 0 && want.terms.tv > 0, 'the test exercises every loss');
  assertClose(await readTensor(gpu, grad), want.grad, 5e-5, 'gradient w.r.t. the image');
  assert.is(await tiled.evaluate(gx, grad), f, 'a second evaluation is bit-identical');
  assert.ok(Math.abs(f - f0) <= 1e-4 * Math.abs(f0));
  assert.is(takeGpuErrors().length, 0);
  tiled.destroy();
  obj.destroy();
  for (const n of nets) n.destroy();
}

test('tiled loss terms, gradient and targets equal untiled ones (100x90, shallow layers, avg pooling)', () => compare(100, 90, 'avg', shallow, [100, 90]));
test('... 4-channel first block (few, large tiles), 100x90, max pooling', () => compare(100, 90, 'max', shallow, [90, 100], [4, 6, 8, 8, 8]));
test('... max pooling, odd size 97x83, style image of another shape', () => compare(97, 83, 'max', shallow, [80, 96]));
test('... layers to relu3_2, scale-free weights, 161x147, max pooling', () => compare(161, 147, 'max', deeper, [150, 140]));
test('... layers to relu3_2, 150x171, avg pooling', () => compare(150, 171, 'avg', deeper, [90, 100]));

// relu5_1's halo is 160 px, so a tile is at least 336 px per side and splitting an axis in two takes ~1280 px. A
// tall strip keeps it cheap: 4-channel blocks make the first block's activations exceed the RGB-sized binding limit
// by 4/3, so the 1280 px axis splits into 2 tiles of 960 (cores of 640, overlapping by 640); the 37 px axis stays
// whole (relu5_1 is 2 px wide).
test('... default layers (relu4_2 content, relu1_1..relu5_1 style), 1280x37 strip, max pooling', () => compare(1280, 37, 'max', defaults, [1200, 39], [4, 4, 4, 4, 4], false));

// Tiling derived from the description, not VGG19's constants: the vgg19-16x description (1x1 conv first, reflection
// padding: a tile edge inside the image reflects other pixels than the image does, which the halo must absorb).
test('... vgg19-16x description (1x1 colour conv, reflection padding), 161x147, layers to relu3_2', () =>
  compare(161, 147, 'max', deeper, [150, 140], [8, 8, 8, 8, 8], true, 'vgg19-16x'));

test('receptive fields and tile windows: every core position is owned once, loss windows cover the cores', async () => {
  const gpu = await smallGpu(3 * 200 * 170 * 4);
  const net = createVgg19(gpu, { convs: tinyVgg(nextSeed()), pretrained: false, source: 'test' });
  assert.equal(receptiveField(net, 'relu1_1'), { level: 0, radius: 1 });
  assert.equal(receptiveField(net, 'relu3_2'), { level: 2, radius: 14 });
  assert.equal(receptiveField(net, 'relu5_1'), { level: 4, radius: 70 });
  const layers = ['relu1_1', 'relu2_1', 'relu3_2'];
  const grid = planTiles(gpu, net, 200, 170, layers);
  assert.ok(grid.tiles.length >= 4);
  for (const [l, H, W] of [['relu1_1', 200, 170], ['relu2_1', 100, 85], ['relu3_2', 50, 42]] as const) {
    const owner = new Int32Array(H * W);
    for (const tile of grid.tiles) {
      const c = tileWindow(grid, tile, l, 'core');
      const m = tileWindow(grid, tile, l, 'loss');
      assert.ok(m.y0 <= c.y0 && m.x0 <= c.x0 && m.y0 + m.h >= c.y0 + c.h && m.x0 + m.w >= c.x0 + c.w, 'loss window covers the core');
      for (let i = c.y0; i < c.y0 + c.h; i++) for (let j = c.x0; j < c.x0 + c.w; j++) owner[i * W + j]++;
    }
    assert.ok(owner.every((v) => v === 1), `${l}: each position owned by exactly one tile`);
  }
  assert.throws(() => planTiles(gpu, net, 200, 170, layers, { maxBytes: 4 * 64 * 64 * 4 }), /cannot be tiled within/);
});

test('tiled gradient matches the float64 reference too (75x70, max pooling)', async () => {
  const [h, w] = [75, 70];
  const cfg = { ...shallow, contentLayers: ['relu2_1'] };
  const gpu = await smallGpu(Math.ceil((3 * h * w * 4) / 16) * 16);
  const convs = tinyVgg(nextSeed());
  const net = createVgg19(gpu, { convs, pretrained: false, source: 'test' });
  const content = img(h, w), style = img(h, w), x = img(h, w);
  const layers = [...cfg.contentLayers, ...cfg.styleLayers];
  const grid = planTiles(gpu, net, h, w, layers);
  assert.ok(grid.tiles.length >= 4, `${grid.tiles.length} tiles`);
  const Pt = tiledContentTargets(gpu, net, uploadTensor(gpu, content.data, content.shape, 'c'), cfg.contentLayers, 'max', grid);
  const S = featuresReference(VGG19, convs, style, 'max', cfg.styleLayers);
  const A = new Map([...S].map(([l, F]) => [l, gramReference(F)]));
  const At = new Map<string, Tensor>([...A].map(([l, t]) => [l, uploadTensor(gpu, t.data, t.shape, l)]));
  const tiled = new TiledObjective(gpu, net, grid, 'max', cfg, { content: Pt, style: At });
  const grad = createTensor(gpu, [3, h, w], 'grad');
  poison(gpu, grad);
  await tiled.evaluate(uploadTensor(gpu, x.data, x.shape, 'x'), grad);
  const want = gatysReference(VGG19, convs, x, 'max', cfg, { content: featuresReference(VGG19, convs, content, 'max', cfg.contentLayers), style: A });
  for (const k of ['content', 'style', 'tv', 'total'] as const) assertClose([tiled.last![k]], [want.terms[k]], 2e-4, `${k} loss`);
  assertClose(await readTensor(gpu, grad), want.grad.data, 2e-3, 'gradient w.r.t. the image');
  tiled.destroy();
});

test('the engine picks the tiled path by itself and gives the same image (SGD, 2 iterations, 100x90)', async () => {
  const [h, w] = [90, 100];
  const convs = tinyVgg(nextSeed(), [8, 8, 8, 8, 8]);
  const image = (): RgbImage => ({ width: w, height: h, data: Float32Array.from(randArray(3 * h * w, nextSeed(), 0, 1)) });
  const images = { content: image(), styles: [image()] };
  const settings: EngineSettings = {
    size: w, scales: [w], styleScale: 1, styleBlendWeights: [], loss: { ...shallow, contentWeight: 1, styleWeight: 1e2 }, pooling: 'avg',
    init: 'content', optimizer: 'sgd', lr: 1e-3, iters: 2, lbfgsHistory: 5, lineSearch: 'none', seed: 1, preserveColors: 'none', saveEvery: 0,
  };
  const run = async (gpu: Gpu) => {
    const messages: string[] = [];
    const net = createVgg19(gpu, { convs, pretrained: false, source: 'test' });
    const r = await stylizeImages(gpu, net, images, settings, { onMessage: (m) => messages.push(m) });
    net.destroy();
    return { r, messages };
  };
  const want = await run(await testGpu());
  const got = await run(await smallGpu(Math.ceil((3 * h * w * 4) / 16) * 16));
  assert.equal(want.messages, []);
  assert.match(got.messages.join(), /100x90 runs in \d+ tiles of/);
  assert.is(got.r.stopped, 'done');
  for (const k of ['content', 'style', 'tv', 'total'] as const) assertClose([got.r.terms![k]], [want.r.terms![k]], 1e-4, `${k} loss`);
  assertClose(got.r.image.data, want.r.image.data, 1e-5, 'image after 2 SGD steps');
  let moved = 0;
  for (let i = 0; i < w * h * 3; i++) moved = Math.max(moved, Math.abs(want.r.image.data[i] - images.content.data[i]));
  assert.ok(moved > 1e-4, `the steps move the image (${moved})`);
});

test('releases the small devices', async () => {
  for (const g of small.values()) (await g).destroy();
  small.clear();
});

test.run();
