// The pretrained-weights path of the Gatys backbones vgg19_bn, resnet50 and densenet121 (fetchBackboneSubset) against a
// local HTTP server (127.0.0.1, random port) serving safetensors files laid out as timm's tv_in1k files are: torchvision's
// tensor names and true shapes (written out here by hand for the first layers of each network, independently of
// src/weights/torchvision-shapes.ts), float32 data, batch norms' int64 num_batches_tracked, and classifier tensors
// that must never be fetched.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { backboneUrl, BACKBONE_MODELS, fetchBackboneSubset, sha256Hex } from '../../src/weights/download.ts';
import { bytesSource, readHeader, writeSafetensors, type RawTensor, type SafetensorsHeader } from '../../src/weights/safetensors.ts';
import { MemoryStore } from '../../src/weights/store.ts';
import { torchvisionShapes } from '../../src/weights/torchvision-shapes.ts';
import { nextSeed } from '../helpers.ts';
import { serve, type TestServer } from './range-server.ts';
import { randomBytes, rejects } from './weights-helpers.ts';

const test = suite('backbone download');
const root = mkdtempSync(join(tmpdir(), 'painterly-bbdl-'));

interface Spec { name: string; dtype: 'F32' | 'I64'; shape: number[] }
const f32 = (name: string, ...shape: number[]): Spec => ({ name, dtype: 'F32', shape });
const conv = (base: string, shape: number[], bias = false): Spec[] => [f32(`${base}.weight`, ...shape), ...(bias ? [f32(`${base}.bias`, shape[0])] : [])];
/** A batch norm as torchvision saves it: four float vectors and an int64 scalar. */
const bn = (base: string, c: number): Spec[] => [
  ...['weight', 'bias', 'running_mean', 'running_var'].map((p) => f32(`${base}.${p}`, c)),
  { name: `${base}.num_batches_tracked`, dtype: 'I64', shape: [] },
];

/** Per backbone: the tensors of the first layers (the ones fetched), then some the loader must leave alone. */
const NETS: Record<string, { needed: Spec[]; unneeded: Spec[] }> = {
  resnet50: {
    needed: [
      ...conv('conv1', [64, 3, 7, 7]), ...bn('bn1', 64),
      ...conv('layer1.0.conv1', [64, 64, 1, 1]), ...bn('layer1.0.bn1', 64),
      ...conv('layer1.0.conv2', [64, 64, 3, 3]), ...bn('layer1.0.bn2', 64),
      ...conv('layer1.0.conv3', [256, 64, 1, 1]), ...bn('layer1.0.bn3', 256),
      ...conv('layer1.0.downsample.0', [256, 64, 1, 1]), ...bn('layer1.0.downsample.1', 256),
    ],
    unneeded: [...conv('layer1.1.conv1', [64, 256, 1, 1]), ...conv('fc', [1000, 2048], true)],
  },
  densenet121: {
    needed: [
      ...conv('features.conv0', [64, 3, 7, 7]), ...bn('features.norm0', 64),
      ...[1, 2].flatMap((i) => {
        const p = `features.denseblock1.denselayer${i}`;
        const cin = 64 + 32 * (i - 1);
        return [...bn(`${p}.norm1`, cin), ...conv(`${p}.conv1`, [128, cin, 1, 1]), ...bn(`${p}.norm2`, 128), ...conv(`${p}.conv2`, [32, 128, 3, 3])];
      }),
    ],
    unneeded: [...bn('features.denseblock1.denselayer3.norm1', 128), ...conv('classifier', [1000, 1024], true)],
  },
  vgg19_bn: {
    needed: [...conv('features.0', [64, 3, 3, 3], true), ...bn('features.1', 64), ...conv('features.3', [64, 64, 3, 3], true), ...bn('features.4', 64)],
    unneeded: [...conv('features.7', [128, 64, 3, 3], true), ...bn('features.8', 128), ...conv('head.fc', [1000, 4096], true)],
  },
};

/** The names fetchBackboneSubset is asked for: every float tensor of `needed` (never num_batches_tracked). */
const wantedNames = (net: string) => NETS[net].needed.filter((s) => s.dtype === 'F32').map((s) => s.name);

/** A safetensors file of the specs with random finite float32 data, sorted by name as safetensors writers do. */
function makeFile(specs: Spec[], o: { rename?: (n: string) => string; edit?: (s: Spec) => Spec | undefined } = {}): Uint8Array {
  const tensors: RawTensor[] = [];
  for (const s0 of specs) {
    const s = o.edit ? o.edit(s0) : s0;
    if (!s) continue;
    const n = s.shape.reduce((a, b) => a * b, 1);
    const data = s.dtype === 'F32' ? randomBytes('F32', n, nextSeed()) : new Uint8Array(new BigInt64Array([12345n]).buffer);
    tensors.push({ name: o.rename ? o.rename(s.name) : s.name, dtype: s.dtype, shape: s.shape, data });
  }
  tensors.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return writeSafetensors(tensors, { format: 'pt' });
}

const FILES = new Map<string, { bytes: Uint8Array; header: SafetensorsHeader }>();
test.before(async () => {
  for (const [net, { needed, unneeded }] of Object.entries(NETS)) {
    const bytes = makeFile([...needed, ...unneeded]);
    FILES.set(net, { bytes, header: await readHeader(bytesSource(net, bytes)) });
  }
});

let dirs = 0;
const cacheDir = () => join(root, `cache${++dirs}`);
const quiet = { onMessage: () => {}, retryDelayMs: 5 };
const serveNet = (net: string, bytes = FILES.get(net)!.bytes) => serve(bytes, { path: `/timm/${net}.tv_in1k/model.safetensors` });

/** The subset holds exactly `names`, each with the remote tensor's dtype, shape and bytes. */
async function checkSubset(bytes: Uint8Array, net: string, names: string[], source = FILES.get(net)!): Promise<void> {
  const h = await readHeader(bytesSource('subset', bytes));
  assert.equal([...h.tensors.keys()].sort(), [...names].sort());
  for (const n of names) {
    const got = h.tensors.get(n)!;
    const want = source.header.tensors.get(n)!;
    assert.is(got.dtype, 'F32', n);
    assert.equal(got.shape, want.shape, n);
    assert.ok(Buffer.from(bytes.subarray(got.begin, got.end)).equals(Buffer.from(source.bytes.subarray(want.begin, want.end))), `${n} bytes`);
  }
}

/** Every request was a range request, and nothing served overlaps a tensor that was not asked for (beyond the merge gap). */
function checkRequests(srv: TestServer, net: string, names: string[]): void {
  const { header } = FILES.get(net)!;
  const asked = new Set(names);
  assert.ok(srv.requests.length > 0 && srv.requests.every((r) => r?.startsWith('bytes=')), `range requests only: ${srv.requests}`);
  let need = 0;
  for (const n of names) { const e = header.tensors.get(n)!; need += e.end - e.begin; }
  for (const [b, e] of srv.served) {
    const hit = [...header.tensors.values()].find((t) => !asked.has(t.name) && t.end - t.begin > 65536 && b < t.end && t.begin < e);
    assert.is(hit?.name, undefined, `served ${b}-${e} overlaps a tensor not asked for`);
  }
  assert.ok(srv.bytes() <= need + header.dataStart + 2 * 65536, `${srv.bytes()} bytes served for ${need} needed`);
}

for (const net of Object.keys(NETS)) {
  test(`${net}: fetches only the tensors asked for, caches the subset, and a second call makes no request`, async () => {
    const srv = await serveNet(net);
    try {
      const dir = cacheDir();
      const names = wantedNames(net);
      const progress: number[] = [];
      const got = await fetchBackboneSubset(net, names, { url: srv.url, cacheDir: dir, ...quiet, onProgress: (p) => progress.push(p.bytes / p.total) });
      await checkSubset(got.bytes, net, names);
      checkRequests(srv, net, names);
      assert.is(progress.at(-1), 1);
      assert.ok(progress.every((p, i) => i === 0 || p >= progress[i - 1]), 'progress is monotonic');

      // <backbone>-url-<hash of the URL>-<hash of the names>.safetensors, its sha256, and the index of subsets.
      const files = readdirSync(dir).sort();
      assert.is(files.length, 3, files.join(' '));
      const [entry, sha, index] = files;
      assert.match(entry, new RegExp(`^${net}-url-[0-9a-f]{16}-[0-9a-f]{16}\\.safetensors$`));
      assert.is(got.name, entry);
      assert.is(got.where, join(dir, entry));
      assert.is(sha, `${entry}.sha256`);
      assert.is(readFileSync(join(dir, sha), 'utf8'), `${await sha256Hex(readFileSync(join(dir, entry)))}  ${entry}\n`);
      assert.is(index, `${entry.slice(0, net.length + 21)}.index.json`);
      assert.equal(JSON.parse(readFileSync(join(dir, index), 'utf8')), { [entry]: names });

      // Cached: the same names in another order, then with the server gone.
      const before = srv.requests.length;
      const again = await fetchBackboneSubset(net, [...names].reverse(), { url: srv.url, cacheDir: dir, ...quiet });
      assert.is(srv.requests.length, before, 'no request for a cached subset');
      assert.is(again.name, entry);
      await srv.close();
      const offline = await fetchBackboneSubset(net, names, { url: srv.url, cacheDir: dir, ...quiet });
      assert.ok(Buffer.from(offline.bytes).equals(Buffer.from(got.bytes)));
    } finally {
      await srv.close();
    }
  });
}

test('a cached subset serves a request for fewer tensors; a larger one replaces the subsets it covers', async () => {
  const net = 'resnet50';
  const srv = await serveNet(net);
  try {
    const dir = cacheDir();
    const names = wantedNames(net);
    const stem = names.filter((n) => /^(conv1|bn1)\./.test(n));
    const full = await fetchBackboneSubset(net, names, { url: srv.url, cacheDir: dir, ...quiet });
    const before = srv.requests.length;
    const fewer = await fetchBackboneSubset(net, stem, { url: srv.url, cacheDir: dir, ...quiet });
    assert.is(srv.requests.length, before, 'served from the cached superset');
    assert.is(fewer.name, full.name);

    // More tensors: a new subset, and the one it covers is gone (from the index and the directory).
    const more = [...names, 'layer1.1.conv1.weight'];
    const bigger = await fetchBackboneSubset(net, more, { url: srv.url, cacheDir: dir, ...quiet });
    assert.ok(srv.requests.length > before);
    await checkSubset(bigger.bytes, net, more);
    const files = readdirSync(dir).sort();
    assert.equal(files.filter((f) => f.endsWith('.safetensors')), [bigger.name]);
    const index = JSON.parse(readFileSync(join(dir, files.find((f) => f.endsWith('.index.json'))!), 'utf8'));
    assert.equal(index, { [bigger.name]: more });
  } finally {
    await srv.close();
  }
});

test('a corrupted cache entry is detected by its sha256 and fetched again, with a message', async () => {
  const net = 'densenet121';
  const srv = await serveNet(net);
  try {
    const dir = cacheDir();
    const names = wantedNames(net);
    const first = await fetchBackboneSubset(net, names, { url: srv.url, cacheDir: dir, ...quiet });
    const bytes = readFileSync(first.where);
    bytes[bytes.length - 1 - (nextSeed() % 1000)] ^= 0x10; // a flipped bit in the data
    writeFileSync(first.where, bytes);
    const before = srv.bytes();
    const messages: string[] = [];
    const again = await fetchBackboneSubset(net, names, { url: srv.url, cacheDir: dir, ...quiet, onMessage: (m) => messages.push(m) });
    assert.ok(srv.bytes() > before, 'refetched');
    assert.ok(messages.some((m) => /corrupt/.test(m) && m.includes(first.name)), messages.join(' | '));
    assert.ok(Buffer.from(again.bytes).equals(Buffer.from(first.bytes)));
    await checkSubset(again.bytes, net, names);
  } finally {
    await srv.close();
  }
});

test('densenet121: older checkpoints\' spellings (denselayer1.norm.1) are accepted and stored under the module names', async () => {
  const net = 'densenet121';
  const legacy = (n: string) => n.replace(/(denselayer\d+\.(?:norm|conv))([12])\./, '$1.$2.');
  const bytes = makeFile([...NETS[net].needed, ...NETS[net].unneeded], { rename: legacy });
  const header = await readHeader(bytesSource('legacy', bytes));
  assert.ok(header.tensors.has('features.denseblock1.denselayer1.norm.1.running_var'));
  const srv = await serveNet(net, bytes);
  try {
    const names = wantedNames(net);
    const got = await fetchBackboneSubset(net, names, { url: srv.url, store: new MemoryStore(), ...quiet });
    const h = await readHeader(bytesSource('subset', got.bytes));
    assert.equal([...h.tensors.keys()].sort(), [...names].sort());
    for (const n of names) {
      const [a, b] = [h.tensors.get(n)!, header.tensors.get(legacy(n))!];
      assert.ok(Buffer.from(got.bytes.subarray(a.begin, a.end)).equals(Buffer.from(bytes.subarray(b.begin, b.end))), n);
    }
  } finally {
    await srv.close();
  }
});

test('a wrong shape, a missing tensor or an unsupported dtype: one line naming the tensor, after reading only the header, nothing cached', async () => {
  const net = 'resnet50';
  const names = wantedNames(net);
  const cases: [string, (s: Spec) => Spec | undefined, string[], RegExp[]][] = [
    ['wrong shape', (s) => (s.name === 'layer1.0.conv2.weight' ? { ...s, shape: [64, 64, 9, 1] } : s), names,
      [/tensor layer1\.0\.conv2\.weight: expected shape \[64,64,3,3\], found \[64,64,9,1\]/]],
    ['missing', (s) => (s.name === 'layer1.0.bn3.running_var' ? undefined : s), names,
      [/tensor layer1\.0\.bn3\.running_var is missing: expected shape \[256\]/, /ResNet-50 weights/]],
    ['int64 asked for', (s) => s, [...names, 'bn1.num_batches_tracked'],
      [/tensor bn1\.num_batches_tracked: dtype I64 is not supported, expected F32, F16 or BF16/]],
  ];
  for (const [what, edit, asked, patterns] of cases) {
    const bytes = makeFile([...NETS[net].needed, ...NETS[net].unneeded], { edit });
    const srv = await serveNet(net, bytes);
    try {
      const store = new MemoryStore();
      await rejects(fetchBackboneSubset(net, asked, { url: srv.url, store, ...quiet }), new RegExp(srv.url.replace(/[.]/g, '\\.')), ...patterns);
      const h = await readHeader(bytesSource(what, bytes));
      assert.is(srv.bytes(), h.dataStart, `${what}: only the header was read`);
      assert.equal([...store.entries.keys()], [], `${what}: nothing cached`);
    } finally {
      await srv.close();
    }
  }
});

test('offline without a cache, an unknown backbone: one line naming it and saying what to do', async () => {
  const srv = await serveNet('resnet50');
  const url = srv.url;
  await srv.close(); // nothing listens on the port now
  const store = new MemoryStore();
  await rejects(fetchBackboneSubset('resnet50', wantedNames('resnet50'), { url, store, ...quiet }),
    /cannot download ResNet-50 weights/, new RegExp(url.replace(/[.]/g, '\\.')), /ECONNREFUSED/, /--weights FILE/, /random:SEED/);
  assert.equal([...store.entries.keys()], [], 'nothing written');
  const gone = await serve(FILES.get('vgg19_bn')!.bytes, { status: 404 });
  try {
    await rejects(fetchBackboneSubset('vgg19_bn', wantedNames('vgg19_bn'), { url: gone.url, store, ...quiet }), /VGG19-BN weights/, /HTTP 404/, /--weights FILE/);
  } finally {
    await gone.close();
  }
  await rejects(fetchBackboneSubset('alexnet', ['features.0.weight'], { store, ...quiet }),
    /no pretrained weights are known for backbone 'alexnet'/, /resnet50/, /densenet121/, /vgg19_bn/, /--weights FILE/, /random:SEED/);
  await rejects(fetchBackboneSubset('resnet50', [], { url, store, ...quiet }), /resnet50: no tensors/);
});

test('the Hub files: timm\'s tv_in1k safetensors; VGG19 pinned to a commit, the others to main until pinned', () => {
  for (const net of ['vgg19_bn', 'resnet50', 'densenet121']) {
    assert.is(backboneUrl(net), `https://huggingface.co/timm/${net}.tv_in1k/resolve/main/model.safetensors`);
    assert.equal(BACKBONE_MODELS[net].tensorSha256, {});
  }
  assert.match(backboneUrl('vgg19')!, /^https:\/\/huggingface\.co\/timm\/vgg19\.tv_in1k\/resolve\/[0-9a-f]{40}\/model\.safetensors$/);
  assert.is(backboneUrl('alexnet'), undefined);
});

test('the shape tables: the shapes written out above, torchvision\'s parameter counts, and no classifier or int64 tensor', () => {
  for (const [net, { needed, unneeded }] of Object.entries(NETS)) {
    const shapes = torchvisionShapes(net)!;
    for (const s of [...needed, ...unneeded]) {
      if (s.dtype !== 'F32' || /^(fc|classifier|head)\./.test(s.name)) assert.is(shapes.get(s.name), undefined, s.name);
      else assert.equal(shapes.get(s.name), s.shape, s.name);
    }
  }
  // sum(p.numel() for p in torchvision.models.X().parameters()) less the classifier: ResNet-50 25,557,032 − 2,049,000,
  // DenseNet-121 7,978,856 − 1,025,000, VGG19-BN 143,678,248 − 123,642,856, VGG19 143,667,240 − 123,642,856.
  const counts: Record<string, [number, number]> = {
    resnet50: [23_508_032, 53], densenet121: [6_953_856, 120], vgg19_bn: [20_035_392, 16], vgg19: [20_024_384, 16],
  };
  for (const [net, [params, convs]] of Object.entries(counts)) {
    const shapes = [...torchvisionShapes(net)!];
    const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
    assert.is(shapes.filter(([n]) => !/running_(mean|var)$/.test(n)).reduce((a, [, s]) => a + numel(s), 0), params, `${net} parameters`);
    assert.is(shapes.filter(([, s]) => s.length === 4).length, convs, `${net} convolutions`);
  }
  assert.is(torchvisionShapes('alexnet'), undefined);
});

test.after(() => rmSync(root, { recursive: true, force: true }));
test.run();
