import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PainterlyError } from '../../src/gpu/device.ts';
import type { RgbImage } from '../../src/image/image.ts';
import { fitLongestSide, resize } from '../../src/image/resize.ts';
import { assertClose, nextSeed, randArray } from '../helpers.ts';

const test = suite('image resize');

function constant(w: number, h: number, rgb: number[]): RgbImage {
  const n = w * h, data = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++) data.fill(rgb[c], c * n, (c + 1) * n);
  return { width: w, height: h, data };
}
function random(w: number, h: number): RgbImage {
  return { width: w, height: h, data: Float32Array.from(randArray(3 * w * h, nextSeed(), 0, 1)) };
}

// Float64 reference written directly in 2-D (not separable): out(c, y, x) = sum_ij wy(y, i) wx(x, j) in(c, i, j), with
// normalised Lanczos-3 weights on pixel centres, the kernel stretched by the downscale factor, then clamped to the
// channel's input range.
function refResize(img: RgbImage, W: number, H: number): Float64Array {
  const L = (x: number) => (x === 0 ? 1 : Math.abs(x) >= 3 ? 0 : (3 * Math.sin(Math.PI * x) * Math.sin(Math.PI * x / 3)) / (Math.PI * Math.PI * x * x));
  const weights = (inN: number, outN: number, o: number) => {
    const s = inN / outN, f = Math.max(1, s), c = (o + 0.5) * s;
    const w = Array.from({ length: inN }, (_, i) => L((i + 0.5 - c) / f));
    const sum = w.reduce((a, b) => a + b, 0);
    return w.map((v) => v / sum);
  };
  const { width: w0, height: h0, data } = img;
  const out = new Float64Array(3 * W * H);
  for (let c = 0; c < 3; c++) {
    const ch = data.subarray(c * w0 * h0, (c + 1) * w0 * h0);
    const lo = Math.min(...ch), hi = Math.max(...ch);
    for (let y = 0; y < H; y++) {
      const wy = weights(h0, H, y);
      for (let x = 0; x < W; x++) {
        const wx = weights(w0, W, x);
        let s = 0;
        for (let i = 0; i < h0; i++) for (let j = 0; j < w0; j++) s += wy[i] * wx[j] * ch[i * w0 + j];
        out[(c * H + y) * W + x] = Math.min(hi, Math.max(lo, s));
      }
    }
  }
  return out;
}

for (const [w0, h0, w1, h1] of [[13, 7, 5, 11], [9, 9, 20, 3], [31, 17, 8, 4], [5, 6, 5, 13], [1, 1, 3, 2], [40, 3, 1, 1]]) {
  test(`matches the float64 2-D reference: ${w0}x${h0} -> ${w1}x${h1}`, () => {
    const img = random(w0, h0);
    const got = resize(img, w1, h1);
    assert.is(got.width, w1); assert.is(got.height, h1);
    assertClose(got.data, refResize(img, w1, h1), 1e-5, 'resize');
  });
}

test('a constant image stays constant (up, down, odd sizes)', () => {
  const rgb = [0.3, 0.7, 0.1];
  for (const [w1, h1] of [[7, 5], [50, 41], [3, 60], [1, 1]]) {
    const out = resize(constant(23, 17, rgb), w1, h1);
    assertClose(out.data, constant(w1, h1, rgb).data, 1e-6, `constant -> ${w1}x${h1}`);
  }
});

test('filter weights sum to 1 (a constant region stays constant while the clamp is slack)', () => {
  // Extremes in one corner widen each channel's clamp range to [0, 1]; far from them the value must be kept.
  const img = constant(64, 64, [0.4, 0.4, 0.4]);
  img.data[0] = 0; img.data[1] = 1; img.data[64 * 64] = 1; img.data[2 * 64 * 64 + 2] = 0;
  for (const size of [16, 100]) {
    const out = resize(img, size, size);
    for (let c = 0; c < 3; c++) for (let y = size / 2; y < size; y++) for (let x = size / 2; x < size; x++) {
      const v = out.data[(c * size + y) * size + x];
      assert.ok(Math.abs(v - 0.4) < 1e-6, `${size}: (${c},${y},${x}) = ${v}`);
    }
  }
});

test('downscaling antialiases: a 1-pixel checkerboard shrunk ~4x is ~0.5 grey', () => {
  const board = (w: number, h: number, period: number) => {
    const n = w * h, img: RgbImage = { width: w, height: h, data: new Float32Array(3 * n) };
    for (let c = 0; c < 3; c++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      img.data[c * n + y * w + x] = (Math.floor(x / period) + Math.floor(y / period)) & 1;
    }
    return img;
  };
  // 64 -> 16 puts every output centre on a pixel boundary, where even a narrow filter happens to average pairs;
  // 63 -> 16 and 67 -> 17 do not, so only a filter stretched by the scale factor gives flat grey there.
  for (const [w, h, w1, h1] of [[64, 64, 16, 16], [63, 66, 16, 17], [67, 61, 17, 15]]) {
    const out = resize(board(w, h, 1), w1, h1);
    for (const v of out.data) assert.ok(Math.abs(v - 0.5) < 0.03, `${w}x${h} -> ${w1}x${h1}: got ${v}`);
  }
  // ... while a coarse pattern (8-pixel squares) keeps its contrast.
  const coarse = resize(board(64, 64, 8), 32, 32);
  assert.ok(Math.abs(coarse.data[2 * 32 + 2] - 0) < 0.05 && Math.abs(coarse.data[2 * 32 + 6] - 1) < 0.05, 'coarse pattern kept');
});

test('same size is not resampled', () => {
  const img = random(10, 7);
  const copy = img.data.slice();
  const out = resize(img, 10, 7);
  assert.ok(out === img, 'same object');
  assert.equal([...out.data], [...copy]);
  assert.ok(fitLongestSide(img, 10) === img, 'fitLongestSide at the same size');
});

test('fitLongestSide keeps the aspect ratio', () => {
  const dims = (i: RgbImage) => [i.width, i.height];
  assert.equal(dims(fitLongestSide(random(40, 30), 20)), [20, 15]);
  assert.equal(dims(fitLongestSide(random(30, 40), 20)), [15, 20]);
  assert.equal(dims(fitLongestSide(random(30, 40), 80)), [60, 80]);
  assert.equal(dims(fitLongestSide(random(3, 200), 10)), [1, 10]);
  assert.equal(dims(fitLongestSide(random(33, 33), 17)), [17, 17]);
});

test('bad sizes are one-line errors', () => {
  const img = random(4, 4);
  for (const [w, h] of [[0, 3], [3, 2.5], [-1, 4], [20000, 2], [NaN, 1]]) {
    assert.throws(() => resize(img, w, h), (e: Error) => e instanceof PainterlyError && /resize: expected a size/.test(e.message));
  }
  assert.throws(() => fitLongestSide(img, 0), /fitLongestSide: expected a size of 1 to 16384, got 0/);
  assert.throws(() => resize({ width: 2, height: 2, data: new Float32Array(5) }, 1, 1), /resize: expected an RgbImage/);
});

test.run();
