import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openFileSource } from '../../src/weights/cache-node.ts';
import { detectWeightsFormat, readPth, readPthIndex, readPthTensor, SNIFF_BYTES } from '../../src/weights/pth.ts';
import { bytesSource, f32Bytes, writeSafetensors } from '../../src/weights/safetensors.ts';
import { nextSeed, rng } from '../helpers.ts';
import {
  DT_SIZE, flt, glob, legacyCheckpoint, odict, pickle, Raw, Reduce, tensor, tup, zip, zipCheckpoint,
  type Dtype, type PV, type Storage,
} from './pth-writer.ts';
import { haveSharedModels, readmeSha256, WCT_DIR } from './shared-models.ts';
import { randomBytes, rejects } from './weights-helpers.ts';

const test = suite('pth');

// ---- independent decoding of the raw bytes (textbook formulas) ----
function half(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}
function values(s: Storage): number[] {
  const dv = new DataView(s.bytes.buffer, s.bytes.byteOffset, s.bytes.length);
  const n = s.bytes.length / DT_SIZE[s.dtype];
  return Array.from({ length: n }, (_, i) => {
    switch (s.dtype) {
      case 'F32': return dv.getFloat32(4 * i, true);
      case 'F16': return half(dv.getUint16(2 * i, true));
      case 'BF16': { const b = new DataView(new ArrayBuffer(4)); b.setUint16(0, dv.getUint16(2 * i, true)); return b.getFloat32(0); }
      case 'F64': return Math.fround(dv.getFloat64(8 * i, true));
      case 'I64': return Number(dv.getBigInt64(8 * i, true));
    }
  });
}
/** Elements of a strided view, row-major. */
function view(all: number[], shape: number[], stride: number[], offset: number): number[] {
  const out: number[] = [];
  const rec = (d: number, at: number) => {
    if (d === shape.length) { out.push(all[at]); return; }
    for (let i = 0; i < shape[d]; i++) rec(d + 1, at + i * stride[d]);
  };
  rec(0, offset);
  return out;
}

let keyNo = 0;
function storage(dtype: Dtype, n: number, seed = nextSeed()): Storage {
  let bytes: Uint8Array;
  if (dtype === 'F64') {
    const r = rng(seed);
    bytes = new Uint8Array(8 * n);
    for (let i = 0; i < n; i++) new DataView(bytes.buffer).setFloat64(8 * i, (r() - 0.5) * 8, true);
  } else if (dtype === 'I64') {
    bytes = new Uint8Array(8 * n);
    for (let i = 0; i < n; i++) new DataView(bytes.buffer).setBigInt64(8 * i, BigInt(i * 1000 - 7), true);
  } else bytes = randomBytes(dtype, n, seed);
  return { key: String(++keyNo), dtype, bytes };
}

interface Expect { name: string; shape: number[]; data: number[] }

/** A checkpoint like a training script saves: {"epoch", "lr", "model": OrderedDict, "nested": {...}, "names": [...]}. */
function sample() {
  const w = storage('F32', 5 * 3 * 3 * 3);
  const h = storage('F16', 7 * 4);
  const bf = storage('BF16', 11);
  const d = storage('F64', 6);
  const big = storage('F32', 6 * 10); // shared by an offset view, a transpose and a column
  const steps = storage('I64', 1);
  const storages = [w, h, bf, d, big, steps];
  const specs: [string, Storage, number[], { offset?: number; stride?: number[]; parameter?: boolean }][] = [
    ['model.conv1.weight', w, [5, 3, 3, 3], { parameter: true }],
    ['model.half.weight', h, [7, 4], {}],
    ['model.bf.bias', bf, [11], {}],
    ['model.dbl', d, [3, 2], {}],
    ['model.bn.num_batches_tracked', steps, [], {}],
    ['model.rows', big, [2, 10], { offset: 20 }],
    ['model.transposed', big, [10, 6], { stride: [1, 10] }],
    ['model.column', big, [6], { offset: 3, stride: [10] }],
    ['nested.deep.w', big, [6, 10], {}],
  ];
  const t = (i: number) => tensor(specs[i][1], specs[i][2], specs[i][3]);
  const value: PV = {
    epoch: 20, lr: flt(0.001), big: 2 ** 40,
    model: odict(specs.slice(0, 8).map((s, i) => [s[0].slice(6), t(i)])),
    nested: { deep: { w: t(8), note: 'text' } },
    names: ['a', 'b'],
  };
  const expect: Expect[] = specs.map(([name, s, shape, o]) => {
    const stride = o.stride ?? shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
    return { name, shape, data: view(values(s), shape, stride, o.offset ?? 0) };
  });
  return { value, storages, expect };
}

async function same(src: ReturnType<typeof bytesSource>, expect: Expect[]) {
  const got = await readPth(src);
  assert.equal([...got.keys()], expect.map((e) => e.name));
  for (const e of expect) {
    const g = got.get(e.name)!;
    assert.equal(g.shape, e.shape, e.name);
    assert.ok(g.data instanceof Float32Array);
    assert.equal(Array.from(g.data), e.data, e.name);
  }
}

test('zip format: F32/F16/BF16/F64/I64, nested dicts flattened, non-tensors skipped, offset and strided views', async () => {
  const { value, storages, expect } = sample();
  const file = zipCheckpoint(value, storages, { archive: 'ckpt' });
  assert.is(detectWeightsFormat(file.subarray(0, SNIFF_BYTES)), 'pth-zip');
  const src = bytesSource('synth.pth', file);
  await same(src, expect);
  const idx = await readPthIndex(src);
  assert.is(idx.format, 'pth-zip');
  assert.is(idx.tensors.get('model.half.weight')!.dtype, 'F16');
  assert.equal(idx.tensors.get('model.transposed')!.stride, [1, 10]);
  // Lazy reads: one tensor alone.
  assert.equal(Array.from(await readPthTensor(src, idx, 'model.column')), expect.find((e) => e.name === 'model.column')!.data);
});

test('zip format: deflated entries, and storage types given as dtypes (torch.float32)', async () => {
  const { value, storages, expect } = sample();
  await same(bytesSource('deflated.pth', zipCheckpoint(value, storages, { deflate: true })), expect);
  const s = storage('F32', 12);
  const f = zipCheckpoint({ w: tensor({ ...s, typeName: 'float32' }, [3, 4]) }, [s]);
  await same(bytesSource('dtype.pth', f), [{ name: 'w', shape: [3, 4], data: values(s) }]);
});

test('legacy format: the same checkpoint, little- and big-endian', async () => {
  const { value, storages, expect } = sample();
  const file = legacyCheckpoint(value, storages);
  assert.is(detectWeightsFormat(file.subarray(0, SNIFF_BYTES)), 'pth-legacy');
  await same(bytesSource('legacy.pth', file), expect);
  assert.is((await readPthIndex(bytesSource('legacy.pth', file))).format, 'pth-legacy');
  await same(bytesSource('legacy-be.pth', legacyCheckpoint(value, storages, { bigEndian: true })), expect);
});

test('legacy format: a pickle longer than the first read (64 KiB) is read by growing the prefix', async () => {
  const s = storage('F32', 4);
  const value: PV = { pad: 'x'.repeat(150_000), w: tensor(s, [2, 2]) };
  await same(bytesSource('long.pth', legacyCheckpoint(value, [s])), [{ name: 'w', shape: [2, 2], data: values(s) }]);
});

test('detectWeightsFormat tells safetensors, zip, legacy and other bytes apart', () => {
  const st = writeSafetensors([{ name: 'w', dtype: 'F32', shape: [1], data: f32Bytes(new Float32Array([1])) }]);
  assert.is(detectWeightsFormat(st.subarray(0, SNIFF_BYTES)), 'safetensors');
  assert.is(detectWeightsFormat(Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 13, 10, 26, 10, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52])), 'unknown');
  assert.is(detectWeightsFormat(pickle({ a: 1 })), 'unknown'); // a pickle, but not torch.save's magic number
  assert.is(detectWeightsFormat(new Uint8Array(0)), 'unknown');
  const r = rng(nextSeed());
  assert.is(detectWeightsFormat(Uint8Array.from({ length: 16 }, () => 0x90 + Math.floor(r() * 16))), 'unknown');
});

test('not a checkpoint: random bytes, a PNG, an empty file, a safetensors file, a zip without data.pkl', async () => {
  const r = rng(nextSeed());
  const random = Uint8Array.from({ length: 300 }, () => Math.floor(r() * 256));
  random[0] = 0x42;
  await rejects(readPth(bytesSource('noise.bin', random)), /^noise\.bin: not a PyTorch checkpoint/, /found bytes 42 /);
  const png = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 13, 10, 26, 10, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52, 0, 0]);
  await rejects(readPth(bytesSource('photo.png', png)), /^photo\.png: not a PyTorch checkpoint/, /PNG image/);
  await rejects(readPth(bytesSource('empty.pth', new Uint8Array(0))), /^empty\.pth: not a PyTorch checkpoint/, /empty file/);
  const st = writeSafetensors([{ name: 'w', dtype: 'F32', shape: [1], data: f32Bytes(new Float32Array([1])) }]);
  await rejects(readPth(bytesSource('w.safetensors', st)), /not a PyTorch checkpoint/);
  await rejects(readPth(bytesSource('other.zip', zip([['readme.txt', new Uint8Array(3)]]))), /^other\.zip: a zip archive but not a PyTorch checkpoint/, /data\.pkl/);
});

test('truncated files (both formats, cut anywhere) give a one-line error naming the file', async () => {
  const { value, storages } = sample();
  for (const [name, file] of [['cut.zip.pth', zipCheckpoint(value, storages)], ['cut.legacy.pth', legacyCheckpoint(value, storages)]] as const) {
    const r = rng(nextSeed());
    const cuts = [16, file.length - 1, file.length - 8, ...Array.from({ length: 12 }, () => 16 + Math.floor(r() * (file.length - 16)))];
    for (const n of cuts) {
      await rejects(readPth(bytesSource(name, file.subarray(0, n))), new RegExp(`^${name.replace(/\./g, '\\.')}: `), /truncated/);
    }
  }
});

test('a pickle asking for anything outside the allow-list is refused, naming the class; nothing runs', async () => {
  const s = storage('F32', 4);
  const cases: [PV, RegExp][] = [
    [{ x: new Reduce(glob('os', 'system'), tup('echo hi')) }, /refusing to unpickle os\.system/],
    [{ model: new Reduce(glob('__main__', 'Net'), tup()) }, /refusing to unpickle __main__\.Net/],
    [{ conv: new Reduce(glob('torch.nn.modules.conv', 'Conv2d'), tup()) }, /refusing to unpickle torch\.nn\.modules\.conv\.Conv2d/],
    [{ c: new Reduce(glob('torch', 'ComplexFloatStorage'), tup()) }, /refusing to unpickle torch\.ComplexFloatStorage/],
    [{ x: new Raw([0x69, ...new TextEncoder().encode('builtins\neval\n')]) }, /opcode INST is not allowed/], // INST
    [{ x: new Raw([0x28, 0x6f]) }, /opcode OBJ is not allowed/],
    [{ w: new Reduce(glob('collections', 'OrderedDict'), tup(1)) }, /OrderedDict called with arguments/],
    [{ w: new Raw([0x4b, 1, 0x7d, 0x62]) }, /BUILD on number/],
    [{ w: new Reduce(glob('torch._utils', '_rebuild_tensor_v2'), tup(1, 0, tup(2), tup(1), false, null)) }, /without a storage/],
  ];
  for (const [value, re] of cases) {
    for (const [fmt, f] of [['zip', zipCheckpoint(value, [s])], ['legacy', legacyCheckpoint(value, [s], { keys: [] })]] as const) {
      await rejects(readPth(bytesSource(`evil.${fmt}.pth`, f)), new RegExp(`^evil\\.${fmt}\\.pth: `), re);
    }
  }
});

test('storages: missing, too short; tensors that do not fit their storage', async () => {
  const s = storage('F32', 12);
  const ok = { w: tensor(s, [3, 4]) };
  // Missing.
  await rejects(readPth(bytesSource('m.pth', zipCheckpoint(ok, [s], { omit: [s.key] }))), /^m\.pth: storage \d+ is missing/, /archive\/data\//);
  await rejects(readPth(bytesSource('m.pth', legacyCheckpoint(ok, [s], { keys: [] }))), /^m\.pth: storage \d+ is missing/);
  // Too short.
  await rejects(readPth(bytesSource('s.pth', zipCheckpoint(ok, [s], { bytes: (x) => x.bytes.subarray(0, 40) }))), /^s\.pth: storage \d+ is too short/, /48 bytes/, /has 40/);
  await rejects(readPth(bytesSource('s.pth', legacyCheckpoint(ok, [s], { count: () => 10 }))), /^s\.pth: storage \d+ is too short/, /10 elements/, /expects 12/);
  // Shape, offset or stride past the storage's end.
  for (const t of [tensor(s, [4, 4]), tensor(s, [3, 4], { offset: 1 }), tensor(s, [3, 4], { stride: [5, 1] }), tensor(s, [12], { stride: [2] })]) {
    for (const f of [zipCheckpoint({ w: t }, [s]), legacyCheckpoint({ w: t }, [s])]) {
      await rejects(readPth(bytesSource('fit.pth', f)), /^fit\.pth: tensor w F32\[/, /needs \d+ elements, its storage \d+ has 12/);
    }
  }
  // A state dict with no tensors, and a file that is a single tensor.
  await rejects(readPth(bytesSource('n.pth', zipCheckpoint({ epoch: 3 }, []))), /no tensors found/);
  await rejects(readPth(bytesSource('t.pth', zipCheckpoint(tensor(s, [12]), [s]))), /expected a dict of tensors/, /single tensor/);
});

// ---- the real files ----
const ENC = 'wct_se_16x_new';
const DEC = 'wct_se_16x_new_sd';
const LEVELS: [number, string, string][] = [
  [1, '20191110-133713_E20.pth', '20191111-091942_E20.pth'],
  [2, '20191110-132713_E20.pth', '20191111-091932_E20.pth'],
  [3, '20191110-132705_E20.pth', '20191111-091929_E20.pth'],
  [4, '20191110-132643_E20.pth', '20191111-092553_E20.pth'],
  [5, '20191109-211322_E20.pth', '20191110-204615_E20.pth'],
];
/** VGG-19's convs up to reluK_1 with the compressed channels (block 1 of the level-1 encoder is 24 wide, not 16). */
function convs(level: number): [string, number, number][] {
  const names = ['conv11', 'conv12', 'conv21', 'conv22', 'conv31', 'conv32', 'conv33', 'conv34', 'conv41', 'conv42', 'conv43', 'conv44', 'conv51'];
  const width = [16, 32, 64, 128, 128];
  if (level === 1) return [['conv11', 3, 24]];
  const out: [string, number, number][] = [];
  let cin = 3;
  for (const n of names.slice(0, names.indexOf(`conv${level}1`) + 1)) {
    const cout = width[Number(n[4]) - 1];
    out.push([n, cin, cout]);
    cin = cout;
  }
  return out;
}

function expectedEncoder(level: number): [string, number[]][] {
  const c = convs(level);
  const vgg = [64, 128, 256, 512, 512];
  return [
    ['conv0.weight', [3, 3, 1, 1]], ['conv0.bias', [3]],
    ...c.flatMap(([n, cin, cout]): [string, number[]][] => [[`${n}.weight`, [cout, cin, 3, 3]], [`${n}.bias`, [cout]]]),
    ...c.filter(([n]) => n.endsWith('1')).flatMap(([n, , cout]): [string, number[]][] =>
      [[`${n}_aux.weight`, [vgg[Number(n[4]) - 1], cout, 1, 1]], [`${n}_aux.bias`, [vgg[Number(n[4]) - 1]]]]),
  ].map(([n, s]) => [`model.${n}`, s as number[]]);
}
function expectedDecoder(level: number): [string, number[]][] {
  return convs(level).reverse().flatMap(([n, cin, cout]): [string, number[]][] =>
    [[`model.${n}.weight`, [cin, cout, 3, 3]], [`model.${n}.bias`, [cin]]]);
}

test('the real wct-16x files (legacy format): sha256 as the README lists, key names and shapes of every level', async () => {
  if (!haveSharedModels()) return;
  const sums = readmeSha256();
  assert.is(sums.size, 10, 'the README lists ten files');
  for (const dir of [ENC, DEC]) assert.equal(readdirSync(join(WCT_DIR, dir)).sort(), LEVELS.map((l) => (dir === ENC ? l[1] : l[2])).sort());
  for (const [level, enc, dec] of LEVELS) {
    for (const [dir, f, want] of [[ENC, enc, expectedEncoder(level)], [DEC, dec, expectedDecoder(level)]] as const) {
      const path = join(WCT_DIR, dir, f);
      assert.is(createHash('sha256').update(readFileSync(path)).digest('hex'), sums.get(`${dir}/${f}`), `sha256 of ${dir}/${f}`);
      const src = await openFileSource(path);
      try {
        assert.is(detectWeightsFormat(await src.read(0, SNIFF_BYTES)), 'pth-legacy');
        const got = await readPth(src);
        assert.equal([...got.values()].map((t) => [t.name, t.shape]), want, `${dir}/${f}`);
        for (const t of got.values()) {
          assert.ok(t.data.every(Number.isFinite), `${t.name} finite`);
          assert.ok(t.data.some((x) => x !== 0), `${t.name} not all zero`);
        }
      } finally {
        await src.close();
      }
    }
  }
});

test('real values: decoder level 1 conv11.weight starts as torch.load reads it', async () => {
  if (!haveSharedModels()) return;
  const src = await openFileSource(join(WCT_DIR, DEC, '20191111-091942_E20.pth'));
  try {
    const w = (await readPth(src)).get('model.conv11.weight')!;
    // torch 1.13: torch.load(f)['model']['conv11.weight'].flatten()[:3]
    assert.equal(Array.from(w.data.subarray(0, 3)), [-0.0013618608936667442, 0.002106467727571726, -0.002096205949783325].map(Math.fround));
    assert.is(w.data.length, 3 * 24 * 9);
  } finally {
    await src.close();
  }
});

test.run();
