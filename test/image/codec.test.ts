import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { PainterlyError } from '../../src/gpu/device.ts';
import { decodeImage, encodeImage, orient, readImageHeader, MAX_IMAGE_SIDE } from '../../src/image/codec.ts';
import { fromRgba, toRgba, type RgbImage } from '../../src/image/image.ts';
import { readImage, writeImage } from '../../src/image/node-io.ts';
import { nextSeed, rng } from '../helpers.ts';

const test = suite('image codec');
const dir = mkdtempSync(join(tmpdir(), 'painterly-img-'));
const EXAMPLES = new URL('../../examples/', import.meta.url);

// ---- A tiny independent PNG writer (so the decoder is not only tested against pngjs's own encoder) ----
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, body.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(body, 8);
  v.setUint32(8 + body.length, crc32(out.subarray(4, 8 + body.length)));
  return out;
}
const concat = (parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
};
function ihdr(width: number, height: number, depth: number, colorType: number): Uint8Array {
  const b = new Uint8Array(13);
  const v = new DataView(b.buffer);
  v.setUint32(0, width); v.setUint32(4, height); b[8] = depth; b[9] = colorType;
  return chunk('IHDR', b);
}
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
/** samples: interleaved per pixel, at the file's depth (palette: indices). Filter type 0 on every row. */
function makePng(width: number, height: number, depth: number, colorType: number, samples: number[],
  extra: Uint8Array[] = []): Uint8Array {
  const ch = CHANNELS[colorType];
  const rowBytes = Math.ceil((width * ch * depth) / 8);
  const raw = new Uint8Array(height * (1 + rowBytes));
  for (let y = 0; y < height; y++) {
    const row = y * (1 + rowBytes) + 1;
    for (let i = 0; i < width * ch; i++) {
      const s = samples[y * width * ch + i];
      if (depth === 16) { raw[row + 2 * i] = s >> 8; raw[row + 2 * i + 1] = s & 255; }
      else if (depth === 8) raw[row + i] = s;
      else { const bit = i * depth; raw[row + (bit >> 3)] |= s << (8 - depth - (bit & 7)); }
    }
  }
  return concat([new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), ihdr(width, height, depth, colorType),
    ...extra, chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))]);
}

// ---- A tiny grey baseline JPEG writer: 8x8-constant blocks need only DC coefficients (quantiser 1). ----
function makeGreyJpeg(bw: number, bh: number, blockValues: number[]): Uint8Array {
  const dcBits = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]; // the standard luminance DC table
  const codes: { code: number; len: number }[] = [];
  let code = 0, sym = 0;
  for (let len = 1; len <= 16; len++) {
    for (let i = 0; i < dcBits[len - 1]; i++) codes[sym++] = { code: code++, len };
    code <<= 1;
  }
  const bytes: number[] = [];
  let acc = 0, nacc = 0;
  const put = (v: number, n: number) => {
    for (let i = n - 1; i >= 0; i--) {
      acc = (acc << 1) | ((v >> i) & 1);
      if (++nacc === 8) { bytes.push(acc); if (acc === 0xff) bytes.push(0); acc = 0; nacc = 0; }
    }
  };
  let pred = 0;
  for (const v of blockValues) {
    const dc = 8 * (v - 128); // F(0,0) of a constant block
    const diff = dc - pred; pred = dc;
    const cat = diff === 0 ? 0 : Math.floor(Math.log2(Math.abs(diff))) + 1;
    put(codes[cat].code, codes[cat].len);
    if (cat) put(diff > 0 ? diff : diff + (1 << cat) - 1, cat);
    put(0, 1); // AC: end of block (the only AC symbol, code "0")
  }
  if (nacc) put(0x7f, 8 - nacc); // pad with ones
  const seg = (m: number, body: number[]) => [0xff, m, (body.length + 2) >> 8, (body.length + 2) & 255, ...body];
  const W = bw * 8, H = bh * 8;
  return new Uint8Array([0xff, 0xd8,
    ...seg(0xdb, [0, ...new Array(64).fill(1)]),
    ...seg(0xc0, [8, H >> 8, H & 255, W >> 8, W & 255, 1, 1, 0x11, 0]),
    ...seg(0xc4, [0x00, ...dcBits, ...Array.from({ length: 12 }, (_, i) => i)]),
    ...seg(0xc4, [0x10, 1, ...new Array(15).fill(0), 0x00]),
    ...seg(0xda, [1, 1, 0x00, 0, 63, 0]),
    ...bytes, 0xff, 0xd9]);
}

function randomImage8(w: number, h: number, seed: number): RgbImage {
  const r = rng(seed);
  const data = new Float32Array(3 * w * h);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(r() * 256) / 255;
  return { width: w, height: h, data };
}
function smoothImage(w: number, h: number): RgbImage {
  const n = w * h, data = new Float32Array(3 * n);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    data[y * w + x] = x / (w - 1);
    data[n + y * w + x] = y / (h - 1);
    data[2 * n + y * w + x] = 0.5 + 0.3 * Math.sin((x + y) / 7);
  }
  return { width: w, height: h, data };
}
const pixel = (img: RgbImage, i: number) => [0, 1, 2].map((c) => img.data[c * img.width * img.height + i]);
function near(got: number[], want: number[], tol: number, what: string) {
  for (let c = 0; c < want.length; c++) {
    assert.ok(Math.abs(got[c] - want[c]) <= tol, `${what}: channel ${c} is ${got[c]}, expected ${want[c]} (tol ${tol})`);
  }
}

test('8-bit PNG round trip is exact (encode, decode, file)', async () => {
  for (const [w, h] of [[1, 1], [17, 5], [64, 33]]) {
    const img = randomImage8(w, h, nextSeed());
    const back = decodeImage(encodeImage(img, 'png'), 'mem.png');
    assert.is(back.width, w); assert.is(back.height, h);
    assert.equal([...back.data], [...img.data], `PNG ${w}x${h}`);
  }
  const img = randomImage8(23, 9, nextSeed());
  const p = join(dir, 'out.png');
  await writeImage(p, img);
  assert.equal([...(await readImage(p)).data], [...img.data], 'file round trip');
});

test('toRgba / fromRgba round trip, clamping and alpha over white', () => {
  const img = randomImage8(7, 3, nextSeed());
  assert.equal([...fromRgba(toRgba(img), 7, 3).data], [...img.data]);
  const rgba = toRgba({ width: 2, height: 1, data: new Float32Array([-0.5, 1.5, 2, -1, 0.5, NaN]) });
  assert.equal([...rgba], [0, 255, 128, 255, 255, 0, 0, 255]);
  const half = fromRgba(new Uint8Array([0, 255, 51, 0, 10, 20, 30, 102]), 2, 1);
  near(pixel(half, 0), [1, 1, 1], 0, 'alpha 0 is white');
  const a = 102 / 255;
  near(pixel(half, 1), [10, 20, 30].map((v) => (v / 255) * a + 1 - a), 1e-6, 'alpha 0.4');
});

test('JPEG round trip is close; quality is honoured', () => {
  const img = smoothImage(40, 24);
  let prevErr = Infinity;
  for (const q of [50, 95]) {
    const back = decodeImage(encodeImage(img, 'jpeg', q), 'mem.jpg');
    assert.is(back.width, 40); assert.is(back.height, 24);
    let err = 0;
    for (let i = 0; i < img.data.length; i++) err += Math.abs(back.data[i] - img.data[i]);
    err /= img.data.length;
    assert.ok(err < 0.03, `mean error ${err} at quality ${q}`);
    assert.ok(err < prevErr, 'higher quality is closer');
    prevErr = err;
  }
  assert.throws(() => encodeImage(img, 'jpeg', 0), /JPEG quality: expected 1 to 100/);
});

test('16-bit PNG (RGB, RGBA, grey) keeps full precision; alpha over white', () => {
  const r = rng(nextSeed());
  const w = 9, h = 4, n = w * h;
  const s = Array.from({ length: 4 * n }, () => Math.floor(r() * 65536));
  const rgb = decodeImage(makePng(w, h, 16, 2, s.slice(0, 3 * n)), 'rgb16.png');
  const rgba = decodeImage(makePng(w, h, 16, 6, s), 'rgba16.png');
  const grey = decodeImage(makePng(w, h, 16, 0, s.slice(0, n)), 'grey16.png');
  for (let i = 0; i < n; i++) {
    // Tolerance far below one 16-bit step (1.5e-5); rounding to 8 bits would be off by up to 2e-3.
    near(pixel(rgb, i), [0, 1, 2].map((c) => s[3 * i + c] / 65535), 1e-7, `rgb16 pixel ${i}`);
    const a = s[4 * i + 3] / 65535;
    near(pixel(rgba, i), [0, 1, 2].map((c) => (s[4 * i + c] / 65535) * a + 1 - a), 1e-6, `rgba16 pixel ${i}`);
    near(pixel(grey, i), [0, 0, 0].map(() => s[i] / 65535), 1e-7, `grey16 pixel ${i}`);
  }
});

test('8-bit grey, grey+alpha, RGBA, 1-bit grey and palette PNGs', () => {
  const r = rng(nextSeed());
  const w = 11, h = 3, n = w * h;
  const s = Array.from({ length: 4 * n }, () => Math.floor(r() * 256));
  const grey = decodeImage(makePng(w, h, 8, 0, s.slice(0, n)), 'g.png');
  const ga = decodeImage(makePng(w, h, 8, 4, s.slice(0, 2 * n)), 'ga.png');
  const rgba = decodeImage(makePng(w, h, 8, 6, s), 'rgba.png');
  const bits = s.slice(0, n).map((v) => v & 1);
  const mono = decodeImage(makePng(w, h, 1, 0, bits), 'mono.png');
  const plte = chunk('PLTE', new Uint8Array([255, 0, 0, 0, 128, 255, 10, 20, 30]));
  const trns = chunk('tRNS', new Uint8Array([255, 255, 0])); // third colour fully transparent
  const idx = s.slice(0, n).map((v) => v % 3);
  const pal = decodeImage(makePng(w, h, 8, 3, idx, [plte, trns]), 'pal.png');
  const colours = [[1, 0, 0], [0, 128 / 255, 1], [1, 1, 1]];
  for (let i = 0; i < n; i++) {
    near(pixel(grey, i), [s[i] / 255, s[i] / 255, s[i] / 255], 1e-7, `grey pixel ${i}`);
    const a2 = s[2 * i + 1] / 255, g2 = (s[2 * i] / 255) * a2 + 1 - a2;
    near(pixel(ga, i), [g2, g2, g2], 1e-6, `grey+alpha pixel ${i}`);
    const a4 = s[4 * i + 3] / 255;
    near(pixel(rgba, i), [0, 1, 2].map((c) => (s[4 * i + c] / 255) * a4 + 1 - a4), 1e-6, `rgba pixel ${i}`);
    near(pixel(mono, i), [bits[i], bits[i], bits[i]], 0, `1-bit pixel ${i}`);
    near(pixel(pal, i), colours[idx[i]], 1e-7, `palette pixel ${i}`);
  }
});

test('grey (1-component) JPEG decodes to equal R, G, B', () => {
  const r = rng(nextSeed());
  const vals = Array.from({ length: 6 }, () => Math.floor(r() * 256));
  const img = decodeImage(makeGreyJpeg(3, 2, vals), 'grey.jpg');
  assert.is(img.width, 24); assert.is(img.height, 16);
  for (let y = 0; y < 16; y++) for (let x = 0; x < 24; x++) {
    const v = vals[(y >> 3) * 3 + (x >> 3)] / 255;
    near(pixel(img, y * 24 + x), [v, v, v], 1.01 / 255, `pixel ${x},${y}`);
  }
});

/** An APP1 Exif segment holding only IFD0 with the orientation tag, in either byte order. */
function exifSegment(orientation: number, le: boolean): Uint8Array {
  const tiff = new Uint8Array(8 + 2 + 12 + 4);
  const v = new DataView(tiff.buffer);
  tiff.set(le ? [0x49, 0x49] : [0x4d, 0x4d]);
  v.setUint16(2, 42, le); v.setUint32(4, 8, le); v.setUint16(8, 1, le);
  v.setUint16(10, 0x0112, le); v.setUint16(12, 3, le); v.setUint32(14, 1, le); v.setUint16(18, orientation, le);
  const body = concat([new TextEncoder().encode('Exif\0\0'), tiff]);
  return concat([new Uint8Array([0xff, 0xe1, (body.length + 2) >> 8, (body.length + 2) & 255]), body]);
}

test('EXIF orientation turns JPEGs upright', () => {
  // 16x8: left half dark, right half light; quadrant values are far apart so JPEG loss does not matter.
  const w = 16, h = 8, n = w * h, data = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[c * n + y * w + x] = x < 8 ? (y < 4 ? 0 : 0.35) : (y < 4 ? 0.65 : 1);
  const jpg = encodeImage({ width: w, height: h, data }, 'jpeg', 95);
  const q = (img: RgbImage, x: number, y: number) => Math.round(img.data[y * img.width + x] * 3) / 3; // nearest of 4 levels
  // Where the stored top-left (0), top-right (0.65), bottom-left (0.35) quadrants appear after orientation:
  // [width, height, value at top-left corner, top-right corner, bottom-left corner]
  const want: Record<number, number[]> = {
    1: [16, 8, 0, 0.65, 0.35], 2: [16, 8, 0.65, 0, 1], 3: [16, 8, 1, 0.35, 0.65], 4: [16, 8, 0.35, 1, 0],
    5: [8, 16, 0, 0.35, 0.65], 6: [8, 16, 0.35, 0, 1], 7: [8, 16, 1, 0.65, 0.35], 8: [8, 16, 0.65, 1, 0],
  };
  for (let o = 1; o <= 8; o++) {
    const withExif = concat([jpg.subarray(0, 2), exifSegment(o, o % 2 === 0), jpg.subarray(2)]);
    assert.is(readImageHeader(withExif, 'o.jpg').orientation, o);
    const img = decodeImage(withExif, 'o.jpg');
    const [W, H, tl, tr, bl] = want[o];
    assert.equal([img.width, img.height], [W, H], `orientation ${o} size`);
    const r = (v: number) => Math.round(v * 3) / 3;
    assert.equal([q(img, 0, 0), q(img, W - 1, 0), q(img, 0, H - 1)], [tl, tr, bl].map(r), `orientation ${o} corners`);
  }
  // orient() keeps every pixel (a permutation) and 6 then 8 is the identity
  const rnd = randomImage8(5, 3, nextSeed());
  assert.equal([...orient(orient(rnd, 6), 8).data], [...rnd.data]);
  assert.equal([...orient(orient(rnd, 5), 5).data], [...rnd.data]);
});

const realJpeg = new URL('tubingen.jpg', EXAMPLES);
test('real photograph decodes (examples/tubingen.jpg)', async () => {
  const img = await readImage(realJpeg.pathname);
  const h = readImageHeader(readFileSync(realJpeg), 'tubingen.jpg');
  assert.equal([img.width, img.height], [h.width, h.height]);
  assert.equal([img.width, img.height], [512, 384]);
  let lo = Infinity, hi = -Infinity, sum = 0;
  for (const v of img.data) { lo = Math.min(lo, v); hi = Math.max(hi, v); sum += v; }
  assert.ok(lo >= 0 && hi <= 1 && hi - lo > 0.5, `range ${lo}..${hi}`);
  const mean = sum / img.data.length;
  assert.ok(mean > 0.1 && mean < 0.9, `mean ${mean}`);
});

// ---- Errors: one line, a PainterlyError, naming the file ----
async function expectError(f: () => unknown, pattern: RegExp, name: string) {
  try {
    await f();
  } catch (e) {
    assert.instance(e, PainterlyError, `${name}: ${String(e)}`);
    const m = (e as Error).message;
    assert.not.match(m, /\n/, 'one line');
    assert.ok(m.includes(name), `message names ${name}: ${m}`);
    assert.match(m, pattern, `${name}: ${m}`);
    return;
  }
  assert.unreachable(`${name}: expected an error matching ${pattern}`);
}

test('missing, empty, directory', async () => {
  await expectError(() => readImage(join(dir, 'nope.png')), /no such file/, 'nope.png');
  writeFileSync(join(dir, 'empty.jpg'), new Uint8Array(0));
  await expectError(() => readImage(join(dir, 'empty.jpg')), /empty/, 'empty.jpg');
  mkdirSync(join(dir, 'sub.png'));
  await expectError(() => readImage(join(dir, 'sub.png')), /directory/, 'sub.png');
});

test('unsupported formats say which are supported', async () => {
  const files: [string, number[]][] = [
    ['a.gif', [...Buffer.from('GIF89a'), 1, 0, 1, 0, 0, 0, 0]],
    ['a.webp', [...Buffer.from('RIFF'), 0, 0, 0, 0, ...Buffer.from('WEBPVP8 ')]],
    ['a.bmp', [...Buffer.from('BM'), 0, 0, 0, 0, 0, 0]],
    ['a.tif', [0x49, 0x49, 0x2a, 0, 8, 0, 0, 0]],
  ];
  for (const [name, bytes] of files) {
    writeFileSync(join(dir, name), new Uint8Array(bytes));
    const kind = { gif: 'GIF', webp: 'WebP', bmp: 'BMP', tif: 'TIFF' }[name.slice(2)]!;
    await expectError(() => readImage(join(dir, name)), new RegExp(`${kind} images are not supported; supported formats are PNG and JPEG`), name);
  }
  await expectError(() => decodeImage(new TextEncoder().encode('hello, world'), 'note.png'), /not a PNG or JPEG file.*supported formats are PNG and JPEG/, 'note.png');
});

test('truncated and corrupt PNG', async () => {
  const png = encodeImage(randomImage8(40, 30, nextSeed()), 'png');
  await expectError(() => decodeImage(png.subarray(0, 20), 'head.png'), /truncated PNG/, 'head.png');
  await expectError(() => decodeImage(png.subarray(0, png.length >> 1), 'half.png'), /truncated or corrupt PNG/, 'half.png');
  await expectError(() => decodeImage(png.subarray(0, png.length - 12), 'noend.png'), /truncated or corrupt PNG/, 'noend.png');
  const bad = png.slice(); bad[60] ^= 0x55; // inside IDAT: CRC mismatch
  await expectError(() => decodeImage(bad, 'flip.png'), /truncated or corrupt PNG/, 'flip.png');
  const notIhdr = png.slice(); notIhdr[12] = 0x41;
  await expectError(() => decodeImage(notIhdr, 'x.png'), /first chunk is not IHDR/, 'x.png');
  writeFileSync(join(dir, 'cut.png'), png.subarray(0, 100));
  await expectError(() => readImage(join(dir, 'cut.png')), /truncated or corrupt PNG/, 'cut.png');
});

test('truncated and corrupt JPEG', async () => {
  const jpg = encodeImage(smoothImage(64, 48), 'jpeg', 90);
  for (const cut of [3, 30, jpg.length >> 1, jpg.length - 2]) {
    await expectError(() => decodeImage(jpg.subarray(0, cut), `cut${cut}.jpg`), /truncated JPEG/, `cut${cut}.jpg`);
  }
  const garbage = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 16, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0x12, 0x34, 0x56]);
  await expectError(() => decodeImage(garbage, 'junk.jpg'), /corrupt JPEG/, 'junk.jpg');
  const noFrame = new Uint8Array([0xff, 0xd8, 0xff, 0xfe, 0, 4, 65, 66, 0xff, 0xd9]);
  await expectError(() => decodeImage(noFrame, 'noframe.jpg'), /no frame header/, 'noframe.jpg');
  if (existsSync(realJpeg)) {
    const real = readFileSync(realJpeg);
    await expectError(() => decodeImage(real.subarray(0, real.length * 0.7), 'tub.jpg'), /truncated JPEG/, 'tub.jpg');
  }
});

test('absurd dimensions are refused from the header, before decoding', async () => {
  const pngHeader = (w: number, h: number) => concat([new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    ihdr(w, h, 8, 2), chunk('IDAT', deflateSync(new Uint8Array(100))), chunk('IEND', new Uint8Array(0))]);
  for (const [w, h] of [[100000, 100000], [MAX_IMAGE_SIDE + 1, 10], [9000, 9000]]) {
    const t0 = performance.now();
    await expectError(() => decodeImage(pngHeader(w, h), 'huge.png'), new RegExp(`${w}x${h} is too large; the limit is 16384`), 'huge.png');
    assert.ok(performance.now() - t0 < 200, 'refused quickly');
  }
  await expectError(() => decodeImage(pngHeader(0, 5), 'zero.png'), /corrupt PNG header/, 'zero.png');
  const jpg = encodeImage(smoothImage(16, 8), 'jpeg').slice();
  const sof = jpg.findIndex((v, i) => v === 0xff && jpg[i + 1] === 0xc0);
  jpg[sof + 5] = 0xfd; jpg[sof + 6] = 0xe8; jpg[sof + 7] = 0xfd; jpg[sof + 8] = 0xe8; // 65000 x 65000
  await expectError(() => decodeImage(jpg, 'huge.jpg'), /65000x65000 is too large/, 'huge.jpg');
  // a header within limits passes and reports the size
  assert.equal(readImageHeader(pngHeader(16384, 4096), 'ok.png'), { format: 'png', width: 16384, height: 4096, orientation: 1 });
});

test('writeImage: by extension, clamps, atomic replace, clear errors', async () => {
  const img: RgbImage = { width: 2, height: 1, data: new Float32Array([-1, 2, 0.5, 0.5, 1, 0]) };
  const p = join(dir, 'w.PNG');
  writeFileSync(p, 'old contents');
  await writeImage(p, img);
  const back = await readImage(p);
  assert.equal([...back.data], [0, 1, 128 / 255, 128 / 255, 1, 0].map(Math.fround));
  await writeImage(join(dir, 'w.jpeg'), smoothImage(16, 16));
  assert.is(readImageHeader(readFileSync(join(dir, 'w.jpeg')), 'w.jpeg').format, 'jpeg');
  assert.not.ok(readdirSync(dir).some((f) => f.endsWith('.tmp')), 'no temp files left');
  await expectError(() => writeImage(join(dir, 'w.gif'), img), /unknown extension; use \.png, \.jpg or \.jpeg/, 'w.gif');
  await expectError(() => writeImage(join(dir, 'no', 'such', 'dir.png'), img), /cannot write image/, 'dir.png');
  await expectError(() => writeImage(join(dir, 'bad.png'), { width: 3, height: 1, data: new Float32Array(3) }), /expected an RgbImage/, 'encodeImage');
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
