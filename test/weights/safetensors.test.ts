import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  bytesSource, decodeTensor, f32Bytes, readHeader, readTensor, writeSafetensors, type RawTensor,
} from '../../src/weights/safetensors.ts';
import { nextSeed, randArray, rng } from '../helpers.ts';
import { rejects } from './weights-helpers.ts';

const test = suite('safetensors');

function u16Bytes(a: Uint16Array): Uint8Array {
  const out = new Uint8Array(a.length * 2);
  const dv = new DataView(out.buffer);
  a.forEach((v, i) => dv.setUint16(2 * i, v, true));
  return out;
}

/** Independent float16 decoding by the textbook formula. */
function half(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * Math.pow(2, -24);
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * Math.pow(2, e - 15);
}

function bf16(h: number): number {
  const dv = new DataView(new ArrayBuffer(4));
  dv.setUint16(0, h); // big-endian: the high half
  return dv.getFloat32(0);
}

function randomU16(n: number, seed: number): Uint16Array {
  const r = rng(seed);
  return Uint16Array.from({ length: n }, () => Math.floor(r() * 65536));
}

test('F32 tensors round-trip exactly, odd shapes, 8-byte aligned data', async () => {
  const shapes = [[1], [3, 5], [7, 3, 3, 3], [0, 4], [], [129, 65]];
  const tensors: RawTensor[] = [];
  const values: Float64Array[] = [];
  shapes.forEach((shape, i) => {
    const v = randArray(shape.reduce((a, b) => a * b, 1), nextSeed(), -100, 100);
    values.push(v);
    tensors.push({ name: `t${i}.weight`, dtype: 'F32', shape, data: f32Bytes(Float32Array.from(v)) });
  });
  const file = writeSafetensors(tensors, { note: 'x'.repeat(nextSeed() % 13) });
  const src = bytesSource('mem.safetensors', file);
  const h = await readHeader(src);
  assert.is(h.dataStart % 8, 0, 'aligned');
  assert.is(h.expectedSize, file.length);
  assert.match(h.metadata.note, /^x*$/);
  for (let i = 0; i < shapes.length; i++) {
    const got = await readTensor(src, h, `t${i}.weight`);
    assert.equal(h.tensors.get(`t${i}.weight`)!.shape, shapes[i]);
    assert.equal(Array.from(got), Array.from(values[i]), `t${i}`);
  }
});

test('F16 and BF16 decode every bit pattern class exactly (subnormals, signed zero, max, inf, NaN)', async () => {
  const special = [0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x0400, 0x3c00, 0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7e00, 0x3555];
  const bits = new Uint16Array([...special, ...randomU16(4099, nextSeed())]);
  const file = writeSafetensors([
    { name: 'h', dtype: 'F16', shape: [bits.length], data: u16Bytes(bits) },
    { name: 'b', dtype: 'BF16', shape: [bits.length], data: u16Bytes(bits) },
  ]);
  const src = bytesSource('mem', file);
  const h = await readHeader(src);
  const gh = await readTensor(src, h, 'h');
  const gb = await readTensor(src, h, 'b');
  for (let i = 0; i < bits.length; i++) {
    assert.ok(Object.is(gh[i], half(bits[i])) || (Number.isNaN(gh[i]) && Number.isNaN(half(bits[i]))),
      `F16 0x${bits[i].toString(16)}: got ${gh[i]}, expected ${half(bits[i])}`);
    assert.ok(Object.is(gb[i], bf16(bits[i])) || (Number.isNaN(gb[i]) && Number.isNaN(bf16(bits[i]))),
      `BF16 0x${bits[i].toString(16)}: got ${gb[i]}, expected ${bf16(bits[i])}`);
  }
});

test('other dtypes may sit in a file but are refused when read', async () => {
  const file = writeSafetensors([
    { name: 'steps', dtype: 'I64', shape: [1], data: new Uint8Array(8) },
    { name: 'w', dtype: 'F32', shape: [2], data: f32Bytes(new Float32Array([1, 2])) },
  ]);
  const src = bytesSource('mixed.safetensors', file);
  const h = await readHeader(src);
  assert.equal(Array.from(await readTensor(src, h, 'w')), [1, 2]);
  await rejects(readTensor(src, h, 'steps'), /mixed\.safetensors/, /steps/, /I64/, /F32, F16, BF16/);
  await rejects(readTensor(src, h, 'nope'), /nope is missing/);
  assert.throws(() => decodeTensor(h.tensors.get('w')!, new Uint8Array(4), 'f'), /expected 8 bytes/);
});

function withHeader(json: string, data = new Uint8Array(0), declared?: number): Uint8Array {
  const j = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + j.length + data.length);
  new DataView(out.buffer).setUint32(0, declared ?? j.length, true);
  out.set(j, 8);
  out.set(data, 8 + j.length);
  return out;
}

test('bad headers and truncated files give one-line errors naming the file and what was expected', async () => {
  const good = writeSafetensors([{ name: 'w', dtype: 'F32', shape: [4, 3], data: f32Bytes(new Float32Array(12)) }]);
  const cases: [string, Uint8Array, RegExp[]][] = [
    ['empty', new Uint8Array(3), [/at least 8 bytes/]],
    ['huge length', withHeader('{}', undefined, 0xfffffff0), [/header length/]],
    ['header past the end', withHeader('{}', undefined, 4000), [/truncated/, /needs 4008 bytes/]],
    ['not json', withHeader('{"w": '), [/not UTF-8 JSON/]],
    ['array', withHeader('[1,2]'), [/expected a JSON object/]],
    ['no offsets', withHeader('{"w":{"dtype":"F32","shape":[2]}}'), [/tensor w/, /data_offsets/]],
    ['bad dtype', withHeader('{"w":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}}', new Uint8Array(8)), [/tensor w/, /unknown dtype "F33"/]],
    ['bad shape', withHeader('{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', new Uint8Array(8)), [/non-negative/]],
    ['size mismatch', withHeader('{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', new Uint8Array(8)), [/F32\[3\] needs 12 bytes/]],
    ['truncated data', good.subarray(0, good.length - 5), [/truncated/, new RegExp(`describes ${good.length} bytes`)]],
    ['zip (a .pth)', new Uint8Array([0x50, 0x4b, 3, 4, 0, 0, 0, 0, 0, 0]), [/zip file/, /safetensors/]],
  ];
  for (const [what, bytes, res] of cases) {
    const name = `case-${what.replace(/\W+/g, '-')}.safetensors`;
    await rejects(readHeader(bytesSource(name, bytes)), new RegExp(name), ...res);
  }
  await readHeader(bytesSource('good', good)); // and the untouched file is fine
});

test.run();
