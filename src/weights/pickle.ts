// A restricted unpickler for PyTorch state dicts: it builds plain data (numbers, strings, tuples, lists, dicts) and
// knows a short allow-list of globals as inert markers. Nothing is ever called or imported: "calling"
// collections.OrderedDict makes an empty PyDict, "calling" torch._utils._rebuild_tensor_v2 records a TensorRef. Any
// other global, and opcodes that only serve pickled objects (INST, OBJ, NEWOBJ, EXT*), are refused. Environment-neutral.
import { PainterlyError } from '../gpu/device.ts';

export class PyTuple { constructor(readonly items: PyValue[]) {} }
export class PyDict {
  readonly map = new Map<PyKey, PyValue>();
  constructor(readonly ordered = false) {}
}
/** A global the allow-list knows (a class or function reference, never resolved to code). */
export class PyGlobal { constructor(readonly module: string, readonly name: string) {} get full() { return `${this.module}.${this.name}`; } }

/** A storage as persistent ids name it: ('storage', storage_type, key, location, numel[, view_metadata]). */
export interface StorageRef {
  kind: 'storage';
  dtype: PthDtype;
  key: string;
  location: string;
  /** Elements in the (root) storage. */
  numel: number;
  /** Legacy storage views: element offset and length of the view inside the root storage. */
  view?: { offset: number; numel: number };
}

/** A tensor as _rebuild_tensor_v2 describes it: a view (offset, size, stride, in elements) of a storage. */
export class TensorRef {
  constructor(readonly storage: StorageRef, readonly offset: number, readonly shape: number[], readonly stride: number[]) {}
}

export type PyKey = string | number | bigint | boolean | null | PyTuple;
export type PyValue = PyKey | Uint8Array | PyValue[] | PyDict | PyGlobal | TensorRef | StorageRef;

export type PthDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const DTYPE_SIZE: Record<PthDtype, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

/** torch.<X>Storage (legacy typed storages, also the zip format's persistent ids) and torch.<dtype> names. */
const STORAGE_DTYPES: Record<string, PthDtype> = {
  DoubleStorage: 'F64', FloatStorage: 'F32', HalfStorage: 'F16', BFloat16Storage: 'BF16', LongStorage: 'I64',
  IntStorage: 'I32', ShortStorage: 'I16', CharStorage: 'I8', ByteStorage: 'U8', BoolStorage: 'BOOL',
  float64: 'F64', double: 'F64', float32: 'F32', float: 'F32', float16: 'F16', half: 'F16', bfloat16: 'BF16',
  int64: 'I64', long: 'I64', int32: 'I32', int: 'I32', int16: 'I16', short: 'I16', int8: 'I8', uint8: 'U8', bool: 'BOOL',
};

const ALLOWED = new Set([
  'collections.OrderedDict', 'torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_parameter',
  '_codecs.encode', // protocol 2 pickles bytes as _codecs.encode(str, 'latin1')
  ...Object.keys(STORAGE_DTYPES).map((s) => `torch.${s}`),
]);

export interface UnpickleOptions {
  /** Names the file in errors. */
  file: string;
  /** Maps a persistent id (BINPERSID) to a value; the default refuses them. */
  persistentLoad?: (pid: PyValue) => PyValue;
}

/** Thrown when the bytes end before STOP: the caller may read more and try again. */
export class PickleTruncated extends PainterlyError {}

const MARK = Symbol('mark');
type StackItem = PyValue | typeof MARK;

/** Parses one pickle starting at `start`; returns its value and the offset just past its STOP opcode. */
export function unpickle(bytes: Uint8Array, start: number, opts: UnpickleOptions): { value: PyValue; end: number } {
  const file = opts.file;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  let p = start;
  const stack: StackItem[] = [];
  const memo = new Map<number, PyValue>();
  const fail = (what: string): never => { throw new PainterlyError(`${file}: bad pickle at byte ${p}: ${what}`); };
  const need = (n: number) => {
    if (p + n > bytes.length) throw new PickleTruncated(`${file}: truncated: a pickle runs past the end of the data (byte ${bytes.length})`);
  };
  const u8 = () => { need(1); return bytes[p++]; };
  const u16 = () => { need(2); const v = dv.getUint16(p, true); p += 2; return v; };
  const u32 = () => { need(4); const v = dv.getUint32(p, true); p += 4; return v; };
  const i32 = () => { need(4); const v = dv.getInt32(p, true); p += 4; return v; };
  const u64 = () => {
    need(8);
    const v = dv.getUint32(p, true) + dv.getUint32(p + 4, true) * 2 ** 32;
    if (!Number.isSafeInteger(v)) fail('an 8-byte length is too large');
    p += 8; return v;
  };
  const take = (n: number) => { need(n); const b = bytes.subarray(p, p + n); p += n; return b; };
  const utf8 = new TextDecoder('utf-8');
  const latin1 = (b: Uint8Array) => {
    let s = '';
    for (let i = 0; i < b.length; i += 4096) s += String.fromCharCode(...b.subarray(i, i + 4096));
    return s;
  };
  const line = () => {
    const e = bytes.indexOf(0x0a, p);
    if (e < 0) need(bytes.length - p + 1);
    const s = latin1(bytes.subarray(p, e));
    p = e + 1;
    return s;
  };
  const pop = (): PyValue => {
    const v = stack.pop();
    if (v === undefined || v === MARK) fail('stack underflow');
    return v as PyValue;
  };
  const top = (): PyValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) fail('stack underflow');
    return v as PyValue;
  };
  const popMark = (): PyValue[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) fail('no MARK on the stack');
    const items = stack.splice(i) as PyValue[];
    items.shift();
    return items;
  };
  const setItems = (d: PyValue, kv: PyValue[]) => {
    if (!(d instanceof PyDict)) fail('SETITEM(S) on a non-dict');
    for (let i = 0; i + 1 < kv.length; i += 2) (d as PyDict).map.set(key(kv[i]), kv[i + 1]);
  };
  const key = (k: PyValue): PyKey => {
    if (k === null || ['string', 'number', 'bigint', 'boolean'].includes(typeof k) || k instanceof PyTuple) return k as PyKey;
    return fail('a dict key that is not a string, number or tuple');
  };
  const global = (module: string, name: string): PyGlobal => {
    const full = `${module}.${name}`;
    if (!ALLOWED.has(full)) {
      throw new PainterlyError(`${file}: refusing to unpickle ${full}: only state dicts (tensors in dicts of plain values) are read, ` +
        `nothing is executed (a whole pickled model or optimizer? save model.state_dict() instead)`);
    }
    return new PyGlobal(module, name);
  };
  const call = (fn: PyValue, args: PyValue): PyValue => {
    if (!(fn instanceof PyGlobal)) return fail('REDUCE of something that is not a known global');
    if (!(args instanceof PyTuple)) return fail(`REDUCE of ${fn.full} without an argument tuple`);
    const a = args.items;
    switch (fn.full) {
      case 'collections.OrderedDict':
        if (a.length !== 0) fail('collections.OrderedDict called with arguments');
        return new PyDict(true);
      case 'torch._utils._rebuild_tensor_v2': {
        // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
        const [storage, offset, size, stride] = a;
        if (a.length < 4 || !isStorage(storage)) fail('_rebuild_tensor_v2 without a storage');
        const ints = (v: PyValue, what: string) => {
          if (!(v instanceof PyTuple) || !v.items.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
            fail(`_rebuild_tensor_v2: ${what} must be a tuple of non-negative integers`);
          }
          return (v as PyTuple).items as number[];
        };
        if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) fail('_rebuild_tensor_v2: bad storage offset');
        const shape = ints(size, 'size');
        const strides = ints(stride, 'stride');
        if (shape.length !== strides.length) fail(`_rebuild_tensor_v2: size has ${shape.length} dimensions, stride ${strides.length}`);
        return new TensorRef(storage as StorageRef, offset as number, shape, strides);
      }
      case 'torch._utils._rebuild_parameter': // (data, requires_grad, backward_hooks)
        if (!(a[0] instanceof TensorRef)) fail('_rebuild_parameter without a tensor');
        return a[0];
      case '_codecs.encode':
        if (typeof a[0] !== 'string' || a[1] !== 'latin1') fail('_codecs.encode: expected (str, "latin1")');
        return Uint8Array.from(a[0] as string, (c) => c.charCodeAt(0) & 0xff);
      default:
        return fail(`${fn.full} cannot be called`);
    }
  };

  for (;;) {
    const at = p;
    const op = u8();
    switch (op) {
      case 0x80: { const v = u8(); if (v > 5) fail(`unsupported pickle protocol ${v}`); break; } // PROTO
      case 0x95: u64(); break; // FRAME (protocol 4): a hint only
      case 0x2e: { // STOP
        const value = pop();
        return { value, end: p };
      }
      case 0x28: stack.push(MARK); break;
      case 0x7d: stack.push(new PyDict()); break; // EMPTY_DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push(new PyTuple([])); break; // EMPTY_TUPLE
      case 0x74: stack.push(new PyTuple(popMark())); break; // TUPLE
      case 0x85: stack.push(new PyTuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push(new PyTuple([a, b])); break; }
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push(new PyTuple([a, b, c])); break; }
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x64: { const d = new PyDict(); setItems(d, popMark()); stack.push(d); break; } // DICT
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break;
      case 0x89: stack.push(false); break;
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x8a: { // LONG1: little-endian two's complement
        const b = take(u8());
        let v = 0n;
        for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
        if (b.length > 0 && b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: need(8); stack.push(dv.getFloat64(p, false)); p += 8; break; // BINFLOAT (big-endian)
      case 0x58: stack.push(utf8.decode(take(u32()))); break; // BINUNICODE
      case 0x8c: stack.push(utf8.decode(take(u8()))); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(utf8.decode(take(u64()))); break; // BINUNICODE8
      case 0x54: stack.push(latin1(take(u32()))); break; // BINSTRING (py2 str)
      case 0x55: stack.push(latin1(take(u8()))); break; // SHORT_BINSTRING
      case 0x42: stack.push(take(u32()).slice()); break; // BINBYTES
      case 0x43: stack.push(take(u8()).slice()); break; // SHORT_BINBYTES
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: case 0x6a: { // BINGET, LONG_BINGET
        const i = op === 0x68 ? u8() : u32();
        if (!memo.has(i)) fail(`memo ${i} is not set`);
        stack.push(memo.get(i)!);
        break;
      }
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const kv = popMark(); setItems(top(), kv); break; } // SETITEMS
      case 0x61: { const v = pop(); const l = top(); if (!Array.isArray(l)) fail('APPEND to a non-list'); (l as PyValue[]).push(v); break; }
      case 0x65: { const vs = popMark(); const l = top(); if (!Array.isArray(l)) fail('APPENDS to a non-list'); (l as PyValue[]).push(...vs); break; }
      case 0x63: { const module = line(); const name = line(); stack.push(global(module, name)); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop(); const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL of non-strings');
        stack.push(global(module as string, name as string));
        break;
      }
      case 0x52: { const args = pop(); const fn = pop(); stack.push(call(fn, args)); break; } // REDUCE
      case 0x62: { // BUILD: only on dicts (OrderedDict carries _metadata this way); the state is not needed
        const state = pop();
        const obj = top();
        if (!(obj instanceof PyDict)) fail(`BUILD on ${describe(obj)} (only dicts are built)`);
        void state;
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) fail('a persistent id where none was expected');
        stack.push(opts.persistentLoad!(pid));
        break;
      }
      default: {
        p = at;
        const name = OPCODE_NAMES[op];
        fail(name ? `opcode ${name} is not allowed in a state dict` : `unknown opcode 0x${op.toString(16).padStart(2, '0')}` +
          (at === start ? ' (not a pickle)' : ''));
      }
    }
  }
}

const OPCODE_NAMES: Record<number, string> = {
  0x69: 'INST', 0x6f: 'OBJ', 0x81: 'NEWOBJ', 0x92: 'NEWOBJ_EX', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4',
  0x50: 'PERSID', 0x49: 'INT', 0x4c: 'LONG', 0x46: 'FLOAT', 0x53: 'STRING', 0x56: 'UNICODE', 0x67: 'GET', 0x70: 'PUT',
  0x8b: 'LONG4', 0x8e: 'BINBYTES8', 0x8f: 'EMPTY_SET', 0x90: 'ADDITEMS', 0x91: 'FROZENSET', 0x96: 'BYTEARRAY8',
  0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER', 0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP',
};

function isStorage(v: PyValue | undefined): v is StorageRef {
  return typeof v === 'object' && v !== null && (v as StorageRef).kind === 'storage';
}

function describe(v: PyValue): string {
  if (v instanceof PyGlobal) return v.full;
  if (v instanceof TensorRef) return 'a tensor';
  if (Array.isArray(v)) return 'a list';
  if (v instanceof PyTuple) return 'a tuple';
  return typeof v;
}

/**
 * The persistent id of a storage, in both formats: ('storage', storage_type, key, location, numel) in zip files,
 * plus view_metadata (None, or (view_key, offset, numel)) in legacy files. storage_type is torch.<X>Storage or, in some
 * writers, a torch dtype.
 */
export function parseStoragePid(pid: PyValue, file: string): StorageRef {
  const bad = (what: string): never => { throw new PainterlyError(`${file}: bad storage reference: ${what}`); };
  if (!(pid instanceof PyTuple) || pid.items[0] !== 'storage') return bad(`expected ('storage', type, key, location, numel), found ${describe(pid)}`);
  const [, type, key, location, numel, view] = pid.items;
  if (!(type instanceof PyGlobal) || type.module !== 'torch' || !(type.name in STORAGE_DTYPES)) {
    return bad(`unknown storage type ${type instanceof PyGlobal ? type.full : describe(type as PyValue)}`);
  }
  if (typeof key !== 'string' && typeof key !== 'number') bad('the key is not a string');
  if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) bad(`storage ${String(key)}: bad element count`);
  const ref: StorageRef = { kind: 'storage', dtype: STORAGE_DTYPES[type.name], key: String(key), location: String(location), numel: numel as number };
  if (view instanceof PyTuple) {
    const [, off, n] = view.items;
    if (typeof off !== 'number' || typeof n !== 'number' || off < 0 || n < 0 || off + n > ref.numel) bad(`storage ${ref.key}: bad view ${String(off)}+${String(n)}`);
    ref.view = { offset: off as number, numel: n as number };
  } else if (view !== undefined && view !== null) bad(`storage ${ref.key}: bad view metadata`);
  return ref;
}
