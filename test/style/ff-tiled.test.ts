// Tiled feed-forward transfer (images past the storage-binding limit): receptive fields from descriptions against
// float64 perturbation, the statistics merge against float64, and tiled WCT/AdaIN results against untiled ones
// (small random networks on a device with a tiny binding limit; the real wct-16x networks forced into tiles).
import { readFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openDawnGpu } from '../../src/gpu/dawn.ts';
import type { Gpu } from '../../src/gpu/device.ts';
import type { RgbImage } from '../../src/image/image.ts';
import { decodeImage } from '../../src/image/index.ts';
import { fitLongestSide } from '../../src/image/resize.ts';
import { dependencySpan, receptiveField, receptiveFields } from '../../src/nets/receptive.ts';
import { VGG19 } from '../../src/nets/vgg19.ts';
import { netForward } from '../../src/reference/net.ts';
import { t64 } from '../../src/reference/tensor.ts';
import { encodeStyle, FeedForwardModel, reflectPadImage, stylizeFeedForward, type FeedForwardMethod } from '../../src/style/feedforward.ts';
import { loadFeedForwardModel } from '../../src/style/ff-load.ts';
import { StatsAccumulator } from '../../src/style/ff-stats.ts';
import { levelFields, levelGrids, planFFGrid, tiledDecode, tiledFeatureStats, type FFGrid } from '../../src/style/ff-tiled.ts';
import { receptiveField as gatysField } from '../../src/style/tiled.ts';
import { adainMap, featureStats, momentsFromVariance, styleColoring, wctMap } from '../../src/style/transforms.ts';
import { randomNetWeights } from '../../src/weights/net-weights.ts';
import { assertClose, nextSeed, randArray, requireShared, rng, takeGpuErrors, testGpu, untilShown } from '../helpers.ts';

import { tinyDecoder, tinyEncoder, tinyModel } from './ff-tiny.ts';

const test = suite('feed-forward tiling');

const small = new Map<number, Promise<Gpu>>();
/** A device whose storage bindings are limited to `bytes` (one per limit, reused). */
function smallGpu(bytes: number): Promise<Gpu> {
  let g = small.get(bytes);
  if (!g) { g = openDawnGpu({ maxStorageBindingBytes: bytes, onError: (m) => { throw new Error(m); } }); small.set(bytes, g); }
  return g;
}

const enc = tinyEncoder;
const dec = tinyDecoder;


const image = (w: number, h: number, seed = nextSeed()): RgbImage => {
  const r = rng(seed);
  // Smooth structure plus noise, so that features are far from constant.
  const data = new Float32Array(3 * h * w);
  for (let c = 0; c < 3; c++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    data[(c * h + y) * w + x] = 0.5 + 0.3 * Math.sin(0.13 * x * (c + 1) + 0.07 * y) + 0.2 * (r() - 0.5);
  }
  return { width: w, height: h, data };
};

const maxAbs = (d: ArrayLike<number>) => { let m = 0; for (let i = 0; i < d.length; i++) m = Math.max(m, Math.abs(d[i])); return m; };
function assertSame(got: RgbImage, want: RgbImage, rel: number, what: string): number {
  assert.is(got.width, want.width);
  assert.is(got.height, want.height);
  const scale = maxAbs(want.data);
  let err = 0;
  for (let i = 0; i < got.data.length; i++) err = Math.max(err, Math.abs(got.data[i] - want.data[i]));
  assert.ok(scale > 1e-3, `${what}: output is not degenerate (max ${scale})`);
  assert.ok(err <= rel * scale, `${what}: max |tiled − untiled| ${err.toExponential(2)} > ${rel} x ${scale.toFixed(3)}`);
  return err / scale;
}

// ---------------------------------------------------------------------------------------------- geometry

test('receptive fields: VGG19 agrees with the Gatys tiling; wct-16x level chains; conv, pool, upsample rules', () => {
  for (const l of ['relu1_1', 'relu2_1', 'relu3_2', 'relu4_1', 'relu5_1']) {
    const f = receptiveField(VGG19, l);
    const g = gatysField({ desc: VGG19 } as Parameters<typeof gatysField>[0], l);
    assert.equal({ level: Math.log2(f.scale), radius: f.radius }, g, l);
  }
  // Encoder radii (pixels) and the composed chain (encoder, then decoder), by hand from the layer lists.
  const want = [[1, 1, 2], [2, 4, 9], [4, 10, 23], [8, 30, 67], [16, 70, 155]];
  for (let k = 1; k <= 5; k++) {
    const e = receptiveField(enc(k), `relu${k}_1`);
    const c = receptiveField(dec(k), undefined, e);
    assert.equal([e.scale, e.radius, c.radius], want[k - 1], `level ${k}`);
    assert.is(c.scale, 1);
  }
  const fs = receptiveFields(dec(2), undefined);
  assert.equal(fs.get('conv2_1'), { scale: 1, radius: 1 });
  assert.equal(fs.get('up1'), { scale: 0.5, radius: 1.5 });
  assert.equal(fs.get('conv1_1'), { scale: 0.5, radius: 2.5 });
});

test('receptive fields bound the float64 dependencies, tightly (encoder + decoder, level 2 and 3, perturbation)', () => {
  for (const k of [2, 3]) for (let tries = 0; ; tries++) {
    // Every network drawn must respect the bound; tightness needs a live one (a tiny random decoder ending in a ReLU
    // can output all zeros, which depends on nothing), so up to 8 are drawn.
    const [h, w] = [2 ** (k - 1) * 4, 2 ** (k - 1) * 16];
    const we = randomNetWeights(enc(k), nextSeed()), wd = randomNetWeights(dec(k), nextSeed());
    const run = (x: Float64Array) => {
      const F = netForward(enc(k), [...we.convs.values()], t64([3, h, w], x), 'max', `relu${k}_1`).outs.get(`relu${k}_1`)!;
      const last = dec(k).layers.at(-1)!.name;
      return netForward(dec(k), [...wd.convs.values()], F, 'max', last).outs.get(last)!.data;
    };
    const x0 = randArray(3 * h * w, nextSeed(), 0, 1);
    const y0 = run(x0);
    const field = receptiveField(dec(k), undefined, receptiveField(enc(k), `relu${k}_1`));
    let reach = 0;
    for (let i = 0; i < w; i++) { // perturb input column i, find the output columns that move
      const x = x0.slice();
      for (let c = 0; c < 3; c++) for (let y = 0; y < h; y++) x[(c * h + y) * w + i] += 1;
      const y1 = run(x);
      for (let j = 0; j < w; j++) {
        let moved = false;
        for (let c = 0; c < 3 && !moved; c++) for (let y = 0; y < h; y++) if (Math.abs(y1[(c * h + y) * w + j] - y0[(c * h + y) * w + j]) > 1e-12) { moved = true; break; }
        if (!moved) continue;
        const [lo, hi] = dependencySpan(field, j, w);
        assert.ok(i >= lo && i < hi, `level ${k}: output column ${j} depends on input column ${i}, outside [${lo}, ${hi})`);
        reach = Math.max(reach, Math.abs(i - j));
      }
    }
    // The bound is at most one footprint loose (upsampling rounds outward).
    if (reach < field.radius - 2 ** (k - 1) && tries < 7) continue;
    assert.ok(reach >= field.radius - 2 ** (k - 1), `level ${k}: dependencies reach ${reach} px, the field says ${field.radius}`);
    break;
  }
});

test('tile grids: cores partition the image, tiles hold core ± halo, one size, aligned', () => {
  const field = { scale: 4, radius: 23 };
  const peak = (th: number, tw: number) => 4 * 8 * th * tw;
  for (const [h, w] of [[152, 132], [97, 203], [64, 64]]) {
    const g = planFFGrid(h, w, field, 4, peak, 4 * 8 * 90 * 90);
    assert.is(g.halo, 24);
    const owner = new Int32Array(h * w);
    for (const t of g.tiles) {
      assert.ok(t.y0 % 4 === 0 && t.x0 % 4 === 0 && t.core.y0 % 4 === 0 && t.core.x0 % 4 === 0, 'aligned');
      assert.ok(t.y0 >= 0 && t.x0 >= 0 && t.y0 + g.tileH <= h && t.x0 + g.tileW <= w, 'inside');
      const k = t.core;
      assert.ok(Math.max(0, k.y0 - g.halo) >= t.y0 && Math.min(h, k.y0 + k.h + g.halo) <= t.y0 + g.tileH, 'rows: core ± halo inside the tile');
      assert.ok(Math.max(0, k.x0 - g.halo) >= t.x0 && Math.min(w, k.x0 + k.w + g.halo) <= t.x0 + g.tileW, 'columns: core ± halo inside the tile');
      for (let y = k.y0; y < k.y0 + k.h; y++) for (let x = k.x0; x < k.x0 + k.w; x++) owner[y * w + x]++;
    }
    assert.ok(owner.every((v) => v === 1), `${w}x${h}: every pixel in exactly one core`);
    assert.ok(g.tiles.length >= 4 || Math.min(h, w) < 100, `${w}x${h}: ${g.tiles.length} tiles`);
    assert.ok(peak(g.tileH, g.tileW) <= 4 * 8 * 90 * 90);
  }
  assert.throws(() => planFFGrid(400, 400, field, 4, peak, 4 * 8 * 40 * 40), /cannot be tiled within/);
});

test('statistics merged over parts equal the float64 statistics of the whole', () => {
  const c = 5, m = 301;
  const F = randArray(c * m, nextSeed(), 2, 3); // a large mean: uncentred sums would cancel
  const acc = new StatsAccumulator(c, true), diag = new StatsAccumulator(c, false);
  for (const [a, b] of [[0, 1], [1, 120], [120, 121], [121, 301]]) {
    const part = new Float64Array(c * (b - a));
    for (let i = 0; i < c; i++) part.set(F.subarray(i * m + a, i * m + b), i * (b - a));
    const s = featureStats(part, c);
    const n = b - a;
    acc.add(n, s.mean, s.cov.map((v) => v * Math.max(1, n - 1)));
    diag.add(n, s.mean, Array.from({ length: c }, (_, i) => s.cov[i * c + i] * Math.max(1, n - 1)));
  }
  const want = featureStats(F, c);
  assertClose(acc.stats().mean, want.mean, 1e-12, 'mean');
  assertClose(acc.stats().cov, want.cov, 1e-12, 'covariance');
  assertClose(diag.moments().variance, Array.from({ length: c }, (_, i) => want.cov[i * c + i]), 1e-12, 'variance');
});

// ---------------------------------------------------------------------------------------------- tiled == untiled

async function tinyPair(seed: number, gpus: Gpu[]) {
  const { spec, weights } = tinyModel(seed, 3);
  return Promise.all(gpus.map((g) => FeedForwardModel.load(g, spec, async (file) => weights.get(file)!, 'tiny')));
}

for (const method of ['wct', 'adain'] as FeedForwardMethod[]) {
  test(`${method}: tiled on a device whose binding cannot hold the image equals untiled (3 levels, 149x131, style 157x140)`, async () => {
    const [w, h] = [149, 131];
    const big = await testGpu();
    // Two thirds of the padded RGB image (152x132): the image itself lives on the host, every level needs tiles.
    const gpu = await smallGpu(Math.floor((2 / 3) * 3 * 152 * 132 * 4 / 16) * 16);
    const [m0, m1] = await tinyPair(nextSeed(), [big, gpu]);
    try {
      const content = image(w, h), style = image(157, 140);
      const levels = [3, 2, 1];
      const want = await stylizeFeedForward(big, m0, content, await encodeStyle(big, m0, method, [style], [1], levels), { alpha: 0.9 });
      const messages: string[] = [];
      const onMessage = (s: string) => messages.push(s);
      const enc1 = await encodeStyle(gpu, m1, method, [style], [1], levels, { onMessage });
      assert.ok(messages.some((s) => /style 1 \(157x140\), level 3: encoded in \d+x\d+ tiles/.test(s)), messages.join('\n'));
      const got = await stylizeFeedForward(gpu, m1, content, enc1, { alpha: 0.9, onMessage });
      assert.ok(messages.some((s) => /152x132 runs in tiles \(untiled it needs/.test(s)), messages.join('\n'));
      for (const k of levels) {
        const g = levelGrids(m1.level(k), 132, 152, gpu.maxBindingBytes);
        const ny = new Set(g.chain.tiles.map((t) => t.core.y0)).size, nx = new Set(g.chain.tiles.map((t) => t.core.x0)).size;
        assert.ok(ny >= 2 && nx >= 2, `level ${k}: ${ny}x${nx} tiles`);
        assert.ok(messages.some((s) => s.startsWith(`level ${k}: statistics in`)));
      }
      const rel = assertSame(got, want, 1e-4, `${method} tiled vs untiled`);
      if (process.env.TILED_DEBUG) console.log(method, messages, rel);
      assert.is(takeGpuErrors().length, 0);
    } finally {
      m0.destroy();
      m1.destroy();
    }
  });

  test(`${method}: forced tiles (tileSize) on the normal device equal untiled (2 levels, odd 101x77, several styles)`, async () => {
    const big = await testGpu();
    const [m] = await tinyPair(nextSeed(), [big]);
    try {
      const content = image(101, 77);
      const styles = [image(60, 71), image(83, 50)];
      const es = await encodeStyle(big, m, method, styles, [0.3, 0.7], [2, 1]);
      const want = await stylizeFeedForward(big, m, content, es, { alpha: 1 });
      const esTiled = await encodeStyle(big, m, method, styles, [0.3, 0.7], [2, 1], { tileSize: 20 });
      for (const k of [2, 1]) {
        for (const [i, s] of es.perLevel.get(k)!.entries()) {
          const t = esTiled.perLevel.get(k)![i];
          assertClose('color' in t ? t.color : t.std, 'color' in s ? s.color : (s as { std: Float64Array }).std, 1e-4, `tiled style encoding level ${k}`);
        }
      }
      const got = await stylizeFeedForward(big, m, content, es, { alpha: 1, tileSize: 24 });
      assertSame(got, want, 1e-4, `${method} forced tiles`);
    } finally {
      m.destroy();
    }
  });
}

test('the test can fail: a halo short of the chain radius changes the result', async () => {
  const big = await testGpu();
  const content = image(96, 64), style = image(64, 64);
  // Every network drawn must be exact with the full halo; a short halo must show on one of up to 8 draws (a tiny random
  // ReLU network can have dead units at its cone's edge, hiding a short halo, or be dead altogether: an all-zero
  // output, ~4 % of draws, has nothing to compare and is skipped).
  let adainChecked = false;
  await untilShown('a halo 4 px short of the chain radius changes the result', async () => {
    const m = (await tinyPair(nextSeed(), [big]))[0];
    try {
      const es = await encodeStyle(big, m, 'wct', [style], [1], [2]);
      const want = await stylizeFeedForward(big, m, content, es, { alpha: 1 });
      if (!(maxAbs(want.data) > 1e-3)) return false;
      const lv = m.level(2);
      const f = levelFields(lv);
      const run = async (grid: FFGrid) => {
        const acc = await tiledFeatureStats(big, lv, content, planFFGrid(64, 96, f.encoder, 2, () => 0, 1, 16), 'cov');
        const { T, b } = wctMap(acc.stats(), es.perLevel.get(2)! as ReturnType<typeof styleColoring>[], [1], 1);
        return tiledDecode(big, lv, content, grid, { kind: 'mix', T, b });
      };
      assertSame(await run(planFFGrid(64, 96, f.chain, 2, () => 0, 1, 16)), want, 1e-4, 'exact halo');
      const short = planFFGrid(64, 96, { ...f.chain, radius: f.chain.radius - 4 }, 2, () => 0, 1, 16);
      assert.ok(short.halo < planFFGrid(64, 96, f.chain, 2, () => 0, 1, 16).halo);
      const bad = await run(short);
      let err = 0;
      for (let i = 0; i < bad.data.length; i++) err = Math.max(err, Math.abs(bad.data[i] - want.data[i]));
      if (!adainChecked) {
        // AdaIN's map through the same path, for the record of adainMap use in tiles (once, on a live output).
        const mom = (await tiledFeatureStats(big, lv, content, planFFGrid(64, 96, f.encoder, 2, () => 0, 1, 16), 'var')).moments();
        const es2 = await encodeStyle(big, m, 'adain', [style], [1], [2]);
        const { a, b } = adainMap(momentsFromVariance(mom.mean, mom.variance), es2.perLevel.get(2)! as ReturnType<typeof momentsFromVariance>[], [1], 1);
        const want2 = await stylizeFeedForward(big, m, content, es2, { alpha: 1 });
        if (maxAbs(want2.data) > 1e-3) {
          assertSame(await tiledDecode(big, lv, content, planFFGrid(64, 96, f.chain, 2, () => 0, 1, 16), { kind: 'affine', a, b }), want2, 1e-4, 'adain exact halo');
          adainChecked = true;
        }
      }
      return err > 1e-3 * maxAbs(want.data) && adainChecked;
    } finally {
      m.destroy();
    }
  });
});

test('real wct-16x: forced tiles equal untiled (WCT levels 3,2,1 at 160x120 in 4+ tiles; WCT 5,4 on a 704x96 strip)', async () => {
  const dir = requireShared('models/wct-16x');
  if (!dir) return;
  const gpu = await testGpu();
  const model = await loadFeedForwardModel(gpu, dir);
  try {
    const photo = decodeImage(readFileSync('examples/tubingen.jpg'), 'tubingen.jpg');
    const style = fitLongestSide(decodeImage(readFileSync('examples/starry_night.jpg'), 'starry_night.jpg'), 128);
    const cases: [RgbImage, number[], number, string][] = [
      [fitLongestSide(photo, 160), [3, 2, 1], 48, 'AdaIN'],
      [fitLongestSide(photo, 160), [3, 2, 1], 48, 'WCT'],
      [reflectPadImage(fitLongestSide(photo, 96), 96, 128), [5, 4], 224, 'WCT strip'],
    ];
    for (const [img0, levels, tileSize, what] of cases) {
      let img = img0;
      if (what === 'WCT strip') { // a 704x96 strip: the photograph mirrored side by side
        const w = 704;
        const data = new Float32Array(3 * 96 * w);
        for (let c = 0; c < 3; c++) for (let y = 0; y < 96; y++) for (let x = 0; x < w; x++) {
          const p = x % 256, sx = p < 128 ? p : 255 - p;
          data[(c * 96 + y) * w + x] = img0.data[(c * 96 + y) * 128 + sx];
        }
        img = { width: w, height: 96, data };
      }
      const method = what === 'AdaIN' ? 'adain' : 'wct';
      const es = await encodeStyle(gpu, model, method, [style], [1], levels);
      const want = await stylizeFeedForward(gpu, model, img, es, { alpha: 1 });
      const messages: string[] = [];
      const got = await stylizeFeedForward(gpu, model, img, es, { alpha: 1, tileSize, onMessage: (s) => messages.push(s) });
      for (const k of levels) {
        const g = levelGrids(model.level(k), img.height, img.width, gpu.maxBindingBytes, tileSize);
        assert.ok(g.chain.tiles.length >= (what === 'WCT strip' ? 3 : 4), `${what} level ${k}: ${g.chain.tiles.length} tiles`);
      }
      const rel = assertSame(got, want, 1e-4, `real wct-16x ${what}`);
      if (process.env.TILED_DEBUG) console.log(what, messages, rel);
    }
  } finally {
    model.destroy();
  }
});

test('releases the small devices', async () => {
  for (const g of small.values()) (await g).destroy();
  small.clear();
});

test.run();
