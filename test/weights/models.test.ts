// The model table and the whole-file download path, against a 127.0.0.1 server serving ../shared/models/wct-16x
// (also what --backbone vgg19-16x --weights pretrained fetches).
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openFileSource } from '../../src/weights/cache-node.ts';
import { sha256Hex } from '../../src/weights/download.ts';
import { fetchModelFile, getModel, MODELS, resolveModelDir, type ModelSpec } from '../../src/weights/models.ts';
import { loadBackboneWeights, VGG19_16X_FILE } from '../../src/weights/backbone-weights.ts';
import { readPth } from '../../src/weights/pth.ts';
import { MemoryStore } from '../../src/weights/store.ts';
import { nextSeed } from '../helpers.ts';
import { haveSharedModels, readmeSha256, WCT_DIR } from './shared-models.ts';
import { rejects } from './weights-helpers.ts';

const test = suite('models');
const root = mkdtempSync(join(tmpdir(), 'painterly-models-'));
let dirs = 0;
const cacheDir = () => join(root, `cache${++dirs}`);
const quiet = { onMessage: () => {}, retryDelayMs: 5 };
const WCT = MODELS['wct-16x'];

interface ServeOptions {
  /** Bytes of the body to send before dropping the connection, per request (undefined: all). */
  cut?: (path: string, begin: number, end: number) => number | undefined;
  /** Replace the served bytes of a file. */
  body?: (path: string, bytes: Uint8Array) => Uint8Array;
}
interface TestServer { base: string; requests: { path: string; range?: string }[]; served: () => number; close(): Promise<void> }

/** Serves files by path with Range support (206), ETag, and optional dropped connections. */
async function serve(files: Map<string, Uint8Array>, o: ServeOptions = {}): Promise<TestServer> {
  const requests: { path: string; range?: string }[] = [];
  let served = 0;
  const sockets = new WeakSet<object>();
  const server: Server = createServer((req, res) => {
    if (!sockets.has(req.socket)) { sockets.add(req.socket); req.socket.on('error', () => {}); }
    res.on('error', () => {});
    const path = decodeURIComponent(new URL(req.url!, 'http://x').pathname.slice(1));
    requests.push({ path, range: req.headers.range });
    const orig = files.get(path);
    if (!orig) { res.writeHead(404); res.end('not found'); return; }
    const file = o.body ? o.body(path, orig) : orig;
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    let begin = 0;
    let end = file.length;
    const headers = { etag: `"${path.length}-${file.length}"`, 'content-type': 'application/octet-stream' };
    if (m) {
      begin = Number(m[1]);
      end = m[2] ? Number(m[2]) + 1 : file.length;
      if (begin >= file.length) { res.writeHead(416, { 'content-range': `bytes */${file.length}` }); res.end(); return; }
      res.writeHead(206, { ...headers, 'content-length': String(end - begin), 'content-range': `bytes ${begin}-${end - 1}/${file.length}` });
    } else res.writeHead(200, { ...headers, 'content-length': String(file.length) });
    const n = o.cut?.(path, begin, end);
    if (n !== undefined && n < end - begin) {
      served += n;
      res.write(file.subarray(begin, begin + n), () => res.socket?.destroy());
      return;
    }
    served += end - begin;
    res.end(file.subarray(begin, end));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}/`, requests, served: () => served,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** The wct-16x files as the upstream repository's trained_models/ folder would serve them. */
function wctFiles(): Map<string, Uint8Array> {
  return new Map(WCT.files.map((f) => [`trained_models/${f.path}`, new Uint8Array(readFileSync(join(WCT_DIR, f.path)))]));
}
/** The table's model with its URLs moved to the test server (same paths below trained_models/). */
function local(spec: ModelSpec, base: string, edit: Partial<ModelSpec['files'][number]> = {}): ModelSpec {
  return { ...spec, files: spec.files.map((f) => ({ ...f, url: `${base}trained_models/${f.path}`, ...edit })) };
}

test('the table: wct-16x pinned to the commit with the README sha256 and the real sizes; adain trusted on first use', () => {
  assert.equal(Object.keys(MODELS).sort(), ['adain', 'wct-16x']);
  assert.is(WCT.files.length, 10);
  for (const f of WCT.files) {
    assert.is(f.url, `https://raw.githubusercontent.com/MingSun-Tse/Collaborative-Distillation/4a269dc90020721ef9b279b2926c62f5bcd6d209/trained_models/${f.path}`);
    assert.match(f.license, /^MIT/);
  }
  const adain = getModel('adain');
  assert.equal(adain.files.map((f) => [f.path, f.url, f.sha256]), [
    ['vgg_normalised.pth', 'https://github.com/naoto0804/pytorch-AdaIN/releases/download/v0.0.0/vgg_normalised.pth', undefined],
    ['decoder.pth', 'https://github.com/naoto0804/pytorch-AdaIN/releases/download/v0.0.0/decoder.pth', undefined],
  ]);
  assert.throws(() => getModel('vgg'), /unknown model 'vgg': expected one of wct-16x, adain/);
  if (!haveSharedModels()) return;
  const sums = readmeSha256();
  assert.equal(WCT.files.map((f) => [f.path, f.sha256]).sort(), [...sums.entries()].sort());
  for (const f of WCT.files) assert.is(f.size, statSync(join(WCT_DIR, f.path)).size, f.path);
});

test('resolveModelDir downloads every file into <cache>/models/<model> laid out as upstream, then works offline', async () => {
  if (!haveSharedModels()) return;
  const files = wctFiles();
  const srv = await serve(files);
  const dir = cacheDir();
  try {
    const spec = local(WCT, srv.base);
    const progress: number[] = [];
    const got = await resolveModelDir(spec, { cacheDir: dir, ...quiet, onProgress: (p) => progress.push(p.bytes) });
    assert.is(got, `${dir}/models/wct-16x`);
    assert.equal(readdirSync(got).sort(), ['wct_se_16x_new', 'wct_se_16x_new_sd']);
    for (const f of WCT.files) assert.ok(Buffer.from(readFileSync(join(got, f.path))).equals(files.get(`trained_models/${f.path}`)!), f.path);
    for (const sub of readdirSync(got)) assert.equal(readdirSync(join(got, sub)).filter((n) => !n.endsWith('.pth')), [], 'no partial or temporary files');
    assert.is(srv.requests.length, 10);
    assert.ok(srv.requests.every((r) => r.range === undefined), 'whole-file requests');
    assert.ok(progress.length >= 10);
    // The folder reads like the shared one.
    const src = await openFileSource(join(got, 'wct_se_16x_new_sd/20191111-091942_E20.pth'));
    assert.equal([...(await readPth(src)).keys()], ['model.conv11.weight', 'model.conv11.bias']);
    await src.close();

    await srv.close();
    assert.is(await resolveModelDir(spec, { cacheDir: dir, ...quiet }), got, 'cached and verified, no network');
    const one = await fetchModelFile(spec, WCT.files[0].path, { cacheDir: dir, ...quiet });
    assert.is(one.sha256, WCT.files[0].sha256);
    assert.is(one.where, join(got, WCT.files[0].path));
  } finally {
    await srv.close();
  }
});

test('a dropped connection is resumed with Range from where it stopped; an interrupted run is resumed by the next', async () => {
  if (!haveSharedModels()) return;
  const f = WCT.files[4]; // encoder 5, 3.9 MB
  const key = `trained_models/${f.path}`;
  let cuts = 0;
  const srv = await serve(wctFiles(), { cut: (p, b, e) => (p === key && cuts < 2 ? (cuts++, Math.floor((e - b) / 3)) : undefined) });
  try {
    const dir = cacheDir();
    const r = await fetchModelFile(local(WCT, srv.base), f.path, { cacheDir: dir, ...quiet });
    assert.is(r.sha256, f.sha256);
    assert.is(cuts, 2);
    const ranges = srv.requests.map((q) => q.range);
    assert.is(ranges[0], undefined);
    const starts = ranges.slice(1).map((x) => Number(/^bytes=(\d+)-$/.exec(x!)![1]));
    assert.ok(starts.length === 2 && starts[0] > 0 && starts[1] > starts[0], `resumed at ${starts}`);
    assert.is(srv.served(), f.size, 'every byte served once');

    // Across runs: no retries, the partial file stays, and the next run asks only for the rest.
    cuts = 1;
    srv.requests.length = 0;
    const dir2 = cacheDir();
    await rejects(fetchModelFile(local(WCT, srv.base), f.path, { cacheDir: dir2, ...quiet, retries: 0 }), /interrupted after/, /will be resumed/, /\.part/);
    const partPath = join(dir2, 'models/wct-16x', `${f.path}.part`);
    const kept = statSync(partPath).size;
    assert.ok(kept > 0 && kept < f.size!);
    const messages: string[] = [];
    const again = await fetchModelFile(local(WCT, srv.base), f.path, { cacheDir: dir2, ...quiet, onMessage: (m) => messages.push(m) });
    assert.is(again.sha256, f.sha256);
    assert.is(srv.requests.at(-1)!.range, `bytes=${kept}-`);
    assert.ok(messages.some((m) => /resuming/.test(m)), messages.join(' | '));
    assert.not.ok(existsSync(partPath));
  } finally {
    await srv.close();
  }
});

test('a download that does not match the pinned sha256 is a one-line error and is discarded, every time', async () => {
  if (!haveSharedModels()) return;
  const f = WCT.files[5];
  const flip = nextSeed() % f.size!;
  const srv = await serve(wctFiles(), { body: (_p, b) => { const c = b.slice(); c[flip] ^= 0x20; return c; } });
  try {
    const dir = cacheDir();
    for (let run = 0; run < 2; run++) {
      const before = srv.requests.length;
      await rejects(fetchModelFile(local(WCT, srv.base), f.path, { cacheDir: dir, ...quiet }),
        new RegExp(`${srv.base.replace(/[.]/g, '\\.')}trained_models/wct_se_16x_new_sd/20191111-091942_E20\\.pth: the download does not match`),
        new RegExp(`expected 3220 bytes with sha256 ${f.sha256}`), /pinned/, /discarded/, /--model DIR/);
      assert.is(srv.requests.length - before, 1, 'one request per run, no retry loop');
      assert.equal(readdirSync(join(dir, 'models/wct-16x/wct_se_16x_new_sd')), [], 'nothing kept');
    }
  } finally {
    await srv.close();
  }
});

test('a corrupted cached file is detected and fetched again, with a message', async () => {
  if (!haveSharedModels()) return;
  const srv = await serve(wctFiles());
  try {
    const dir = cacheDir();
    const f = WCT.files[6];
    const r = await fetchModelFile(local(WCT, srv.base), f.path, { cacheDir: dir, ...quiet });
    const bytes = readFileSync(r.where);
    bytes[nextSeed() % bytes.length] ^= 1;
    writeFileSync(r.where, bytes);
    const messages: string[] = [];
    const again = await fetchModelFile(local(WCT, srv.base), f.path, { cacheDir: dir, ...quiet, onMessage: (m) => messages.push(m) });
    assert.is(again.sha256, f.sha256);
    assert.is(await sha256Hex(readFileSync(r.where)), f.sha256);
    assert.ok(messages.some((m) => /corrupt/.test(m) && m.includes(r.where)), messages.join(' | '));
    assert.is(srv.requests.length, 2);
  } finally {
    await srv.close();
  }
});

test('offline without a cache: one line naming the URL, the cache and --model DIR; HTTP 404 likewise', async () => {
  const srv = await serve(new Map());
  const base = srv.base;
  await srv.close();
  const dir = cacheDir();
  const f = WCT.files[0];
  await rejects(fetchModelFile(local(WCT, base), f.path, { cacheDir: dir, ...quiet, retries: 1 }),
    /^cannot download /, new RegExp(`${base.replace(/[.]/g, '\\.')}trained_models/${f.path.replace(/[.]/g, '\\.')}`), /ECONNREFUSED/,
    /no cached copy in /, /--model DIR/);
  assert.not.ok(existsSync(join(dir, 'models/wct-16x', `${f.path}.part`)));
  const gone = await serve(new Map());
  try {
    await rejects(resolveModelDir(local(WCT, gone.base), { cacheDir: cacheDir(), ...quiet }), /HTTP 404/, /--model DIR/);
  } finally {
    await gone.close();
  }
});

test('trust on first use: the first download records its sha256 beside the file; later loads and downloads must match it', async () => {
  const a = new Uint8Array(5000).map((_, i) => (i * 7 + nextSeed()) & 0xff);
  const files = new Map([['trained_models/enc.pth', a]]);
  let body = a;
  const srv = await serve(files, { body: () => body });
  try {
    const spec: ModelSpec = { name: 'tofu', description: 't', source: 'test', files: [{ path: 'enc.pth', url: `${srv.base}trained_models/enc.pth`, license: 'test' }] };
    const dir = cacheDir();
    const messages: string[] = [];
    const r = await fetchModelFile(spec, 'enc.pth', { cacheDir: dir, ...quiet, onMessage: (m) => messages.push(m) });
    const want = await sha256Hex(a);
    assert.is(r.sha256, want);
    assert.is(readFileSync(`${r.where}.sha256`, 'utf8'), `${want}  enc.pth\n`);
    assert.ok(messages.some((m) => /recorded sha256/.test(m) && /trusted on first use/.test(m)), messages.join(' | '));
    // Upstream changes the file; the cached copy is corrupted: the refetch must match the recorded hash.
    body = a.slice(); body[17] ^= 1;
    const c = readFileSync(r.where); c[3] ^= 1; writeFileSync(r.where, c);
    await rejects(fetchModelFile(spec, 'enc.pth', { cacheDir: dir, ...quiet }), /does not match/, /recorded on first download/, /delete it to trust the new file/);
    // The same through a store (a browser's), entries named <model>/<path>.
    const store = new MemoryStore();
    body = a;
    const s = await fetchModelFile(spec, 'enc.pth', { store, ...quiet });
    assert.is(s.where, 'memory:tofu/enc.pth');
    assert.equal([...store.entries.keys()].sort(), ['tofu/enc.pth', 'tofu/enc.pth.sha256']);
  } finally {
    await srv.close();
  }
});

test('vgg19-16x --weights pretrained: the table\'s level-5 encoder fetched from its pinned URL (served here), cached, loaded as the backbone', async () => {
  if (!haveSharedModels()) return;
  const srv = await serve(wctFiles());
  const upstream = WCT.files[0].url.slice(0, WCT.files[0].url.indexOf('trained_models/'));
  const realFetch = globalThis.fetch;
  const requested: string[] = [];
  // The library asks for the table's URL; this test answers it from 127.0.0.1.
  globalThis.fetch = ((url: string | URL, init?: RequestInit) => {
    requested.push(String(url));
    return realFetch(String(url).replace(upstream, srv.base), init);
  }) as typeof fetch;
  const dir = cacheDir();
  try {
    const w = await loadBackboneWeights('vgg19-16x', 'pretrained', { upTo: 'relu5_1', cacheDir: dir, onMessage: () => {} });
    assert.equal(requested, [`${upstream}trained_models/${VGG19_16X_FILE}`], 'one whole-file request for the level-5 encoder');
    assert.ok(w.pretrained);
    assert.match(w.source, /wct-16x level-5 encoder/);
    assert.equal([...w.convs.keys()], ['conv0', ...['1_1', '1_2', '2_1', '2_2', '3_1', '3_2', '3_3', '3_4', '4_1', '4_2', '4_3', '4_4', '5_1'].map((s) => `conv${s}`)]);
    const src = await openFileSource(join(WCT_DIR, VGG19_16X_FILE));
    const real = await readPth(src);
    await src.close();
    assert.equal(Array.from(w.convs.get('conv5_1')!.weight), Array.from(real.get('model.conv51.weight')!.data), 'the values torch saved');
    // Cached and verified: a second load needs no network.
    globalThis.fetch = (() => Promise.reject(new Error('offline'))) as typeof fetch;
    const again = await loadBackboneWeights('vgg19-16x', 'pretrained', { upTo: 'relu5_1', cacheDir: dir, onMessage: () => {} });
    assert.equal(Array.from(again.convs.get('conv0')!.weight), Array.from(w.convs.get('conv0')!.weight));
  } finally {
    globalThis.fetch = realFetch;
    await srv.close();
  }
});

test.after(() => rmSync(root, { recursive: true, force: true }));
test.run();
