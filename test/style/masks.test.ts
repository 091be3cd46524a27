// Semantic masks (Luan et al. 2017): colour labels, resizing, masks through the network, the masked targets and the
// whole Gatys evaluation with masks against float64, and the masked loss's gradient against finite differences.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PainterlyError } from '../../src/gpu/device.ts';
import { createTensor, poison, readTensor, uploadTensor, type Tensor } from '../../src/gpu/tensor.ts';
import type { RgbImage } from '../../src/image/image.ts';
import { VGG19_16X } from '../../src/nets/backbones.ts';
import { createNetwork, layerShapes } from '../../src/nets/executor.ts';
import { VGG19 } from '../../src/nets/vgg19.ts';
import { featuresReference, gatysReference } from '../../src/reference/net.ts';
import { regionGram } from '../../src/reference/mask.ts';
import { t64, type T64 } from '../../src/reference/tensor.ts';
import { labelMasks, maskPyramid, resizeLabels, unmatchedMessage, type LabelMap } from '../../src/style/masks.ts';
import { GatysObjective, type LossConfig } from '../../src/style/objective.ts';
import { maskedStyleTargets, styleTargets, contentTargets } from '../../src/style/targets.ts';
import { randomNetWeights } from '../../src/weights/net-weights.ts';
import { assertClose, nextSeed, randArray, rng, testGpu } from '../helpers.ts';

const test = suite('semantic masks');

/** A mask image from a function of (x, y) giving an RGB triple in 0-255. */
function paint(w: number, h: number, f: (x: number, y: number) => [number, number, number]): RgbImage {
  const n = w * h;
  const data = new Float32Array(3 * n);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const c = f(x, y);
    for (let k = 0; k < 3; k++) data[k * n + y * w + x] = Math.min(255, Math.max(0, c[k])) / 255;
  }
  return { width: w, height: h, data };
}

const RED: [number, number, number] = [255, 0, 0], BLUE: [number, number, number] = [0, 0, 255];
const GREEN: [number, number, number] = [0, 200, 0], YELLOW: [number, number, number] = [250, 240, 0];

test('labels: JPEG-like noise and anti-aliased edges merge; matched, content-only and style-only labels', () => {
  const r = rng(nextSeed());
  const noisy = (c: [number, number, number]): [number, number, number] => c.map((v) => v + Math.round(6 * (r() - 0.5))) as [number, number, number];
  // Content 120x90: red left, blue right with a one-pixel anti-aliased column between, a green strip at the bottom.
  const content = paint(120, 90, (x, y) => {
    if (y >= 80) return noisy(GREEN);
    if (x === 60) { const t = r(); return noisy([255 * t, 0, 255 * (1 - t)]); }
    return noisy(x < 60 ? RED : BLUE);
  });
  // Style 50x70 (another size): red top, blue bottom, a yellow patch.
  const style = paint(50, 70, (x, y) => (x > 40 && y < 10 ? YELLOW : y < 35 ? RED : BLUE));
  const l = labelMasks(content, style);
  const name = (j: number) => {
    const c = l.colors[j];
    return [RED, BLUE, GREEN, YELLOW].findIndex((k) => Math.hypot(k[0] - c[0], k[1] - c[1], k[2] - c[2]) < 10);
  };
  assert.equal(l.colors.length, 4, `four labels (${JSON.stringify(l.colors)})`);
  assert.equal(l.matched.map(name).sort(), [0, 1]);
  assert.equal(l.contentOnly.map(name), [2]);
  assert.equal(l.styleOnly.map(name), [3]);
  assert.equal([l.content.width, l.content.height, l.style.width, l.style.height], [120, 90, 50, 70]);
  // Every anti-aliased pixel went to red or blue; the noisy red block is all one label.
  const red = l.colors.findIndex((_, j) => name(j) === 0), blue = l.colors.findIndex((_, j) => name(j) === 1);
  for (let y = 0; y < 80; y++) {
    assert.ok([red, blue].includes(l.content.labels[y * 120 + 60]), 'edge pixel joins red or blue');
    assert.is(l.content.labels[y * 120 + 10], red);
  }
  const msg = unmatchedMessage(l)!;
  assert.match(msg, /content-mask colours #[0-9a-f]{6} are not in the style mask: those regions get no style loss/);
  assert.match(msg, /style-mask colours #faf000 are not in the content mask/);
  assert.is(unmatchedMessage(labelMasks(style, style)), undefined);
});

test('labels: a photograph-like mask (hundreds of colours) is a one-line error', () => {
  const r = rng(nextSeed());
  const noise = paint(64, 64, () => [255 * r(), 255 * r(), 255 * r()]);
  assert.throws(() => labelMasks(noise, noise), (e: Error) => e instanceof PainterlyError && /colour labels, at most 32/.test(e.message) && !e.message.includes('\n'));
});

test('resizeLabels: nearest neighbour at pixel centres', () => {
  const m: LabelMap = { width: 2, height: 2, labels: Uint8Array.from([0, 1, 2, 3]) };
  assert.equal([...resizeLabels(m, 4, 4).labels], [0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3]);
  const big: LabelMap = { width: 4, height: 4, labels: Uint8Array.from({ length: 16 }, (_, i) => i) };
  assert.equal([...resizeLabels(big, 2, 2).labels], [5, 7, 13, 15]);
  assert.equal([...resizeLabels(big, 3, 1).labels], [8, 10, 11]);
});

function blocks(w: number, h: number, k: number, seed: number, block = 5): LabelMap {
  const r = rng(seed);
  const grid = Array.from({ length: Math.ceil(h / block) * Math.ceil(w / block) }, () => Math.floor(r() * k));
  const cols = Math.ceil(w / block);
  return { width: w, height: h, labels: Uint8Array.from({ length: w * h }, (_, i) => grid[Math.floor(Math.floor(i / w) / block) * cols + Math.floor((i % w) / block)]) };
}

test('maskPyramid: layer shapes, masks in [0, 1] summing to 1 everywhere (VGG19: avg pools, vgg19-16x: 1x1 conv)', () => {
  const layers = ['relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu4_2', 'relu5_1'];
  for (const desc of [VGG19, VGG19_16X]) {
    const map = blocks(41, 37, 3, nextSeed());
    const p = maskPyramid(desc, map, [0, 1, 2], layers);
    const shapes = layerShapes(desc, 37, 41, 'relu5_1');
    for (const l of layers) {
      const [, h, w] = shapes.get(l)!;
      const masks = p.get(l)!;
      assert.is(masks.length, 3);
      for (let i = 0; i < h * w; i++) {
        const s = masks[0][i] + masks[1][i] + masks[2][i];
        assert.ok(Math.abs(s - 1) < 1e-12 && masks.every((m) => m[i] >= 0 && m[i] <= 1 + 1e-12), `${desc.name} ${l}[${i}]: partition of unity`);
      }
    }
  }
  // By hand: the left half of a 4x6 image. conv1_1 (3x3, clipped): at row 0, column 2 the window covers columns 1-3,
  // rows 0-1, of which columns 1-2 are in the mask: 4/6.
  const half: LabelMap = { width: 6, height: 4, labels: Uint8Array.from({ length: 24 }, (_, i) => (i % 6 < 3 ? 0 : 1)) };
  const m = maskPyramid(VGG19, half, [0], ['conv1_1', 'pool1']);
  const c = m.get('conv1_1')![0];
  assertClose([c[2], c[3], c[0], c[6 + 2]], [4 / 6, 2 / 6, 1, 6 / 9], 1e-12, 'conv1_1 box');
  const q = maskPyramid(VGG19, half, [0], ['pool1']).get('pool1')![0];
  assert.is(q.length, 2 * 3);
});

/** VGG19-16x at reduced widths: 1x1 colour conv, reflection padding, max pooling. */
const WIDTHS = [3, 4, 4, 5, 5, 6, 6, 6, 6, 8, 8, 8, 8, 8];

function config(over: Partial<LossConfig> = {}): LossConfig {
  return {
    contentLayers: ['relu4_1'], styleLayers: ['relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1'],
    styleLayerWeights: [0.2, 0.2, 0.2, 0.2, 0.2], contentWeight: 1, styleWeight: 1e3, tvWeight: 0.1, normalization: 'paper', ...over,
  };
}

async function maskedSetup(h: number, w: number, sh: number, sw: number, cfg: LossConfig) {
  const gpu = await testGpu();
  // Tiny random ReLU networks can be dead at a deep layer (all zeros there): draw until every style layer is live.
  let weights = randomNetWeights(VGG19_16X, nextSeed(), { channels: WIDTHS });
  const probe = t64([3, h, w], randArray(3 * h * w, nextSeed(), 0, 1));
  for (let tries = 0; tries < 20; tries++) {
    const F = featuresReference(VGG19_16X, [...weights.convs.values()], probe, 'max', cfg.styleLayers);
    if ([...F.values()].every((f) => f.data.some((v) => v > 0))) break;
    weights = randomNetWeights(VGG19_16X, nextSeed(), { channels: WIDTHS });
  }
  const net = createNetwork(gpu, VGG19_16X, weights);
  const convs = [...weights.convs.values()];
  const img = (a: number, b: number) => t64([3, a, b], randArray(3 * a * b, nextSeed(), 0, 1));
  const [content, style, x] = [img(h, w), img(sh, sw), img(h, w)];
  // Labels 0 and 1 in both images, label 2 only in the content (no style loss there).
  const cmap = blocks(w, h, 3, nextSeed(), 9), smap = blocks(sw, sh, 2, nextSeed(), 11);
  const cm = maskPyramid(VGG19_16X, cmap, [0, 1], cfg.styleLayers);
  const sm = maskPyramid(VGG19_16X, smap, [0, 1], cfg.styleLayers);
  const P = featuresReference(VGG19_16X, convs, content, 'max', cfg.contentLayers);
  const S = featuresReference(VGG19_16X, convs, style, 'max', cfg.styleLayers);
  const masked = new Map(cfg.styleLayers.map((l) => [l, cm.get(l)!.map((mask, i) => ({ mask, target: regionGram(S.get(l)!, sm.get(l)![i]).G }))]));
  return { gpu, net, convs, content, style, x, cm, sm, P, masked };
}

test('GPU masked targets and the masked Gatys loss and gradient match float64 (vgg19-16x, reduced widths)', async () => {
  const cfg = config();
  const [h, w, sh, sw] = [36, 34, 41, 38];
  const { gpu, net, convs, style, x, cm, sm, P, masked } = await maskedSetup(h, w, sh, sw, cfg);
  const Pg = new Map<string, Tensor>([...P].map(([l, t]) => [l, uploadTensor(gpu, t.data, t.shape, l)]));
  const regions = maskedStyleTargets(gpu, net, uploadTensor(gpu, style.data, style.shape, 'style'), cfg.styleLayers, 'max', h, w, cm, sm);
  for (const l of cfg.styleLayers) {
    const rs = regions.get(l)!;
    assert.is(rs.length, 2, `${l}: two matched regions`);
    for (let i = 0; i < 2; i++) {
      const area = cm.get(l)![i].reduce((a, v) => a + v, 0);
      assertClose([rs[i].area], [area], 1e-12, `${l} area ${i}`);
      assertClose(await readTensor(gpu, rs[i].A), masked.get(l)![i].target.data.map((v) => v * area), 1e-4, `${l} A_${i}`);
      assertClose(await readTensor(gpu, rs[i].mask), cm.get(l)![i], 1e-7, `${l} mask ${i}`);
    }
  }
  const obj = new GatysObjective(gpu, net, h, w, 'max', cfg, { content: Pg, style: new Map(), masked: regions });
  const want = gatysReference(VGG19_16X, convs, x, 'max', cfg, { content: P, style: new Map(), masked });
  const grad = createTensor(gpu, x.shape, 'grad');
  poison(gpu, grad);
  await obj.evaluate(uploadTensor(gpu, x.data, x.shape, 'x'), grad);
  for (const k of ['content', 'style', 'tv', 'total'] as const) assertClose([obj.last![k]], [want.terms[k]], 2e-4, `${k} loss`);
  assert.ok(want.terms.style > 0 && want.terms.content > 0, 'both losses exercised');
  assertClose(await readTensor(gpu, grad), want.grad.data, 2e-3, 'gradient w.r.t. the image');
  obj.destroy();
  net.destroy();
});

test('one label covering both images: the masked loss equals the unmasked one (GPU)', async () => {
  const cfg = config();
  const [h, w, sh, sw] = [36, 34, 44, 40];
  const gpu = await testGpu();
  const net = createNetwork(gpu, VGG19_16X, randomNetWeights(VGG19_16X, nextSeed(), { channels: WIDTHS }));
  const up = (a: number, b: number, l: string) => uploadTensor(gpu, randArray(3 * a * b, nextSeed(), 0, 1), [3, a, b], l);
  const content = up(h, w, 'content'), style = up(sh, sw, 'style'), x = up(h, w, 'x');
  const all = (a: number, b: number): LabelMap => ({ width: b, height: a, labels: new Uint8Array(a * b) });
  const P = contentTargets(gpu, net, content, cfg.contentLayers, 'max');
  const A = await styleTargets(gpu, net, [style], [1], cfg.styleLayers, 'max', h, w);
  const regions = maskedStyleTargets(gpu, net, style, cfg.styleLayers, 'max', h, w,
    maskPyramid(VGG19_16X, all(h, w), [0], cfg.styleLayers), maskPyramid(VGG19_16X, all(sh, sw), [0], cfg.styleLayers));
  const plain = new GatysObjective(gpu, net, h, w, 'max', cfg, { content: P, style: A });
  const masked = new GatysObjective(gpu, net, h, w, 'max', cfg, { content: P, style: new Map(), masked: regions });
  const g0 = createTensor(gpu, x.shape, 'g0'), g1 = createTensor(gpu, x.shape, 'g1');
  await plain.evaluate(x, g0);
  await masked.evaluate(x, g1);
  assertClose([masked.last!.style, masked.last!.total], [plain.last!.style, plain.last!.total], 1e-4, 'loss');
  assertClose(await readTensor(gpu, g1), await readTensor(gpu, g0), 1e-3, 'gradient');
  plain.destroy(); masked.destroy(); net.destroy();
});

test('reference: the masked Gatys gradient matches finite differences along random directions', async () => {
  const cfg = config({ contentLayers: ['relu3_1'], styleLayers: ['relu1_1', 'relu2_1', 'relu3_1'], styleLayerWeights: [0.3, 0.3, 0.4] });
  const [h, w] = [20, 22];
  const { convs, x, P, masked } = await maskedSetup(h, w, 24, 21, cfg);
  const targets = { content: P, style: new Map<string, T64>(), masked };
  const f = (v: Float64Array) => gatysReference(VGG19_16X, convs, t64(x.shape, v), 'max', cfg, targets).terms.total;
  const { grad, terms } = gatysReference(VGG19_16X, convs, x, 'max', cfg, targets);
  assert.ok(terms.style > 0);
  const r = rng(nextSeed());
  for (let k = 0; k < 3; k++) {
    const d = Float64Array.from(x.data, () => r() - 0.5);
    const e = 1e-5;
    const fd = (f(x.data.map((v, i) => v + e * d[i])) - f(x.data.map((v, i) => v - e * d[i]))) / (2 * e);
    assertClose([fd], [grad.data.reduce((a, g, i) => a + g * d[i], 0)], 1e-5, `directional derivative ${k}`);
  }
});

test.run();
