// Just enough of the zip format to read PyTorch's zip checkpoints through a ByteSource: the central directory
// (zip64 included, since torch writes zip64 records for large files), then entries by name, stored or deflated.
// Deflate uses the platform's DecompressionStream('deflate-raw') (browsers since 2023, Node >= 20): torch itself
// writes stored entries, deflate only appears when someone re-zipped a checkpoint. Environment-neutral.
import { PainterlyError } from '../gpu/device.ts';
import type { ByteSource } from './safetensors.ts';

export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflated. */
  method: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

export interface ZipDirectory { file: string; entries: Map<string, ZipEntry> }

const EOCD = 0x06054b50;
const ZIP64_EOCD = 0x06064b50;
const ZIP64_LOCATOR = 0x07064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

export async function readZipDirectory(src: ByteSource): Promise<ZipDirectory> {
  const file = src.name;
  // The end-of-central-directory record (22 bytes) sits at the end, after a comment of at most 65535 bytes.
  const tailStart = Math.max(0, src.size - (22 + 65535 + 20));
  const tail = await src.read(tailStart, src.size);
  const tv = view(tail);
  let e = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tv.getUint32(i, true) === EOCD && i + 22 + tv.getUint16(i + 20, true) <= tail.length) { e = i; break; }
  }
  if (e < 0) throw new PainterlyError(`${file}: truncated zip archive: no end-of-central-directory record (the download was cut short?)`);
  let count = tv.getUint16(e + 10, true);
  let cdSize = tv.getUint32(e + 12, true);
  let cdOffset = tv.getUint32(e + 16, true);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const l = e - 20;
    if (l < 0 || tv.getUint32(l, true) !== ZIP64_LOCATOR) throw new PainterlyError(`${file}: bad zip archive: zip64 locator missing`);
    const at = u64(tv, l + 8, file);
    const rec = await src.read(at, at + 56);
    if (rec.length < 56 || view(rec).getUint32(0, true) !== ZIP64_EOCD) throw new PainterlyError(`${file}: bad zip archive: zip64 end record missing`);
    count = u64(view(rec), 32, file);
    cdSize = u64(view(rec), 40, file);
    cdOffset = u64(view(rec), 48, file);
  }
  if (cdOffset + cdSize > src.size) {
    throw new PainterlyError(`${file}: truncated zip archive: the central directory ends at byte ${cdOffset + cdSize}, the file has ${src.size}`);
  }
  const cd = await src.read(cdOffset, cdOffset + cdSize);
  const cv = view(cd);
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || cv.getUint32(p, true) !== CENTRAL) throw new PainterlyError(`${file}: bad zip archive: central directory entry ${i} is damaged`);
    const method = cv.getUint16(p + 10, true);
    let compressedSize = cv.getUint32(p + 20, true);
    let size = cv.getUint32(p + 24, true);
    const nameLen = cv.getUint16(p + 28, true);
    const extraLen = cv.getUint16(p + 30, true);
    const commentLen = cv.getUint16(p + 32, true);
    let localHeaderOffset = cv.getUint32(p + 42, true);
    const name = new TextDecoder().decode(cd.subarray(p + 46, p + 46 + nameLen));
    // zip64 extended information: the 8-byte values of the fields that are 0xffffffff, in this order.
    let x = p + 46 + nameLen;
    const xEnd = x + extraLen;
    while (x + 4 <= xEnd) {
      const id = cv.getUint16(x, true);
      const len = cv.getUint16(x + 2, true);
      if (id === 1) {
        let q = x + 4;
        if (size === 0xffffffff) { size = u64(cv, q, file); q += 8; }
        if (compressedSize === 0xffffffff) { compressedSize = u64(cv, q, file); q += 8; }
        if (localHeaderOffset === 0xffffffff) { localHeaderOffset = u64(cv, q, file); q += 8; }
      }
      x += 4 + len;
    }
    entries.set(name, { name, method, compressedSize, size, localHeaderOffset });
    p = xEnd + commentLen;
  }
  return { file, entries };
}

/** The (uncompressed) bytes of an entry; `range` (stored entries only) reads part of it. */
export async function readZipEntry(src: ByteSource, entry: ZipEntry, range?: [number, number]): Promise<Uint8Array> {
  const file = src.name;
  const local = await src.read(entry.localHeaderOffset, entry.localHeaderOffset + 30);
  if (local.length < 30 || view(local).getUint32(0, true) !== LOCAL) {
    throw new PainterlyError(`${file}: bad zip archive: the local header of ${entry.name} is missing`);
  }
  const start = entry.localHeaderOffset + 30 + view(local).getUint16(26, true) + view(local).getUint16(28, true);
  if (start + entry.compressedSize > src.size) {
    throw new PainterlyError(`${file}: truncated: zip entry ${entry.name} ends at byte ${start + entry.compressedSize}, the file has ${src.size}`);
  }
  if (entry.method === 0) {
    const [b, e] = range ?? [0, entry.size];
    return src.read(start + b, start + e);
  }
  if (entry.method !== 8) throw new PainterlyError(`${file}: zip entry ${entry.name} uses compression method ${entry.method}, expected stored (0) or deflate (8)`);
  const raw = await src.read(start, start + entry.compressedSize);
  const out = await inflateRaw(raw, `${file}: zip entry ${entry.name}`);
  if (out.length !== entry.size) throw new PainterlyError(`${file}: zip entry ${entry.name} inflates to ${out.length} bytes, expected ${entry.size}`);
  return range ? out.subarray(range[0], range[1]) : out;
}

async function inflateRaw(data: Uint8Array, what: string): Promise<Uint8Array> {
  if (typeof DecompressionStream === 'undefined') throw new PainterlyError(`${what} is deflated and this platform has no DecompressionStream`);
  try {
    const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (e) {
    throw new PainterlyError(`${what}: bad deflate data (${(e as Error).message.split('\n')[0]})`);
  }
}

function view(b: Uint8Array): DataView { return new DataView(b.buffer, b.byteOffset, b.length); }

function u64(dv: DataView, at: number, file: string): number {
  const v = dv.getUint32(at, true) + dv.getUint32(at + 4, true) * 2 ** 32;
  if (!Number.isSafeInteger(v)) throw new PainterlyError(`${file}: bad zip archive: a 64-bit size is too large`);
  return v;
}
