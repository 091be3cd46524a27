// Writes small PyTorch checkpoints from the tests, in both formats, the way torch.save lays them out: a minimal
// pickle writer (protocol 2), a stored/deflated zip writer, and the legacy stream. Also writes deliberately bad files.
import { deflateRawSync } from 'node:zlib';

export type PV =
  | null | boolean | number | bigint | string | Uint8Array | PV[] | Map<PV, PV> | { [k: string]: PV }
  | Tup | Glob | Reduce | Flt | Raw | Build | TensorSpec | OrderedFill | PidMarker;

export class Tup { constructor(readonly items: PV[]) {} }
export class Glob { constructor(readonly module: string, readonly name: string) {} }
export class Reduce { constructor(readonly fn: PV, readonly args: Tup) {} }
export class Flt { constructor(readonly x: number) {} }
/** Raw opcodes, written as they are (to make bad pickles). */
export class Raw { constructor(readonly bytes: number[]) {} }
export class Build { constructor(readonly obj: PV, readonly state: PV) {} }
class OrderedFill { constructor(readonly base: PV, readonly entries: [string, PV][]) {} }
class PidMarker { constructor(readonly pid: Tup) {} }

export const tup = (...items: PV[]) => new Tup(items);
export const glob = (module: string, name: string) => new Glob(module, name);
export const flt = (x: number) => new Flt(x);

/** collections.OrderedDict() filled by SETITEMS, with the _metadata attribute torch sets via BUILD. */
export function odict(entries: [string, PV][], metadata = true): PV {
  const d = new Reduce(glob('collections', 'OrderedDict'), tup());
  const filled = new Build(new OrderedFill(d, entries), metadata ? { _metadata: new Reduce(glob('collections', 'OrderedDict'), tup()) } : {});
  return filled;
}

export type Dtype = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64';
export const DT_SIZE: Record<Dtype, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8 };
const STORAGE_NAME: Record<Dtype, string> = { F32: 'FloatStorage', F16: 'HalfStorage', BF16: 'BFloat16Storage', F64: 'DoubleStorage', I64: 'LongStorage' };

export interface Storage {
  key: string;
  dtype: Dtype;
  /** Raw little-endian bytes. */
  bytes: Uint8Array;
  /** Elements the pickle claims (default bytes / element size). */
  numel?: number;
  /** The storage type global's name (default torch.<X>Storage; e.g. 'float32' for a dtype). */
  typeName?: string;
}

/** A torch._utils._rebuild_tensor_v2 call on a storage. */
export class TensorSpec {
  constructor(readonly storage: Storage, readonly offset: number, readonly shape: number[], readonly stride: number[], readonly parameter = false) {}
}

export function tensor(storage: Storage, shape: number[], o: { offset?: number; stride?: number[]; parameter?: boolean } = {}): TensorSpec {
  const stride = o.stride ?? shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  return new TensorSpec(storage, o.offset ?? 0, shape, stride, o.parameter);
}

const numelOf = (s: Storage) => s.numel ?? s.bytes.length / DT_SIZE[s.dtype];

/** One pickle (protocol 2). `legacy` selects the 6-element persistent ids of the legacy format. */
export function pickle(value: PV, legacy = false): Uint8Array {
  const out: number[] = [0x80, 0x02];
  const memo = new Map<string, number>();
  const u32 = (n: number) => out.push(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
  const str = (s: string) => { const b = new TextEncoder().encode(s); out.push(0x58); u32(b.length); for (const x of b) out.push(x); };
  const int = (n: number | bigint) => {
    if (typeof n === 'number' && n >= 0 && n < 256) out.push(0x4b, n);
    else if (typeof n === 'number' && n >= 0 && n < 65536) out.push(0x4d, n & 0xff, n >> 8);
    else if (typeof n === 'number' && n >= -(2 ** 31) && n < 2 ** 31) { out.push(0x4a); u32(n); }
    else { // LONG1
      let v = BigInt(n);
      const bytes: number[] = [];
      for (;;) {
        const b = Number(v & 0xffn);
        bytes.push(b);
        v >>= 8n;
        if ((v === 0n && !(b & 0x80)) || (v === -1n && b & 0x80)) break;
      }
      out.push(0x8a, bytes.length, ...bytes);
    }
  };
  const put = (v: PV) => {
    if (v === null) out.push(0x4e);
    else if (v === true) out.push(0x88);
    else if (v === false) out.push(0x89);
    else if (typeof v === 'number' || typeof v === 'bigint') int(v);
    else if (typeof v === 'string') str(v);
    else if (v instanceof Flt) { const b = new DataView(new ArrayBuffer(8)); b.setFloat64(0, v.x); out.push(0x47, ...new Uint8Array(b.buffer)); }
    else if (v instanceof Uint8Array) { out.push(0x42); u32(v.length); for (const x of v) out.push(x); }
    else if (v instanceof Raw) out.push(...v.bytes);
    else if (v instanceof Tup) {
      if (v.items.length === 0) out.push(0x29);
      else { out.push(0x28); v.items.forEach(put); out.push(0x74); }
    } else if (Array.isArray(v)) { out.push(0x5d, 0x28); v.forEach(put); out.push(0x65); }
    else if (v instanceof Glob) {
      const full = `${v.module}\n${v.name}\n`;
      const m = memo.get(full);
      if (m !== undefined) { out.push(0x68, m); return; }
      out.push(0x63, ...new TextEncoder().encode(full));
      memo.set(full, memo.size);
      out.push(0x71, memo.size - 1); // BINPUT, so later uses are BINGETs as in torch's files
    } else if (v instanceof Reduce) { put(v.fn); put(v.args); out.push(0x52); }
    else if (v instanceof Build) { put(v.obj); put(v.state); out.push(0x62); }
    else if (v instanceof OrderedFill) {
      put(v.base);
      if (v.entries.length) { out.push(0x28); for (const [k, x] of v.entries) { put(k); put(x); } out.push(0x75); }
    } else if (v instanceof TensorSpec) {
      const s = v.storage;
      const pid: PV[] = ['storage', glob('torch', s.typeName ?? STORAGE_NAME[s.dtype]), s.key, 'cpu', numelOf(s)];
      if (legacy) pid.push(null);
      const rebuild = new Reduce(glob('torch._utils', '_rebuild_tensor_v2'),
        tup(new PidMarker(tup(...pid)), v.offset, tup(...v.shape), tup(...v.stride), false, new Reduce(glob('collections', 'OrderedDict'), tup())));
      put(v.parameter ? new Reduce(glob('torch._utils', '_rebuild_parameter'), tup(rebuild, true, new Reduce(glob('collections', 'OrderedDict'), tup()))) : rebuild);
    } else if (v instanceof PidMarker) { put(v.pid); out.push(0x51); } // BINPERSID
    else {
      const entries = v instanceof Map ? [...v.entries()] : Object.entries(v);
      out.push(0x7d);
      if (entries.length) { out.push(0x28); for (const [k, x] of entries) { put(k); put(x); } out.push(0x75); }
    }
  };
  put(value);
  out.push(0x2e);
  return Uint8Array.from(out);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

function u64le(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
  return b;
}

export interface LegacyOptions {
  /** Storage keys as listed after the dict (default: every storage, in order). */
  keys?: string[];
  /** Element count written before a storage's bytes (default its numel). */
  count?: (s: Storage) => number;
  /** Write as a big-endian machine would (sys info little_endian False, every value byte-swapped). */
  bigEndian?: boolean;
}

/** The legacy torch.save stream. */
export function legacyCheckpoint(value: PV, storages: Storage[], o: LegacyOptions = {}): Uint8Array {
  const sys = { protocol_version: 1001, little_endian: !o.bigEndian, type_sizes: { short: 2, int: 4, long: 4 } };
  const parts = [pickle(0x1950a86a20f9469cfc6cn), pickle(1001), pickle(sys), pickle(value, true), pickle(o.keys ?? storages.map((s) => s.key))];
  for (const s of storages) {
    const count = u64le(o.count?.(s) ?? numelOf(s));
    parts.push(o.bigEndian ? count.reverse() : count, o.bigEndian ? swap(s.bytes, DT_SIZE[s.dtype]) : s.bytes);
  }
  return concat(parts);
}

function swap(b: Uint8Array, es: number): Uint8Array {
  const out = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i += es) for (let j = 0; j < es; j++) out[i + j] = b[i + es - 1 - j];
  return out;
}

export interface ZipOptions {
  archive?: string;
  deflate?: boolean;
  /** Storage keys to leave out of the archive. */
  omit?: string[];
  /** Replace a storage's bytes in the archive (e.g. a short one). */
  bytes?: (s: Storage) => Uint8Array;
}

/** The zip format of torch >= 1.6: <archive>/data.pkl, <archive>/byteorder, <archive>/data/<key>, <archive>/version. */
export function zipCheckpoint(value: PV, storages: Storage[], o: ZipOptions = {}): Uint8Array {
  const a = o.archive ?? 'archive';
  const files: [string, Uint8Array][] = [[`${a}/data.pkl`, pickle(value)], [`${a}/byteorder`, new TextEncoder().encode('little')]];
  for (const s of storages) if (!o.omit?.includes(s.key)) files.push([`${a}/data/${s.key}`, o.bytes?.(s) ?? s.bytes]);
  files.push([`${a}/version`, new TextEncoder().encode('3\n')]);
  return zip(files, o.deflate);
}

let crcTable: Uint32Array | undefined;
function crc32(b: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; crcTable[n] = c >>> 0; }
  }
  let c = 0xffffffff;
  for (const x of b) c = crcTable[(c ^ x) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A zip archive of the files, stored (or deflated), no zip64. */
export function zip(files: [string, Uint8Array][], deflate = false): Uint8Array {
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const [name, data] of files) {
    const nameBytes = new TextEncoder().encode(name);
    const body = deflate ? new Uint8Array(deflateRawSync(data)) : data;
    const crc = crc32(data);
    const lh = new DataView(new ArrayBuffer(30));
    lh.setUint32(0, 0x04034b50, true); lh.setUint16(4, 20, true); lh.setUint16(8, deflate ? 8 : 0, true);
    lh.setUint16(12, 0x21, true); lh.setUint32(14, crc, true); lh.setUint32(18, body.length, true); lh.setUint32(22, data.length, true);
    lh.setUint16(26, nameBytes.length, true);
    const ch = new DataView(new ArrayBuffer(46));
    ch.setUint32(0, 0x02014b50, true); ch.setUint16(4, 20, true); ch.setUint16(6, 20, true); ch.setUint16(10, deflate ? 8 : 0, true);
    ch.setUint16(14, 0x21, true); ch.setUint32(16, crc, true); ch.setUint32(20, body.length, true); ch.setUint32(24, data.length, true);
    ch.setUint16(28, nameBytes.length, true); ch.setUint32(42, offset, true);
    locals.push(new Uint8Array(lh.buffer), nameBytes, body);
    centrals.push(new Uint8Array(ch.buffer), nameBytes);
    offset += 30 + nameBytes.length + body.length;
  }
  const cd = concat(centrals);
  const e = new DataView(new ArrayBuffer(22));
  e.setUint32(0, 0x06054b50, true); e.setUint16(8, files.length, true); e.setUint16(10, files.length, true);
  e.setUint32(12, cd.length, true); e.setUint32(16, offset, true);
  return concat([...locals, cd, new Uint8Array(e.buffer)]);
}
