// PNG and JPEG decoding/encoding from and to bytes (pngjs, jpeg-js). Environment-neutral: no file system here
// (Node file I/O is in node-io.ts). The header is parsed and checked against a pixel budget before any decoding,
// so a hostile or broken file costs neither time nor memory.
import { PNG } from 'pngjs';
import { decode as decodeJpeg, encode as encodeJpeg } from 'jpeg-js';
import { PainterlyError } from '../gpu/device.ts';
import { MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE, checkImage, fromRgba, toRgba, type RgbImage } from './image.ts';

export { MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE };

export type ImageFormat = 'png' | 'jpeg';
const SUPPORTED = 'supported formats are PNG and JPEG';

export interface ImageHeader {
  format: ImageFormat;
  width: number;
  height: number;
  /** EXIF orientation of a JPEG (1-8; 1 = as stored), applied by decodeImage. Width and height are as stored. */
  orientation: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function startsWith(b: Uint8Array, sig: number[], at = 0): boolean {
  if (b.length < at + sig.length) return false;
  for (let i = 0; i < sig.length; i++) if (b[at + i] !== sig[i]) return false;
  return true;
}
const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));

/** Names a few formats we do not read, so the error can say what the file is. */
function otherFormat(b: Uint8Array): string | undefined {
  if (startsWith(b, ascii('GIF8'))) return 'GIF';
  if (startsWith(b, ascii('RIFF')) && startsWith(b, ascii('WEBP'), 8)) return 'WebP';
  if (startsWith(b, ascii('BM'))) return 'BMP';
  if (startsWith(b, [0x49, 0x49, 0x2a, 0]) || startsWith(b, [0x4d, 0x4d, 0, 0x2a])) return 'TIFF';
  if (startsWith(b, ascii('ftyp'), 4)) return 'HEIF/AVIF (or another ISO media file)';
  if (startsWith(b, [0, 0, 1, 0])) return 'ICO';
  if (startsWith(b, ascii('8BPS'))) return 'PSD';
  return undefined;
}

/** The format by magic bytes, or undefined if neither PNG nor JPEG. */
export function sniffFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (startsWith(bytes, PNG_SIGNATURE)) return 'png';
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  return undefined;
}

const oneLine = (s: string) => s.replace(/\s+/g, ' ').trim();

function fail(name: string, what: string): never {
  throw new PainterlyError(`image "${name}": ${what}`);
}

/**
 * Reads the format and size from the header without decoding, and checks the structure that the decoders are
 * lenient about (a JPEG must reach its end-of-image marker, so a cut-off download is not silently half grey).
 * Throws a PainterlyError naming `name` for empty, unknown, truncated or oversized input.
 */
export function readImageHeader(bytes: Uint8Array, name: string): ImageHeader {
  if (bytes.length === 0) fail(name, 'file is empty (0 bytes)');
  const format = sniffFormat(bytes);
  if (!format) {
    const other = otherFormat(bytes);
    if (other) fail(name, `${other} images are not supported; ${SUPPORTED}`);
    const head = [...bytes.subarray(0, 8)].map((x) => x.toString(16).padStart(2, '0')).join(' ');
    fail(name, `not a PNG or JPEG file (starts with bytes ${head}); ${SUPPORTED}`);
  }
  const { width, height, orientation = 1 } = format === 'png' ? pngSize(bytes, name) : jpegSize(bytes, name);
  if (width <= 0 || height <= 0) fail(name, `corrupt ${format.toUpperCase()} header (size ${width}x${height})`);
  if (width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE || width * height > MAX_IMAGE_PIXELS) {
    fail(name, `${width}x${height} is too large; the limit is ${MAX_IMAGE_SIDE} pixels per side and ` +
      `${MAX_IMAGE_PIXELS} pixels in all`);
  }
  return { format, width, height, orientation };
}

function pngSize(b: Uint8Array, name: string): { width: number; height: number; orientation: number } {
  // Signature, then the IHDR chunk: length (4), "IHDR", width (4, big-endian), height (4), depth, colour type, ...
  if (b.length < 33) fail(name, `truncated PNG (${b.length} bytes, shorter than a PNG header)`);
  if (!startsWith(b, ascii('IHDR'), 12)) fail(name, 'corrupt PNG: the first chunk is not IHDR');
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { width: v.getUint32(16), height: v.getUint32(20), orientation: 1 };
}

/** The orientation tag (0x0112) of IFD0 in an APP1 "Exif" segment's body, or 1. Malformed EXIF is ignored. */
function exifOrientation(b: Uint8Array, start: number, end: number): number {
  const t = start + 6; // after "Exif\0\0": a TIFF header
  if (end - t < 8 || !startsWith(b, ascii('Exif'), start)) return 1;
  const v = new DataView(b.buffer, b.byteOffset + t, end - t);
  const le = b[t] === 0x49;
  const ifd = v.getUint32(4, le);
  if (ifd + 2 > v.byteLength) return 1;
  const count = v.getUint16(ifd, le);
  for (let i = 0; i < count && ifd + 2 + 12 * i + 12 <= v.byteLength; i++) {
    const e = ifd + 2 + 12 * i;
    if (v.getUint16(e, le) === 0x0112) {
      const o = v.getUint16(e + 8, le);
      return o >= 1 && o <= 8 ? o : 1;
    }
  }
  return 1;
}

function jpegSize(b: Uint8Array, name: string): { width: number; height: number; orientation: number } {
  // Walk the marker segments; after each start-of-scan skip the entropy-coded data (where 0xFF is followed by a
  // stuffed 0x00, a restart marker RST0-7 or fill 0xFF) to the next marker, until end-of-image.
  const n = b.length;
  let pos = 2;
  let size: { width: number; height: number } | undefined;
  let orientation = 1;
  while (true) {
    if (pos >= n) fail(name, 'truncated JPEG (no end-of-image marker)');
    if (b[pos] !== 0xff) fail(name, `corrupt JPEG: expected a marker at byte ${pos}`);
    while (pos < n && b[pos] === 0xff) pos++; // fill bytes
    if (pos >= n) fail(name, 'truncated JPEG (no end-of-image marker)');
    const marker = b[pos++];
    if (marker === 0xd9) break; // EOI
    if ((marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) continue; // standalone markers
    if (pos + 2 > n) fail(name, 'truncated JPEG (cut off inside a marker segment)');
    const len = (b[pos] << 8) | b[pos + 1];
    if (len < 2) fail(name, `corrupt JPEG: bad segment length at byte ${pos}`);
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) {
      if (len < 8 || pos + 7 > n) fail(name, 'truncated JPEG (cut off inside the frame header)');
      size = { height: (b[pos + 3] << 8) | b[pos + 4], width: (b[pos + 5] << 8) | b[pos + 6] };
    }
    if (marker === 0xe1 && pos + len <= n) orientation = exifOrientation(b, pos + 2, pos + len);
    pos += len;
    if (pos > n) fail(name, 'truncated JPEG (cut off inside a marker segment)');
    if (marker === 0xda) {
      if (!size) fail(name, 'corrupt JPEG: scan data before the frame header');
      while (pos < n && !(b[pos] === 0xff && pos + 1 < n && b[pos + 1] !== 0 && b[pos + 1] !== 0xff &&
        !(b[pos + 1] >= 0xd0 && b[pos + 1] <= 0xd7))) pos++;
    }
  }
  if (!size) fail(name, 'corrupt JPEG: no frame header');
  return { ...size, orientation };
}

/**
 * Decodes PNG (1-16 bit grey, grey+alpha, RGB, RGBA, palette) or JPEG (grey, RGB, CMYK) by magic bytes into
 * planar RGB in [0, 1], compositing any alpha over white. PNG gamma and colour profiles are ignored (sRGB assumed).
 */
export function decodeImage(bytes: Uint8Array, name: string): RgbImage {
  // (JPEGs are turned upright by their EXIF orientation.)
  const header = readImageHeader(bytes, name);
  return header.format === 'png' ? decodePng(bytes, name) : decodeJpegBytes(bytes, name, header);
}

// pngjs and jpeg-js want Node Buffers when one exists (browser bundles polyfill it); view, don't copy.
function asBuffer(b: Uint8Array): Uint8Array {
  const B = (globalThis as { Buffer?: typeof Buffer }).Buffer;
  return B && !B.isBuffer(b) ? B.from(b.buffer, b.byteOffset, b.byteLength) : b;
}

function decodePng(bytes: Uint8Array, name: string): RgbImage {
  let png: ReturnType<typeof PNG.sync.read>;
  try {
    // skipRescale keeps 16-bit samples at full precision (a Uint16Array) instead of rounding them to 8 bits.
    png = PNG.sync.read(asBuffer(bytes) as Buffer, { skipRescale: true });
  } catch (e) {
    fail(name, `truncated or corrupt PNG data (${oneLine(String((e as Error).message ?? e))})`);
  }
  const { width, height } = png;
  // Samples are RGBA at the file's bit depth, except palette images, which pngjs expands to 8-bit colours.
  const max = (png.colorType as number) === 3 ? 255 : 2 ** png.depth - 1;
  const src = png.data as unknown as ArrayLike<number>;
  const n = width * height;
  if (src.length !== 4 * n) fail(name, 'corrupt PNG data (pixel count does not match the header)');
  const data = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    const a = src[4 * i + 3] / max, w = 1 - a;
    for (let c = 0; c < 3; c++) {
      const v = src[4 * i + c] / max;
      data[c * n + i] = a === 1 ? v : v * a + w;
    }
  }
  return { width, height, data };
}

function decodeJpegBytes(bytes: Uint8Array, name: string, header: ImageHeader): RgbImage {
  let raw: { width: number; height: number; data: Uint8Array };
  try {
    raw = decodeJpeg(bytes, {
      useTArray: true, formatAsRGBA: true,
      maxResolutionInMP: MAX_IMAGE_PIXELS / 1e6 + 1, // our own budget was checked on the header already
      maxMemoryUsageInMB: 2048,
    });
  } catch (e) {
    fail(name, `corrupt or unsupported JPEG data (${oneLine(String((e as Error).message ?? e))})`);
  }
  if (raw.width !== header.width || raw.height !== header.height || raw.data.length !== 4 * raw.width * raw.height) {
    fail(name, 'corrupt JPEG data (decoded size does not match the header)');
  }
  return orient(fromRgba(raw.data, raw.width, raw.height), header.orientation);
}

/**
 * Applies an EXIF orientation so the image appears upright: 2 mirror, 3 rotate 180, 4 flip, 5 transpose,
 * 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise (5-8 swap width and height).
 */
export function orient(img: RgbImage, orientation: number): RgbImage {
  if (orientation <= 1 || orientation > 8) return img;
  const { width: w, height: h, data: s } = img;
  const swap = orientation >= 5;
  const W = swap ? h : w, H = swap ? w : h, n = w * h;
  const out = new Float32Array(3 * n);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      // Source pixel (sx, sy) shown at (x, y).
      let sx: number, sy: number;
      switch (orientation) {
        case 2: sx = w - 1 - x; sy = y; break;
        case 3: sx = w - 1 - x; sy = h - 1 - y; break;
        case 4: sx = x; sy = h - 1 - y; break;
        case 5: sx = y; sy = x; break;
        case 6: sx = y; sy = h - 1 - x; break;
        case 7: sx = w - 1 - y; sy = h - 1 - x; break;
        default: sx = w - 1 - y; sy = x; break; // 8
      }
      const si = sy * w + sx, di = y * W + x;
      out[di] = s[si]; out[n + di] = s[n + si]; out[2 * n + di] = s[2 * n + si];
    }
  }
  return { width: W, height: H, data: out };
}

// A plain Uint8Array view of a Buffer (whose slice() would alias instead of copy).
const plain = (b: Uint8Array) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

/** The format a file name asks for by its extension (.png, .jpg, .jpeg; any case), or undefined. */
export function formatFromName(name: string): ImageFormat | undefined {
  const m = /\.([a-z0-9]+)$/i.exec(name);
  const ext = m?.[1].toLowerCase();
  return ext === 'png' ? 'png' : ext === 'jpg' || ext === 'jpeg' ? 'jpeg' : undefined;
}

/**
 * Encodes as 8-bit RGB PNG (lossless for 8-bit data) or baseline JPEG (quality 1-100, default 92).
 * Values are clamped to [0, 1] and rounded to the nearest of 256 levels.
 */
export function encodeImage(img: RgbImage, format: ImageFormat, quality = 92): Uint8Array {
  checkImage(img, 'encodeImage');
  const rgba = toRgba(img);
  const bytes = new Uint8Array(rgba.buffer, rgba.byteOffset, rgba.byteLength);
  if (format === 'png') {
    const png = { width: img.width, height: img.height, data: asBuffer(bytes) } as unknown as PNG;
    return plain(PNG.sync.write(png, { colorType: 2, inputColorType: 6, inputHasAlpha: true }));
  }
  if (format === 'jpeg') {
    if (!(quality >= 1 && quality <= 100)) throw new PainterlyError(`JPEG quality: expected 1 to 100, got ${quality}`);
    return plain(encodeJpeg({ width: img.width, height: img.height, data: bytes }, Math.round(quality)).data);
  }
  throw new PainterlyError(`unsupported output format "${String(format)}"; ${SUPPORTED}`);
}
