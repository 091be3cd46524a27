// Reads PyTorch checkpoints (torch.save of a state dict) without Python, in Node and browsers (only ByteSource reads):
//   zip format (torch >= 1.6): <archive>/data.pkl (the pickled dict; tensors are persistent ids naming storages) and
//     <archive>/data/<key> (each storage's raw bytes), optionally <archive>/byteorder ("little" or "big");
//   legacy format: pickles of the magic number, the protocol version, sys info ({little_endian, type_sizes...}), the
//     dict, the list of storage keys; then per key in that order an int64 element count and the raw bytes.
// The pickles go through the restricted unpickler in pickle.ts: nothing is executed. Tensors are indexed first
// (names, shapes, where their bytes are; every bound checked), then decoded one by one to Float32Array on demand.
import { PainterlyError } from '../gpu/device.ts';
import {
  DTYPE_SIZE, parseStoragePid, PickleTruncated, PyDict, PyTuple, TensorRef, unpickle,
  type PthDtype, type PyKey, type PyValue, type StorageRef,
} from './pickle.ts';
import { decodeTensor, type ByteSource } from './safetensors.ts';
import { readZipDirectory, readZipEntry, type ZipEntry } from './zip.ts';

export type { PthDtype } from './pickle.ts';
export type WeightsFormat = 'safetensors' | 'pth-zip' | 'pth-legacy' | 'unknown';

/** Bytes detectWeightsFormat needs to tell the formats apart. */
export const SNIFF_BYTES = 16;

/** The legacy format's first pickle: the integer 0x1950a86a20f9469cfc6c as LONG1, little-endian. */
const MAGIC = [0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
const MAGIC_NUMBER = 0x1950a86a20f9469cfc6cn;
const PROTOCOL_VERSION = 1001;

/** Tells the weight formats apart from the first bytes of a file (SNIFF_BYTES of them suffice). */
export function detectWeightsFormat(first: Uint8Array): WeightsFormat {
  if (first.length >= 4 && first[0] === 0x50 && first[1] === 0x4b && first[2] === 0x03 && first[3] === 0x04) return 'pth-zip';
  if (first.length >= 14 && first[0] === 0x80 && first[1] >= 2 && first[1] <= 5 && MAGIC.every((b, i) => first[2 + i] === b)) return 'pth-legacy';
  if (first.length >= 9 && first[8] === 0x7b) {
    const dv = new DataView(first.buffer, first.byteOffset, 8);
    const n = dv.getUint32(0, true) + dv.getUint32(4, true) * 2 ** 32;
    if (n >= 2 && n <= 100_000_000) return 'safetensors';
  }
  return 'unknown';
}

/** Where a storage's bytes are: a byte range of the file (legacy) or a zip entry. */
interface StorageData { numel: number; begin?: number; entry?: ZipEntry }

export interface PthTensorEntry {
  name: string;
  dtype: PthDtype;
  shape: number[];
  /** In elements, as torch gives them (contiguous or not). */
  stride: number[];
  /** Element offset into the storage (a legacy storage view's offset included). */
  offset: number;
  storage: StorageRef;
}

export interface PthIndex {
  file: string;
  format: 'pth-zip' | 'pth-legacy';
  /** Flattened names ("model.conv11.weight"), in the order of the checkpoint. */
  tensors: Map<string, PthTensorEntry>;
  littleEndian: boolean;
  /** Storage key -> where its bytes are. */
  storages: Map<string, StorageData>;
}

export interface PthTensor { name: string; dtype: PthDtype; shape: number[]; data: Float32Array }

/** Reads and decodes every tensor of a checkpoint. */
export async function readPth(src: ByteSource): Promise<Map<string, PthTensor>> {
  const index = await readPthIndex(src);
  const out = new Map<string, PthTensor>();
  for (const t of index.tensors.values()) {
    out.set(t.name, { name: t.name, dtype: t.dtype, shape: t.shape, data: await readPthTensor(src, index, t.name) });
  }
  return out;
}

/** Parses the pickles and locates every storage, checking every tensor against its storage; reads no tensor data. */
export async function readPthIndex(src: ByteSource): Promise<PthIndex> {
  const first = await src.read(0, Math.min(src.size, SNIFF_BYTES));
  const format = detectWeightsFormat(first);
  if (format === 'pth-zip') return zipIndex(src);
  if (format === 'pth-legacy') return legacyIndex(src);
  throw new PainterlyError(`${src.name}: not a PyTorch checkpoint: expected a zip archive (torch >= 1.6) or a legacy torch.save ` +
    `file (a pickled magic number), found ${whatIs(first, src.size)}`);
}

/** Decodes one tensor to float32 (integer and bool tensors are converted too). */
export async function readPthTensor(src: ByteSource, index: PthIndex, name: string): Promise<Float32Array> {
  const t = index.tensors.get(name);
  if (!t) throw new PainterlyError(`${src.name}: tensor ${name} is missing`);
  const numel = t.shape.reduce((a, b) => a * b, 1);
  if (numel === 0) return new Float32Array(0);
  const es = DTYPE_SIZE[t.dtype];
  const extent = t.shape.reduce((a, d, i) => a + (d - 1) * t.stride[i], 0) + 1;
  const data = index.storages.get(t.storage.key)!;
  const [b, e] = [t.offset * es, (t.offset + extent) * es];
  const bytes = data.entry ? await readZipEntry(src, data.entry, [b, e]) : await src.read(data.begin! + b, data.begin! + e);
  if (bytes.length !== e - b) throw new PainterlyError(`${src.name}: truncated: tensor ${name} needs bytes up to ${data.begin! + e}, the file has ${src.size}`);
  const flat = decode(t.dtype, index.littleEndian ? bytes : swap(bytes, es), extent, src.name, name);
  if (isContiguous(t.shape, t.stride)) return flat;
  // A strided view (a transpose, an expand): gather in row-major order.
  const out = new Float32Array(numel);
  const idx = new Array<number>(t.shape.length).fill(0);
  let at = 0;
  for (let i = 0; i < numel; i++) {
    out[i] = flat[at];
    for (let d = t.shape.length - 1; d >= 0; d--) {
      if (++idx[d] < t.shape[d]) { at += t.stride[d]; break; }
      at -= (t.shape[d] - 1) * t.stride[d];
      idx[d] = 0;
    }
  }
  return out;
}

function isContiguous(shape: number[], stride: number[]): boolean {
  let want = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== want) return false;
    want *= shape[d];
  }
  return true;
}

function decode(dtype: PthDtype, bytes: Uint8Array, n: number, file: string, name: string): Float32Array {
  if (dtype === 'F32' || dtype === 'F16' || dtype === 'BF16') {
    return decodeTensor({ name, dtype, shape: [n], begin: 0, end: bytes.length }, bytes, file);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const out = new Float32Array(n);
  const get: (i: number) => number = {
    F64: (i: number) => dv.getFloat64(8 * i, true),
    I64: (i: number) => Number(dv.getBigInt64(8 * i, true)),
    I32: (i: number) => dv.getInt32(4 * i, true),
    I16: (i: number) => dv.getInt16(2 * i, true),
    I8: (i: number) => dv.getInt8(i),
    U8: (i: number) => dv.getUint8(i),
    BOOL: (i: number) => dv.getUint8(i),
  }[dtype];
  for (let i = 0; i < n; i++) out[i] = get(i);
  return out;
}

function swap(bytes: Uint8Array, es: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += es) for (let j = 0; j < es; j++) out[i + j] = bytes[i + es - 1 - j];
  return out;
}

// ---------------------------------------------------------------------------------------------------------------

async function zipIndex(src: ByteSource): Promise<PthIndex> {
  const file = src.name;
  const dir = await readZipDirectory(src);
  const pkl = [...dir.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkl.length !== 1) {
    throw new PainterlyError(`${file}: a zip archive but not a PyTorch checkpoint: expected one <archive>/data.pkl, found ${pkl.length}`);
  }
  const prefix = pkl[0].slice(0, -'data.pkl'.length);
  let littleEndian = true;
  const bo = dir.entries.get(`${prefix}byteorder`);
  if (bo) {
    const s = new TextDecoder().decode(await readZipEntry(src, bo)).trim();
    if (s !== 'little' && s !== 'big') throw new PainterlyError(`${file}: ${bo.name} says '${s}', expected 'little' or 'big'`);
    littleEndian = s === 'little';
  }
  const bytes = await readZipEntry(src, dir.entries.get(pkl[0])!);
  const refs = new Map<string, StorageRef>();
  let value: PyValue;
  try {
    value = unpickle(bytes, 0, { file, persistentLoad: (pid) => remember(refs, parseStoragePid(pid, file), file) }).value;
  } catch (e) {
    if (e instanceof PickleTruncated) throw new PainterlyError(`${file}: ${pkl[0]} is truncated (a damaged archive)`);
    throw e;
  }
  const storages = new Map<string, StorageData>();
  for (const ref of refs.values()) {
    const entry = dir.entries.get(`${prefix}data/${ref.key}`);
    if (!entry) throw new PainterlyError(`${file}: storage ${ref.key} is missing: expected zip entry ${prefix}data/${ref.key}`);
    const need = ref.numel * DTYPE_SIZE[ref.dtype];
    if (entry.size < need) {
      throw new PainterlyError(`${file}: storage ${ref.key} is too short: ${ref.numel} ${ref.dtype} elements need ${need} bytes, ${entry.name} has ${entry.size}`);
    }
    storages.set(ref.key, { numel: ref.numel, entry });
  }
  return { file, format: 'pth-zip', tensors: flatten(value, file), littleEndian, storages };
}

async function legacyIndex(src: ByteSource): Promise<PthIndex> {
  const file = src.name;
  // The pickles come first and their length is only known by parsing them: parse a prefix, growing it as needed.
  let have = Math.min(src.size, 1 << 16);
  for (;;) {
    const bytes = await src.read(0, have);
    try {
      return await legacyFromPrefix(src, bytes);
    } catch (e) {
      if (!(e instanceof PickleTruncated)) throw e;
      if (have >= src.size) throw new PainterlyError(`${file}: truncated: the file ends inside its pickled header (${src.size} bytes)`);
      have = Math.min(src.size, have * 4);
    }
  }
}

async function legacyFromPrefix(src: ByteSource, bytes: Uint8Array): Promise<PthIndex> {
  const file = src.name;
  let p = 0;
  const next = (persistentLoad?: (pid: PyValue) => PyValue) => {
    const r = unpickle(bytes, p, { file, persistentLoad });
    p = r.end;
    return r.value;
  };
  if (next() !== MAGIC_NUMBER) throw new PainterlyError(`${file}: not a PyTorch checkpoint: bad magic number`);
  const protocol = next();
  if (protocol !== PROTOCOL_VERSION) throw new PainterlyError(`${file}: legacy checkpoint protocol ${String(protocol)}, expected ${PROTOCOL_VERSION}`);
  const sysInfo = next();
  const littleEndian = !(sysInfo instanceof PyDict) || sysInfo.map.get('little_endian') !== false;
  const refs = new Map<string, StorageRef>();
  const value = next((pid) => remember(refs, parseStoragePid(pid, file), file));
  const keys = next();
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) throw new PainterlyError(`${file}: bad legacy checkpoint: expected a list of storage keys after the state dict`);

  // The storages follow in the order of the key list: int64 element count, then the bytes.
  const storages = new Map<string, StorageData>();
  let at = p;
  for (const key of keys as string[]) {
    const ref = refs.get(key);
    if (!ref) throw new PainterlyError(`${file}: bad legacy checkpoint: storage ${key} is listed but no tensor uses it`);
    const head = await src.read(at, at + 8);
    if (head.length < 8) throw new PainterlyError(`${file}: truncated: storage ${key} is missing (the file ends at byte ${src.size}, its element count was expected at ${at})`);
    const hv = new DataView(head.buffer, head.byteOffset, 8);
    const [lo, hi] = littleEndian ? [hv.getUint32(0, true), hv.getUint32(4, true)] : [hv.getUint32(4, false), hv.getUint32(0, false)];
    const count = lo + hi * 2 ** 32;
    if (count !== ref.numel) {
      throw new PainterlyError(`${file}: storage ${key} ${count < ref.numel ? 'is too short' : 'does not match'}: it holds ${count} elements, the pickle expects ${ref.numel}`);
    }
    const end = at + 8 + count * DTYPE_SIZE[ref.dtype];
    if (end > src.size) throw new PainterlyError(`${file}: truncated: storage ${key} ends at byte ${end}, the file has ${src.size}`);
    storages.set(key, { numel: count, begin: at + 8 });
    at = end;
  }
  for (const key of refs.keys()) {
    if (!storages.has(key)) throw new PainterlyError(`${file}: storage ${key} is missing: a tensor uses it but the file does not list it`);
  }
  return { file, format: 'pth-legacy', tensors: flatten(value, file), littleEndian, storages };
}

/** Keeps one StorageRef per key; the same key must always describe the same storage. */
function remember(refs: Map<string, StorageRef>, ref: StorageRef, file: string): StorageRef {
  const old = refs.get(ref.key);
  if (old && (old.dtype !== ref.dtype || old.numel !== ref.numel)) {
    throw new PainterlyError(`${file}: storage ${ref.key} is described twice, as ${old.dtype}[${old.numel}] and ${ref.dtype}[${ref.numel}]`);
  }
  if (!old) refs.set(ref.key, { ...ref, view: undefined });
  return ref;
}

/** Nested dicts (and lists) become dotted names; values that are not tensors (an epoch, a learning rate) are skipped. */
function flatten(root: PyValue, file: string): Map<string, PthTensorEntry> {
  if (!(root instanceof PyDict)) {
    throw new PainterlyError(`${file}: expected a dict of tensors (a state dict), found ${root instanceof TensorRef ? 'a single tensor' : 'something else'}`);
  }
  const out = new Map<string, PthTensorEntry>();
  const walk = (v: PyValue, name: string) => {
    if (v instanceof TensorRef) {
      if (out.has(name)) throw new PainterlyError(`${file}: two tensors are named ${name} once nested dicts are flattened`);
      out.set(name, entry(v, name, file));
    } else if (v instanceof PyDict) {
      for (const [k, x] of v.map) walk(x, name === '' ? keyName(k) : `${name}.${keyName(k)}`);
    } else if (Array.isArray(v) || v instanceof PyTuple) {
      (Array.isArray(v) ? v : v.items).forEach((x, i) => walk(x, name === '' ? String(i) : `${name}.${i}`));
    }
  };
  walk(root, '');
  if (out.size === 0) throw new PainterlyError(`${file}: no tensors found: expected a state dict`);
  return out;
}

function keyName(k: PyKey): string {
  return k instanceof PyTuple ? k.items.map((x) => keyName(x as PyKey)).join('.') : String(k);
}

function entry(t: TensorRef, name: string, file: string): PthTensorEntry {
  const s = t.storage;
  const base = s.view?.offset ?? 0;
  const avail = s.view?.numel ?? s.numel;
  const numel = t.shape.reduce((a, b) => a * b, 1);
  const extent = numel === 0 ? 0 : t.shape.reduce((a, d, i) => a + (d - 1) * t.stride[i], 0) + 1;
  if (t.offset + extent > avail) {
    throw new PainterlyError(`${file}: tensor ${name} ${s.dtype}[${t.shape.join(',')}] (offset ${t.offset}, stride [${t.stride.join(',')}]) ` +
      `needs ${t.offset + extent} elements, its storage ${s.key} has ${avail}`);
  }
  return { name, dtype: s.dtype, shape: t.shape, stride: t.stride, offset: base + t.offset, storage: s };
}

function whatIs(b: Uint8Array, size: number): string {
  if (size === 0) return 'an empty file';
  const hex = [...b.subarray(0, 8)].map((x) => x.toString(16).padStart(2, '0')).join(' ');
  const starts = (...s: number[]) => s.every((x, i) => b[i] === x);
  const kind = starts(0x89, 0x50, 0x4e, 0x47) ? ' (a PNG image)'
    : starts(0xff, 0xd8, 0xff) ? ' (a JPEG image)'
      : starts(0x1f, 0x8b) ? ' (gzip data)'
        : starts(0x3c) ? ' (HTML or XML: an error page instead of the file?)'
          : starts(0x50, 0x4b) ? ' (a zip archive that is empty or damaged)'
            : starts(0x80) ? ' (a pickle, but not torch.save output)'
              : '';
  return `bytes ${hex}${kind}`;
}
