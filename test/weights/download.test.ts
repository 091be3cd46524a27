// The real download code against a local HTTP server (127.0.0.1, random port) serving a VGG19-shaped file.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { sha256Hex } from '../../src/weights/download.ts';
import { bytesSource, readHeader, type SafetensorsHeader } from '../../src/weights/safetensors.ts';
import { loadVgg19Weights, type VggWeights } from '../../src/weights/vgg19-weights.ts';
import { nextSeed } from '../helpers.ts';
import { serve } from './range-server.ts';
import { randomBytes, rejects, vggFile } from './weights-helpers.ts';

const test = suite('weights download');
const root = mkdtempSync(join(tmpdir(), 'painterly-dl-'));

// The served file: real shapes up to conv5_1 (conv4_x and conv5_1 stored as F16 to keep it small), then tensors the
// loader must never fetch: conv5_2..conv5_4 and a classifier matrix. Sorted by name, features.30/32/34 sit between
// features.28 (conv5_1) and features.5 (conv2_1), so the needed bytes are two spans with 14 MB between them.
const FILE = vggFile(nextSeed(), {
  dtype: (c) => (c.startsWith('conv4') || c === 'conv5_1' ? 'F16' : 'F32'),
  extra: [
    ...[30, 32, 34].flatMap((i) => [
      { name: `features.${i}.weight`, dtype: 'F16', shape: [512, 512, 3, 3], data: randomBytes('F16', 512 * 512 * 9, nextSeed()) },
      { name: `features.${i}.bias`, dtype: 'F16', shape: [512], data: randomBytes('F16', 512, nextSeed()) },
    ]),
    { name: 'pre_logits.fc1.weight', dtype: 'F32', shape: [1024, 2048], data: randomBytes('F32', 1024 * 2048, nextSeed()) },
  ],
});
const FILE_PATH = join(root, 'served.safetensors');
writeFileSync(FILE_PATH, FILE);
let HEADER: SafetensorsHeader;

/** Bytes of the tensors conv1_1..upTo in FILE, and whether [b, e) overlaps a tensor not needed for upTo. */
function needed(upTo: string): { bytes: number; overlapsUnneeded: (b: number, e: number) => string | undefined } {
  const names = new Set<string>();
  for (const c of [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28].slice(0, ['conv1_1', 'conv1_2', 'conv2_1', 'conv2_2', 'conv3_1', 'conv3_2', 'conv3_3', 'conv3_4', 'conv4_1', 'conv4_2', 'conv4_3', 'conv4_4', 'conv5_1'].indexOf(upTo) + 1)) {
    names.add(`features.${c}.weight`); names.add(`features.${c}.bias`);
  }
  let bytes = 0;
  for (const n of names) { const e = HEADER.tensors.get(n)!; bytes += e.end - e.begin; }
  return {
    bytes,
    overlapsUnneeded: (b, e) => [...HEADER.tensors.values()].find((t) => !names.has(t.name) && t.end - t.begin > 65536 && b < t.end && t.begin < e)?.name,
  };
}

async function reference(upTo: string): Promise<VggWeights> {
  return loadVgg19Weights(FILE_PATH, { upTo });
}

function sameWeights(got: VggWeights, want: VggWeights): void {
  assert.equal(got.convs.map((c) => c.name), want.convs.map((c) => c.name));
  got.convs.forEach((c, i) => {
    assert.ok(Buffer.from(c.weight.buffer, c.weight.byteOffset, c.weight.byteLength).equals(Buffer.from(want.convs[i].weight.buffer, want.convs[i].weight.byteOffset, want.convs[i].weight.byteLength)), `${c.name} weight`);
    assert.equal(c.bias, want.convs[i].bias, `${c.name} bias`);
  });
}

let dirs = 0;
const cacheDir = () => join(root, `cache${++dirs}`);
const quiet = { onMessage: () => {}, retryDelayMs: 5 };

test.before(async () => { HEADER = await readHeader(bytesSource('served', FILE)); });

test('fetches only the needed tensors with range requests, caches a verified subset, then works offline', async () => {
  const srv = await serve(FILE);
  try {
    const dir = cacheDir();
    const progress: number[] = [];
    const w = await loadVgg19Weights('pretrained', { url: srv.url, cacheDir: dir, ...quiet, onProgress: (p) => progress.push(p.bytes / p.total) });
    sameWeights(w, await reference('conv5_1'));
    assert.is(w.pretrained, true);
    assert.match(w.source, /pretrained/);
    assert.ok(srv.requests.every((r) => r?.startsWith('bytes=')), 'every request is a range request');
    const need = needed('conv5_1');
    for (const [b, e] of srv.served) assert.is(need.overlapsUnneeded(b, e), undefined, `served ${b}-${e}`);
    assert.ok(srv.bytes() <= need.bytes + HEADER.dataStart + 2 * 65536, `${srv.bytes()} bytes served for ${need.bytes} needed`);
    assert.is(progress.at(-1), 1);
    assert.ok(progress.every((p, i) => i === 0 || p >= progress[i - 1]), 'progress is monotonic');

    const files = readdirSync(dir).sort();
    assert.equal(files, ['vgg19-url-' + files[0].slice(10, 26) + '-upto-conv5_1.safetensors', files[0] + '.sha256']);
    const stored = readFileSync(join(dir, files[0]));
    assert.ok(stored.length < need.bytes + 8192, 'the cache holds the subset, not the file');
    assert.is(readFileSync(join(dir, files[1]), 'utf8'), `${await sha256Hex(stored)}  ${files[0]}\n`);

    // Cached: a shallower request is served by the deeper subset, with the server gone.
    await srv.close();
    sameWeights(await loadVgg19Weights('pretrained', { url: srv.url, cacheDir: dir, upTo: 'conv2_1', ...quiet }), await reference('conv2_1'));
    sameWeights(await loadVgg19Weights('pretrained', { url: srv.url, cacheDir: dir, ...quiet }), w);
  } finally {
    await srv.close();
  }
});

test('a server that ignores Range (200) still works, with a message', async () => {
  const srv = await serve(FILE, { ignoreRange: true });
  try {
    const messages: string[] = [];
    const w = await loadVgg19Weights('pretrained', { url: srv.url, cacheDir: cacheDir(), upTo: 'conv2_1', ...quiet, onMessage: (m) => messages.push(m) });
    sameWeights(w, await reference('conv2_1'));
    assert.ok(messages.some((m) => /ignores range requests/.test(m)), messages.join(' | '));
  } finally {
    await srv.close();
  }
});

test('a connection dropped mid-body is resumed from where it stopped, and the result verifies', async () => {
  const need = needed('conv2_1');
  let cuts = 0;
  // Cut the first two data responses (not the header requests) a third of the way in.
  const srv = await serve(FILE, { cut: (b, e) => (b >= HEADER.dataStart && cuts < 2 ? (cuts++, Math.floor((e - b) / 3)) : undefined) });
  try {
    const dir = cacheDir();
    const w = await loadVgg19Weights('pretrained', { url: srv.url, cacheDir: dir, upTo: 'conv2_1', ...quiet });
    sameWeights(w, await reference('conv2_1'));
    assert.is(cuts, 2);
    // Resumed, not restarted: every needed byte was served once.
    assert.ok(srv.bytes() <= need.bytes + HEADER.dataStart + 65536, `${srv.bytes()} served for ${need.bytes} needed`);
    const starts = srv.requests.slice(2).map((r) => Number(/bytes=(\d+)-/.exec(r!)![1]));
    assert.ok(starts[1] > starts[0] && starts[2] > starts[1], `later requests start later: ${starts}`);
    assert.equal(readdirSync(dir).filter((f) => f.includes('.part')), [], 'no partial left');
  } finally {
    await srv.close();
  }
});

test('an interrupted download gives a one-line error, keeps the partial file, and the next run resumes it', async () => {
  const need = needed('conv2_1');
  let cutOnce = true;
  const srv = await serve(FILE, { cut: (b, e) => (b >= HEADER.dataStart && cutOnce ? Math.floor((e - b) / 2) : undefined) });
  const dir = cacheDir();
  try {
    await rejects(loadVgg19Weights('pretrained', { url: srv.url, cacheDir: dir, upTo: 'conv2_1', ...quiet, retries: 0 }),
      /interrupted after/, /will be resumed/, /\.part/);
    const part = readdirSync(dir).find((f) => f.endsWith('.part'))!;
    const kept = readFileSync(join(dir, part)).length;
    assert.ok(kept > 0, 'partial kept');
    assert.ok(existsSync(join(dir, `${part}.json`)), 'with what it is');

    cutOnce = false;
    const before = srv.bytes();
    const w = await loadVgg19Weights('pretrained', { url: srv.url, cacheDir: dir, upTo: 'conv2_1', ...quiet });
    sameWeights(w, await reference('conv2_1'));
    const second = srv.bytes() - before;
    assert.ok(second <= need.bytes - kept + HEADER.dataStart + 65536, `second run fetched ${second}, ${kept} were kept of ${need.bytes}`);

    // An abort keeps the partial too, and rethrows the abort.
    const ac = new AbortController();
    const dir2 = cacheDir();
    let err: unknown;
    try {
      await loadVgg19Weights('pretrained', { url: srv.url, cacheDir: dir2, upTo: 'conv3_1', ...quiet, signal: ac.signal, onProgress: (p) => { if (p.bytes > 0) ac.abort(); } });
    } catch (e) { err = e; }
    assert.is((err as Error)?.name, 'AbortError', String(err));
    assert.ok(readdirSync(dir2).some((f) => f.endsWith('.part.json')));
  } finally {
    await srv.close();
  }
});

test('a stale partial of another file is discarded', async () => {
  const srv = await serve(FILE);
  try {
    const dir = cacheDir();
    await loadVgg19Weights('pretrained', { url: srv.url, cacheDir: dir, upTo: 'conv1_1', ...quiet }); // learn the entry name
    const name = readdirSync(dir).find((f) => f.endsWith('.safetensors'))!;
    for (const f of readdirSync(dir)) rmSync(join(dir, f));
    writeFileSync(join(dir, `${name}.part`), new Uint8Array(1000).fill(7));
    writeFileSync(join(dir, `${name}.part.json`), JSON.stringify({ url: srv.url, etag: '"old"', ranges: [[0, 1000]] }));
    sameWeights(await loadVgg19Weights('pretrained', { url: srv.url, cacheDir: dir, upTo: 'conv1_1', ...quiet }), await reference('conv1_1'));
  } finally {
    await srv.close();
  }
});

test('a corrupted cache is detected by its sha256 and fetched again, with a message', async () => {
  const srv = await serve(FILE);
  try {
    const dir = cacheDir();
    const first = await loadVgg19Weights('pretrained', { url: srv.url, cacheDir: dir, upTo: 'conv2_1', ...quiet });
    const name = readdirSync(dir).find((f) => f.endsWith('.safetensors'))!;
    const bytes = readFileSync(join(dir, name));
    bytes[bytes.length - 1 - (nextSeed() % 1000)] ^= 0x10; // a flipped bit in the data
    writeFileSync(join(dir, name), bytes);
    const before = srv.bytes();
    const messages: string[] = [];
    const again = await loadVgg19Weights('pretrained', { url: srv.url, cacheDir: dir, upTo: 'conv2_1', ...quiet, onMessage: (m) => messages.push(m) });
    sameWeights(again, first);
    assert.ok(srv.bytes() > before, 'refetched');
    assert.ok(messages.some((m) => /corrupt/.test(m) && m.includes(name)), messages.join(' | '));
    assert.is(readFileSync(join(dir, `${name}.sha256`), 'utf8').split(' ')[0], await sha256Hex(readFileSync(join(dir, name))));
  } finally {
    await srv.close();
  }
});

test('offline without a cache: one line saying what to download, from where, and --weights FILE', async () => {
  const srv = await serve(FILE);
  const url = srv.url;
  await srv.close(); // nothing listens on the port now
  const dir = cacheDir();
  await rejects(loadVgg19Weights('pretrained', { url, cacheDir: dir, ...quiet }),
    /cannot download VGG19 weights/, new RegExp(url.replace(/[.]/g, '\\.')), /ECONNREFUSED/, /--weights FILE/, new RegExp(dir), /random:SEED/);
  assert.not.ok(existsSync(dir), 'nothing written');
  const gone = await serve(FILE, { status: 404 });
  try {
    await rejects(loadVgg19Weights('pretrained', { url: gone.url, cacheDir: cacheDir(), ...quiet }), /HTTP 404/, /--weights FILE/);
  } finally {
    await gone.close();
  }
});

test('a remote file with wrong shapes fails after reading only its header', async () => {
  const bad = vggFile(nextSeed(), { upTo: 'conv2_1', edit: (t) => (t.name === 'features.5.weight' ? { ...t, shape: [128, 64, 1, 9] } : t) });
  const srv = await serve(bad);
  try {
    await rejects(loadVgg19Weights('pretrained', { url: srv.url, cacheDir: cacheDir(), upTo: 'conv2_1', ...quiet }),
      new RegExp(srv.url.replace(/[.]/g, '\\.')), /features\.5\.weight \(conv2_1\)/, /expected shape \[128,64,3,3\]/);
    const h = await readHeader(bytesSource('bad', bad));
    assert.is(srv.bytes(), h.dataStart, 'only the header was read');
  } finally {
    await srv.close();
  }
});

test.after(() => rmSync(root, { recursive: true, force: true }));
test.run();
