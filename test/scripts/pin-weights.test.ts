// scripts/pin-weights.mjs against a local server: the per-tensor sha256 table it prints is the tensors' own, and the
// download checks tensors against such a table (a mismatch is refused in one line and nothing is cached).
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchTensorSubset, fetchVgg19Subset, sha256Hex, VGG19_REVISION, VGG19_URL } from '../../src/weights/download.ts';
import { convsUpTo } from '../../src/weights/layout.ts';
import { parseHeader, parseHeaderLength, writeSafetensors } from '../../src/weights/safetensors.ts';
import { MemoryStore } from '../../src/weights/store.ts';
import { nextSeed } from '../helpers.ts';
import { randomBytes, vggFile } from '../weights/weights-helpers.ts';

const test = suite('pin weights');
const script = new URL('../../scripts/pin-weights.mjs', import.meta.url).pathname;

function serve(file: Uint8Array): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (!m) { res.writeHead(200, { 'content-length': String(file.length) }); res.end(Buffer.from(file)); return; }
    const [b, e] = [Number(m[1]), Math.min(file.length - 1, Number(m[2]))];
    res.writeHead(206, { 'content-length': String(e - b + 1), 'content-range': `bytes ${b}-${e}/${file.length}`, etag: '"v1"' });
    res.end(Buffer.from(file.subarray(b, e + 1)));
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/model.safetensors`, server })));
}

function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((ok) => {
    const p = spawn(process.execPath, [script, ...args]);
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('close', (code) => ok({ code: code ?? 1, out, err }));
  });
}

test('the default URL is pinned to a commit, not the main branch', () => {
  assert.match(VGG19_REVISION, /^[0-9a-f]{40}$/);
  assert.ok(VGG19_URL.includes(`/resolve/${VGG19_REVISION}/`) && !VGG19_URL.includes('/resolve/main/'));
});

test('pin-weights prints each conv tensor\'s sha256, and the download checks them', async () => {
  const file = vggFile(nextSeed(), { upTo: 'conv3_1' });
  const { url, server } = await serve(file);
  try {
    const r = await run(['--url', url]);
    assert.is(r.code, 0, r.err);
    const printed = JSON.parse(r.out) as { url: string; tensors: Record<string, string> };
    assert.is(printed.url, url);
    const n = parseHeaderLength(file.subarray(0, 8), 'f');
    const header = parseHeader(file.subarray(8, 8 + n), 'f', file.length);
    const names = Object.keys(printed.tensors).sort();
    assert.equal(names, ['0', '2', '5', '7', '10'].flatMap((i) => [`features.${i}.bias`, `features.${i}.weight`]).sort());
    for (const name of names) {
      const e = header.tensors.get(name)!;
      assert.is(printed.tensors[name], await sha256Hex(file.subarray(e.begin, e.end)), name);
    }
    const convs = convsUpTo('conv3_1');
    const ok = await fetchVgg19Subset({ url, convs, store: new MemoryStore(), expectedSha256: printed.tensors, onMessage: () => {} });
    assert.ok(ok.bytes.length > 0);
    const store = new MemoryStore();
    const wrong = { ...printed.tensors, 'features.5.weight': '0'.repeat(64) };
    const err = await fetchVgg19Subset({ url, convs, store, expectedSha256: wrong, onMessage: () => {} }).then(() => new Error("accepted"), (e) => e as Error);
    assert.match(err.message, /tensor features\.5\.weight has sha256 [0-9a-f]{64}, expected 0{64}; the file is not the pinned one/);
    assert.not.match(err.message, /\n/);
    assert.equal([...store.entries.keys()], [], 'nothing kept after a mismatch');
  } finally {
    server.close();
  }
});

test('pin-weights --model resnet50 hashes every float tensor but the classifier\'s, and the subset download checks them', async () => {
  const f32 = (name: string, shape: number[]) => ({ name, dtype: 'F32', shape, data: randomBytes('F32', shape.reduce((a, b) => a * b, 1), nextSeed()) });
  const file = writeSafetensors([
    ...['bias', 'running_mean', 'running_var', 'weight'].map((p) => f32(`bn1.${p}`, [64])),
    { name: 'bn1.num_batches_tracked', dtype: 'I64', shape: [], data: new Uint8Array(8) },
    f32('conv1.weight', [64, 3, 7, 7]), f32('fc.bias', [1000]), f32('fc.weight', [1000, 16]),
  ], { format: 'pt' });
  const { url, server } = await serve(file);
  try {
    const r = await run(['--model', 'resnet50', '--url', url]);
    assert.is(r.code, 0, r.err);
    const printed = JSON.parse(r.out) as { model: string; url: string; tensors: Record<string, string> };
    assert.is(printed.model, 'resnet50');
    const header = parseHeader(file.subarray(8, 8 + parseHeaderLength(file.subarray(0, 8), 'f')), 'f', file.length);
    const names = Object.keys(printed.tensors).sort();
    assert.equal(names, ['bn1.bias', 'bn1.running_mean', 'bn1.running_var', 'bn1.weight', 'conv1.weight']);
    for (const name of names) {
      const e = header.tensors.get(name)!;
      assert.is(printed.tensors[name], await sha256Hex(file.subarray(e.begin, e.end)), name);
    }
    const subset = (expectedSha256: Record<string, string>, store = new MemoryStore()) => fetchTensorSubset({
      url, store, tensors: names, entry: 'resnet50-test.safetensors', what: 'ResNet-50 weights', expectedSha256, onMessage: () => {},
    });
    assert.ok((await subset(printed.tensors)).bytes.length > 0);
    const store = new MemoryStore();
    const err = await subset({ ...printed.tensors, 'bn1.running_var': '0'.repeat(64) }, store).then(() => new Error('accepted'), (e) => e as Error);
    assert.match(err.message, /tensor bn1\.running_var has sha256 [0-9a-f]{64}, expected 0{64}; the file is not the pinned one/);
    assert.equal([...store.entries.keys()], [], 'nothing kept after a mismatch');
    const bad = await run(['--model', 'alexnet', '--url', url]);
    assert.is.not(bad.code, 0);
    assert.match(bad.err, /--model alexnet: expected one of vgg19, vgg19_bn, resnet50, densenet121/);
  } finally {
    server.close();
  }
});

test.run();
