// Feed-forward methods: the float64 transforms against their defining properties, the GPU statistics against
// float64, the whole encode-transform-decode path against the float64 reference executor on small random networks,
// and the real wct-16x networks from ../shared/models (reconstruction and stylisation).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PainterlyError } from '../../src/gpu/device.ts';
import { decodeImage } from '../../src/image/index.ts';
import { readFileSync } from 'node:fs';
import { fitLongestSide } from '../../src/image/resize.ts';
import type { RgbImage } from '../../src/image/image.ts';
import type { NetWeights } from '../../src/nets/describe.ts';
import { netForward } from '../../src/reference/net.ts';
import { t64 } from '../../src/reference/tensor.ts';
import { uploadTensor } from '../../src/gpu/tensor.ts';
import { cropImage, encodeStyle, FeedForwardModel, reflectPadImage, stylizeFeedForward } from '../../src/style/feedforward.ts';
import { featureStatsGpu } from '../../src/style/ff-stats.ts';
import type { FeedForwardModelSpec } from '../../src/style/ff-models.ts';
import { loadFeedForwardModel } from '../../src/style/ff-load.ts';
import { adainMap, applyMap, featureStats, momentsFromVariance, styleColoring, wctMap } from '../../src/style/transforms.ts';
import { assertClose, nextSeed, randArray, requireShared, rng, testGpu } from '../helpers.ts';

import { tinyModel } from './ff-tiny.ts';

const test = suite('feed-forward');

/**
 * Correlated random features C x M: uniform z mixed by U diag(s) Vᵀ, with U and V random orthogonal (products of C
 * Householder reflections) and singular values s in [0.5, 1.5) (condition number under 3), so covariances are far
 * from the identity yet full. A plain uniform mixing matrix is near-singular in a few % of draws, and then a tiny
 * content eigenvalue is not far above WCT's +I and the covariance check fails for no fault of the code.
 */
function features(c: number, m: number, seed: number, shift = 0): Float64Array {
  const u = randArray(2 * c * c + c, seed);
  const mix = new Float64Array(c * c);
  for (let i = 0; i < c; i++) mix[i * c + i] = 1 + 0.5 * u[2 * c * c + i];
  for (let k = 0; k < 2 * c; k++) { // mix ← H mix (k < c), then mix ← mix H, H = I − 2 v vᵀ / vᵀv
    const v = u.subarray(k * c, (k + 1) * c);
    const vv = v.reduce((a, x) => a + x * x, 0);
    for (let a = 0; a < c; a++) {
      let d = 0;
      for (let t = 0; t < c; t++) d += v[t] * (k < c ? mix[t * c + a] : mix[a * c + t]);
      for (let t = 0; t < c; t++) mix[k < c ? t * c + a : a * c + t] -= (2 * d * v[t]) / vv;
    }
  }
  const z = randArray(c * m, seed + 1);
  const F = new Float64Array(c * m);
  for (let i = 0; i < c; i++) for (let p = 0; p < m; p++) {
    let s = shift + i * 0.3;
    for (let j = 0; j < c; j++) s += mix[i * c + j] * z[j * m + p];
    F[i * m + p] = s;
  }
  return F;
}

test('WCT with α = 1 gives the style mean; α = 0 the content; two styles interpolate', () => {
  const c = 7, m = 400;
  const Fc = features(c, m, nextSeed(), 0.5);
  const Fs = features(c, 300, nextSeed(), -1);
  const sc = featureStats(Fc, c), ss = featureStats(Fs, c);
  const y = applyMap(wctMap(sc, [styleColoring(ss)], [1], 1), Fc);
  assertClose(featureStats(y, c).mean, ss.mean, 1e-9, 'mean after WCT');
  const y0 = applyMap(wctMap(sc, [styleColoring(ss)], [1], 0), Fc);
  assertClose(y0, Fc, 1e-12, 'α = 0 is the identity');
  const Fs2 = features(c, 200, nextSeed(), 2);
  const m1 = wctMap(sc, [styleColoring(ss)], [1], 0.7);
  const m2 = wctMap(sc, [styleColoring(featureStats(Fs2, c))], [1], 0.7);
  const mb = wctMap(sc, [styleColoring(ss), styleColoring(featureStats(Fs2, c))], [0.25, 0.75], 0.7);
  assertClose(mb.T, m1.T.map((v, i) => 0.25 * v + 0.75 * m2.T[i]), 1e-12, 'blend T');
  assertClose(mb.b, m1.b.map((v, i) => 0.25 * v + 0.75 * m2.b[i]), 1e-12, 'blend b');
});

test('WCT with α = 1 and a content covariance far above the +I regulariser gives the style covariance', () => {
  // Σc >> I makes the +I negligible: K W F̄ then has covariance ≈ Σs (and W F̄ ≈ identity covariance).
  const c = 5, m = 600;
  const Fc = features(c, m, nextSeed()).map((v) => 3000 * v);
  const Fs = features(c, 500, nextSeed());
  const y = applyMap(wctMap(featureStats(Fc, c), [styleColoring(featureStats(Fs, c))], [1], 1), Fc);
  assertClose(featureStats(y, c).cov, featureStats(Fs, c).cov, 1e-3, 'covariance ≈ style covariance');
});

test('AdaIN map: mean and std of the style, α blend', () => {
  const c = 6, m = 300;
  const Fc = features(c, m, nextSeed(), 1), Fs = features(c, 250, nextSeed(), -2);
  const mom = (F: Float64Array) => { const s = featureStats(F, c); return momentsFromVariance(s.mean, Array.from({ length: c }, (_, i) => s.cov[i * c + i])); };
  const { a, b } = adainMap(mom(Fc), [mom(Fs)], [1], 1);
  const y = Fc.map((v, k) => a[Math.floor(k / m)] * v + b[Math.floor(k / m)]);
  const my = mom(y), ms = mom(Fs);
  assertClose(my.mean, ms.mean, 1e-9, 'AdaIN mean');
  // σ includes +1e-5 under the root on both sides, so the match is exact up to that epsilon.
  assertClose(my.std, ms.std, 1e-4, 'AdaIN std');
  const half = adainMap(mom(Fc), [mom(Fs)], [1], 0.5);
  assertClose(half.a, a.map((v) => 0.5 * v + 0.5), 1e-12, 'α = 0.5 scale');
});

test('WCT against a closed form: +I on the content, style eigenvalues below 1e-5 dropped, K W and the style mean', () => {
  // Both covariances built as E diag(λ) Eᵀ with a Householder E (orthogonal), so every factor is known exactly.
  const c = 6;
  const v = randArray(c, nextSeed());
  const vv = v.reduce((a, x) => a + x * x, 0);
  const E = (i: number, j: number) => (i === j ? 1 : 0) - (2 * v[i] * v[j]) / vv;
  const spectral = (lam: number[]) => {
    const out = new Float64Array(c * c);
    for (let i = 0; i < c; i++) for (let j = 0; j < c; j++) for (let k = 0; k < c; k++) out[i * c + j] += E(i, k) * lam[k] * E(j, k);
    return out;
  };
  const ls = [4, 1, 0.3, 2e-5, 5e-6, 0]; // 5e-6 and 0 (computed as ±1e-16: a NaN root if kept) are under the threshold
  const lc = [9, 2, 0.5, 0.1, 1e-3, 0]; // + I: every content eigenvalue is at least 1
  const style = { channels: c, mean: randArray(c, nextSeed()), cov: spectral(ls) };
  const content = { channels: c, mean: randArray(c, nextSeed()), cov: spectral(lc) };
  const col = styleColoring(style);
  assertClose(col.color, spectral(ls.map((l) => (l >= 1e-5 ? Math.sqrt(l) : 0))), 1e-12, 'colouring Es Ds^1/2 Esᵀ');
  const K = col.color, W = spectral(lc.map((l) => 1 / Math.sqrt(l + 1)));
  const KW = new Float64Array(c * c);
  for (let i = 0; i < c; i++) for (let j = 0; j < c; j++) for (let t = 0; t < c; t++) KW[i * c + j] += K[i * c + t] * W[t * c + j];
  const alpha = 0.7;
  const m = wctMap(content, [col], [1], alpha);
  assertClose(m.T, KW.map((x, i) => alpha * x + (i % (c + 1) === 0 ? 1 - alpha : 0)), 1e-12, 'T = α K W + (1 − α) I');
  const want = Float64Array.from({ length: c }, (_, i) => {
    let kwMu = 0;
    for (let j = 0; j < c; j++) kwMu += KW[i * c + j] * content.mean[j];
    return alpha * (style.mean[i] - kwMu);
  });
  assertClose(m.b, want, 1e-12, 'b = α (μs − K W μc)');
});

for (const shape of [[19, 23, 37], [64, 33, 29]]) {
  test(`means and covariance on the GPU (featureStatsGpu) match float64 at [${shape}], large mean`, async () => {
    const gpu = await testGpu();
    const [c, h, w] = shape;
    const F = features(c, h * w, nextSeed(), 5).map(Math.fround); // float32-representable: both sides see the same values
    const T = uploadTensor(gpu, F, shape, 'features');
    try {
      const got = await featureStatsGpu(gpu, T);
      const want = featureStats(F, c);
      assertClose(got.mean, want.mean, 1e-5, 'means');
      assertClose(got.cov, want.cov, 1e-4, 'covariance F̄F̄ᵀ/(M−1)');
    } finally {
      T.buffer.destroy();
    }
  });
}

test('reflect padding and cropping of images', () => {
  const img: RgbImage = { width: 3, height: 2, data: Float32Array.from({ length: 18 }, (_, i) => i) };
  const p = reflectPadImage(img, 3, 5);
  assert.equal([...p.data.subarray(0, 15)], [0, 1, 2, 1, 0, 3, 4, 5, 4, 3, 0, 1, 2, 1, 0]);
  assert.equal([...cropImage(p, 2, 3).data], [...img.data]);
  assert.throws(() => reflectPadImage(img, 4, 3), (e: Error) => e instanceof PainterlyError && /too small to pad/.test(e.message));
});


/** The whole path in float64: per level encode, transform (the same float64 maps), decode. */
function referencePath(spec: FeedForwardModelSpec, weights: Map<string, NetWeights>, content: RgbImage, style: RgbImage, method: 'wct' | 'adain', alpha: number): Float64Array {
  let x = t64([3, content.height, content.width], content.data);
  for (const k of spec.defaultLevels[method]) {
    const l = spec.level(k);
    const encConvs = [...weights.get(l.encoderFile)!.convs.values()];
    const decConvs = [...weights.get(l.decoderFile)!.convs.values()];
    const F = netForward(l.encoder, encConvs, x, 'max', l.feature).outs.get(l.feature)!;
    const Fs = netForward(l.encoder, encConvs, t64([3, style.height, style.width], style.data), 'max', l.feature).outs.get(l.feature)!;
    const c = F.shape[0];
    const sc = featureStats(F.data, c), ss = featureStats(Fs.data, c);
    let y: Float64Array;
    if (method === 'wct') y = applyMap(wctMap(sc, [styleColoring(ss)], [1], alpha), F.data);
    else {
      const mom = (s: typeof sc) => momentsFromVariance(s.mean, Array.from({ length: c }, (_, i) => s.cov[i * c + i]));
      const { a, b } = adainMap(mom(sc), [mom(ss)], [1], alpha);
      const m = F.data.length / c;
      y = F.data.map((v, i) => a[Math.floor(i / m)] * v + b[Math.floor(i / m)]);
    }
    const last = l.decoder.layers.at(-1)!.name;
    x = netForward(l.decoder, decConvs, t64(F.shape, y), 'max', last).outs.get(last)!;
  }
  return x.data;
}

for (const method of ['wct', 'adain'] as const) {
  test(`${method}: encode, transform, decode on the GPU matches the float64 path (two levels, odd size padded and cropped)`, async () => {
    const gpu = await testGpu();
    const { spec, weights } = tinyModel(nextSeed());
    const model = await FeedForwardModel.load(gpu, spec, async (file) => weights.get(file)!, 'tiny');
    try {
      const r = rng(nextSeed());
      const content: RgbImage = { width: 13, height: 10, data: Float32Array.from({ length: 3 * 130 }, () => r()) };
      const style: RgbImage = { width: 9, height: 11, data: Float32Array.from({ length: 3 * 99 }, () => r()) };
      const enc = await encodeStyle(gpu, model, method, [style], [1], spec.defaultLevels[method]);
      const out = await stylizeFeedForward(gpu, model, content, enc, { alpha: 0.8 });
      assert.is(out.width, 13);
      assert.is(out.height, 10);
      // The float64 path on the same padded image (14 x 10 -> reflect-padded to multiples of 2), cropped back.
      const padded = reflectPadImage(content, 10, 14);
      const want = cropImage({ width: 14, height: 10, data: Float32Array.from(referencePath(spec, weights, padded, style, method, 0.8)) }, 10, 13);
      assertClose(out.data, want.data, 2e-3, `${method} whole path`);
    } finally {
      model.destroy();
    }
  });
}


test('real wct-16x: every level loads; the level-5 pair reconstructs a photograph; WCT changes it towards the style', async () => {
  const SHARED = requireShared('models/wct-16x');
  if (!SHARED) return;
  const gpu = await testGpu();
  const model = await loadFeedForwardModel(gpu, SHARED);
  try {
    const content = fitLongestSide(decodeImage(readFileSync('examples/tubingen.jpg'), 'tubingen.jpg'), 96);
    const style = fitLongestSide(decodeImage(readFileSync('examples/starry_night.jpg'), 'starry_night.jpg'), 96);
    const enc = await encodeStyle(gpu, model, 'wct', [style], [1], [5]);
    const recon = await stylizeFeedForward(gpu, model, content, enc, { alpha: 0 });
    const mse = recon.data.reduce((a, v, i) => a + (Math.min(1, Math.max(0, v)) - content.data[i]) ** 2, 0) / recon.data.length;
    const psnr = 10 * Math.log10(1 / mse);
    assert.ok(psnr > 14, `level-5 reconstruction PSNR ${psnr.toFixed(1)} dB`);
    const styled = await stylizeFeedForward(gpu, model, content, await encodeStyle(gpu, model, 'wct', [style], [1], [5, 4, 3, 2, 1]), { alpha: 1 });
    const mean = (d: Float32Array, ch: number) => d.subarray(ch * d.length / 3, (ch + 1) * d.length / 3).reduce((a, v) => a + v, 0) / (d.length / 3);
    // The Starry Night is blue: the stylised image's blue-minus-red rises towards the painting's.
    const br = (d: Float32Array) => mean(d, 2) - mean(d, 0);
    assert.ok(br(styled.data) > br(content.data) + 0.05, `blue-red ${br(content.data).toFixed(3)} -> ${br(styled.data).toFixed(3)} (style ${br(style.data).toFixed(3)})`);
    for (const v of styled.data) if (!Number.isFinite(v)) assert.unreachable('non-finite output');
  } finally {
    model.destroy();
  }
});

test('a folder that is no model is a one-line error', async () => {
  const gpu = await testGpu();
  await loadFeedForwardModel(gpu, 'examples').then(() => assert.unreachable('should fail'), (e: Error) => {
    assert.ok(e instanceof PainterlyError && /expected a folder laid out like upstream/.test(e.message), e.message);
  });
  await loadFeedForwardModel(gpu, '/nonexistent/dir').then(() => assert.unreachable('should fail'), (e: Error) => {
    assert.ok(e instanceof PainterlyError && /neither a model name/.test(e.message), e.message);
  });
});

test.run();
