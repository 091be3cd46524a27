import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { colorMoments, matchColorHistogram, rgbToYiq, RGB_TO_YIQ, transferLuminance, yiqToRgb, YIQ_TO_RGB } from '../../src/image/color.ts';
import type { RgbImage } from '../../src/image/image.ts';
import { assertClose, nextSeed, randArray, rng } from '../helpers.ts';

const test = suite('image colour');

function random(w: number, h: number, lo = 0, hi = 1): RgbImage {
  return { width: w, height: h, data: Float32Array.from(randArray(3 * w * h, nextSeed(), lo, hi)) };
}
/**
 * Correlated colours: a random 3x3 mix of noise plus an offset, so the covariance is full and non-diagonal. The mix is
 * diagonally dominant (condition number below ~10) so the test measures the matching, not ill-conditioning.
 */
function correlated(w: number, h: number): RgbImage {
  const r = rng(nextSeed());
  const M = Array.from({ length: 9 }, (_, i) => (i % 4 === 0 ? 0.25 : 0) + r() * 0.16 - 0.08), off = [r(), r(), r()].map((v) => 0.2 + 0.3 * v);
  const n = w * h, img = random(w, h), out = new Float32Array(3 * n);
  for (let p = 0; p < n; p++) for (let c = 0; c < 3; c++) {
    out[c * n + p] = off[c] + M[3 * c] * img.data[p] + M[3 * c + 1] * img.data[n + p] + M[3 * c + 2] * img.data[2 * n + p];
  }
  return { width: w, height: h, data: out };
}

test('YIQ matrices are inverse; grey has Y = value and no chrominance', () => {
  for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) {
    let s = 0;
    for (let k = 0; k < 3; k++) s += RGB_TO_YIQ[3 * r + k] * YIQ_TO_RGB[3 * k + c];
    assert.ok(Math.abs(s - (r === c ? 1 : 0)) < 1e-12, `(${r},${c}) = ${s}`);
  }
  const grey: RgbImage = { width: 3, height: 1, data: new Float32Array([0, 0.5, 1, 0, 0.5, 1, 0, 0.5, 1]) };
  assertClose(rgbToYiq(grey).data, [0, 0.5, 1, 0, 0, 0, 0, 0, 0], 1e-6, 'grey in YIQ');
});

test('rgbToYiq matches float64 and yiqToRgb inverts it', () => {
  const img = random(17, 9), n = 17 * 9;
  const want = new Float64Array(3 * n);
  for (let p = 0; p < n; p++) for (let r = 0; r < 3; r++) {
    for (let k = 0; k < 3; k++) want[r * n + p] += RGB_TO_YIQ[3 * r + k] * img.data[k * n + p];
  }
  const yiq = rgbToYiq(img);
  assertClose(yiq.data, want, 1e-6, 'rgbToYiq');
  assertClose(yiqToRgb(yiq).data, img.data, 1e-6, 'round trip');
});

test('transferLuminance takes Y from the stylised image and I, Q from the content', () => {
  const styled = random(11, 5, 0.3, 0.7), content = random(11, 5, 0.3, 0.7), n = 55;
  const out = rgbToYiq(transferLuminance(styled, content));
  const y = rgbToYiq(styled), iq = rgbToYiq(content);
  assertClose(out.data.subarray(0, n), y.data.subarray(0, n), 1e-5, 'Y');
  assertClose(out.data.subarray(n), iq.data.subarray(n), 1e-5, 'IQ');
  assert.throws(() => transferLuminance(styled, random(5, 11)), /sizes differ/);
});

for (const method of ['image-analogies', 'cholesky'] as const) {
  test(`matchColorHistogram (${method}) matches the target's mean and covariance`, () => {
    const source = correlated(37, 23), target = correlated(19, 31);
    const out = matchColorHistogram(source, target, method);
    assert.is(out.width, 37); assert.is(out.height, 23);
    const got = colorMoments(out), want = colorMoments(target), before = colorMoments(source);
    assertClose(got.mean, want.mean, 1e-5, 'mean');
    assertClose(got.cov, want.cov, 1e-4, 'covariance');
    // the test can fail: the source's moments really differ
    const d = before.cov.reduce((a, v, i) => Math.max(a, Math.abs(v - want.cov[i])), 0);
    assert.ok(d > 1e-3, `source covariance already equal (${d})`);
    // matching an image to itself changes nothing
    assertClose(matchColorHistogram(source, source, method).data, source.data, 1e-4, 'self match');
  });
}

test('the two forms give different maps on the same images', () => {
  const source = correlated(20, 20), target = correlated(20, 20);
  const a = matchColorHistogram(source, target, 'image-analogies'), b = matchColorHistogram(source, target, 'cholesky');
  let diff = 0;
  for (let i = 0; i < a.data.length; i++) diff = Math.max(diff, Math.abs(a.data[i] - b.data[i]));
  assert.ok(diff > 1e-3, 'the two forms differ');
});

test('a flat grey source does not blow up', () => {
  const grey: RgbImage = { width: 4, height: 4, data: new Float32Array(48).fill(0.5) };
  const target = correlated(8, 8);
  for (const m of ['image-analogies', 'cholesky'] as const) {
    const out = matchColorHistogram(grey, target, m);
    assert.ok(out.data.every(Number.isFinite), m);
    assertClose(colorMoments(out).mean, colorMoments(target).mean, 1e-5, `${m} mean`);
  }
});

test.run();
