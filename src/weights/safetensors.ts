// A small reader/writer for the safetensors format (https://github.com/huggingface/safetensors):
//   [u64 little-endian header length N][N bytes of JSON header][raw little-endian tensor data]
// The header maps tensor names to {dtype, shape, data_offsets: [begin, end]} (offsets relative to the data start)
// plus an optional "__metadata__" object of strings. We decode F32, F16 and BF16 to Float32Array; other dtypes may
// sit in a file (they are skipped) but are refused when asked for. Environment-neutral: no Node APIs.
import { PainterlyError } from '../gpu/device.ts';

/** Random access to the bytes of a file-like thing (in-memory bytes, a local file, ...). */
export interface ByteSource {
  /** Names the source in error messages (a path or a URL). */
  readonly name: string;
  readonly size: number;
  /** Bytes [begin, end). */
  read(begin: number, end: number): Promise<Uint8Array>;
}

export function bytesSource(name: string, bytes: Uint8Array): ByteSource {
  return { name, size: bytes.length, read: async (b, e) => bytes.subarray(b, e) };
}

export interface TensorEntry {
  name: string;
  dtype: string;
  shape: number[];
  /** Absolute byte offsets in the file, [begin, end). */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  file: string;
  headerLength: number;
  /** Absolute offset of the data section (8 + headerLength). */
  dataStart: number;
  /** Bytes the header says the file has (dataStart + largest end offset). */
  expectedSize: number;
  tensors: Map<string, TensorEntry>;
  metadata: Record<string, string>;
}

const DTYPE_BYTES: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
  F8_E4M3: 1, F8_E5M2: 1,
};
export const DECODABLE_DTYPES = ['F32', 'F16', 'BF16'] as const;
export type DecodableDtype = (typeof DECODABLE_DTYPES)[number];

/** The safetensors reference implementation refuses headers over 100 MB; so do we (a corrupt length otherwise
 * asks for gigabytes). */
const MAX_HEADER = 100_000_000;

/** Reads the header length from the first 8 bytes. */
export function parseHeaderLength(first8: Uint8Array, file: string, fileSize?: number): number {
  if (first8.length < 8) throw new PainterlyError(`${file}: not a safetensors file: expected at least 8 bytes, found ${first8.length}`);
  const dv = new DataView(first8.buffer, first8.byteOffset, 8);
  const n = dv.getUint32(0, true) + dv.getUint32(4, true) * 2 ** 32;
  if (first8[0] === 0x50 && first8[1] === 0x4b) {
    throw new PainterlyError(`${file}: this is a zip file (a PyTorch .pth checkpoint?), expected safetensors; convert it with ` +
      `python -c "import torch,safetensors.torch as s; s.save_file(torch.load('in.pth'), 'out.safetensors')"`);
  }
  if (n < 2 || n > MAX_HEADER) throw new PainterlyError(`${file}: bad safetensors header: header length ${n} is not in [2, ${MAX_HEADER}]`);
  if (fileSize !== undefined && 8 + n > fileSize) {
    throw new PainterlyError(`${file}: truncated: the header needs ${8 + n} bytes, the file has ${fileSize}`);
  }
  return n;
}

/** Parses and checks the JSON header. `fileSize`, when known, is checked against the data the header describes. */
export function parseHeader(json: Uint8Array, file: string, fileSize?: number): SafetensorsHeader {
  const headerLength = json.length;
  const dataStart = 8 + headerLength;
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json));
  } catch (e) {
    throw new PainterlyError(`${file}: bad safetensors header: not UTF-8 JSON (${oneLine(e)})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new PainterlyError(`${file}: bad safetensors header: expected a JSON object`);
  }
  const tensors = new Map<string, TensorEntry>();
  let metadata: Record<string, string> = {};
  let maxEnd = 0;
  for (const [name, v] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) {
        throw new PainterlyError(`${file}: bad safetensors header: __metadata__ must be an object of strings`);
      }
      metadata = v as Record<string, string>;
      continue;
    }
    const bad = (what: string) => new PainterlyError(`${file}: bad safetensors header: tensor ${name}: ${what}`);
    if (typeof v !== 'object' || v === null) throw bad('expected {dtype, shape, data_offsets}');
    const { dtype, shape, data_offsets: off } = v as Record<string, unknown>;
    if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) throw bad(`unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw bad(`shape must be an array of non-negative integers, found ${JSON.stringify(shape)}`);
    }
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[0] > off[1]) {
      throw bad(`data_offsets must be [begin, end] with 0 <= begin <= end, found ${JSON.stringify(off)}`);
    }
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    if (off[1] - off[0] !== numel * DTYPE_BYTES[dtype]) {
      throw bad(`${dtype}[${shape.join(',')}] needs ${numel * DTYPE_BYTES[dtype]} bytes, data_offsets span ${off[1] - off[0]}`);
    }
    maxEnd = Math.max(maxEnd, off[1]);
    tensors.set(name, { name, dtype, shape: shape as number[], begin: dataStart + off[0], end: dataStart + off[1] });
  }
  const expectedSize = dataStart + maxEnd;
  if (fileSize !== undefined && fileSize < expectedSize) {
    throw new PainterlyError(`${file}: truncated: the header describes ${expectedSize} bytes, the file has ${fileSize}`);
  }
  return { file, headerLength, dataStart, expectedSize, tensors, metadata };
}

export async function readHeader(src: ByteSource): Promise<SafetensorsHeader> {
  const n = parseHeaderLength(await src.read(0, Math.min(8, src.size)), src.name, src.size);
  return parseHeader(await src.read(8, 8 + n), src.name, src.size);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

let halfTable: Uint32Array | undefined;
/** float32 bit patterns of all 65536 float16 values (exact: every half is a float). */
function halfBits(): Uint32Array {
  if (halfTable) return halfTable;
  const t = new Uint32Array(65536);
  const f = new Float32Array(t.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) { f[h] = m * 2 ** -24; t[h] |= sign; } // zero and subnormals
    else if (e === 31) t[h] = sign | 0x7f800000 | (m << 13); // inf, NaN (payload kept)
    else t[h] = sign | ((e + 112) << 23) | (m << 13); // rebias exponent 15 -> 127
  }
  return (halfTable = t);
}

/** Decodes the raw little-endian bytes of `entry` to float32. */
export function decodeTensor(entry: TensorEntry, bytes: Uint8Array, file: string): Float32Array {
  const numel = entry.shape.reduce((a, b) => a * b, 1);
  if (bytes.length !== entry.end - entry.begin) {
    throw new PainterlyError(`${file}: tensor ${entry.name}: expected ${entry.end - entry.begin} bytes, got ${bytes.length}`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const out = new Float32Array(numel);
  switch (entry.dtype) {
    case 'F32':
      if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(bytes); // a copy also fixes any misalignment
      else for (let i = 0; i < numel; i++) out[i] = dv.getFloat32(4 * i, true);
      break;
    case 'F16': {
      const t = halfBits();
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < numel; i++) bits[i] = t[dv.getUint16(2 * i, true)];
      break;
    }
    case 'BF16': { // bfloat16 is the top half of a float32
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < numel; i++) bits[i] = dv.getUint16(2 * i, true) << 16;
      break;
    }
    default:
      throw new PainterlyError(`${file}: tensor ${entry.name}: dtype ${entry.dtype} is not supported, expected one of ${DECODABLE_DTYPES.join(', ')}`);
  }
  return out;
}

export async function readTensor(src: ByteSource, header: SafetensorsHeader, name: string): Promise<Float32Array> {
  const entry = header.tensors.get(name);
  if (!entry) throw new PainterlyError(`${src.name}: tensor ${name} is missing`);
  return decodeTensor(entry, await src.read(entry.begin, entry.end), src.name);
}

export interface RawTensor { name: string; dtype: string; shape: number[]; data: Uint8Array }

/** Serializes tensors in the given order; the header is space-padded so the data starts 8-byte aligned. */
export function writeSafetensors(tensors: RawTensor[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let off = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.data.length] };
    off += t.data.length;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil((8 + json.length) / 8) * 8 - 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + off);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, json.length, true);
  dv.setUint32(4, 0, true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const t of tensors) { out.set(t.data, at); at += t.data.length; }
  return out;
}

export function f32Bytes(a: Float32Array): Uint8Array {
  const out = new Uint8Array(a.length * 4);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < a.length; i++) dv.setFloat32(4 * i, a[i], true);
  return out;
}

export function oneLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split('\n')[0];
}
