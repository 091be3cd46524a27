// `painterly` at its edges: Dawn's limit warnings hidden, unwritable --out/--log refused up front in one line, a
// failed final write saved elsewhere, and Ctrl-C (during the weights download, before the first step, mid-run)
// stopping at once without writing the initial image or running another evaluation.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { main } from '../../src/cli/main.ts';
import { decodeImage } from '../../src/image/codec.ts';
import { readImage, writeImage } from '../../src/image/node-io.ts';
import { fitLongestSide } from '../../src/image/resize.ts';
import { nextSeed, testGpu } from '../helpers.ts';
import { vggFile } from '../weights/weights-helpers.ts';

const test = suite('painterly edges');
const dir = mkdtempSync(join(tmpdir(), 'painterly-edges-'));
const examples = new URL('../../examples/', import.meta.url).pathname;
const bin = new URL('../../bin/painterly.js', import.meta.url).pathname;
const content = join(dir, 'content.png');
const style = join(dir, 'style.png');

/**
 * Runs the CLI in-process, capturing what it prints; `onErr` sees stderr as it grows (to interrupt at a point:
 * process.emit('SIGINT') runs the CLI's handler as a real Ctrl-C would).
 */
async function cli(argv: string[], onErr?: (err: string) => void): Promise<{ code: number; err: string; out: string; ms: number }> {
  const err: string[] = [];
  const out: string[] = [];
  const [e, l] = [console.error, console.log];
  const w = process.stderr.write;
  const push = (s: string) => { err.push(s); onErr?.(err.join('\n')); };
  console.error = (...a: unknown[]) => push(a.join(' '));
  console.log = (...a: unknown[]) => { out.push(a.join(' ')); };
  process.stderr.write = ((s: string) => { push(String(s)); return true; }) as typeof process.stderr.write;
  const t0 = performance.now();
  try {
    const code = await main(argv);
    return { code, err: err.join('\n'), out: out.join('\n'), ms: performance.now() - t0 };
  } finally {
    console.error = e; console.log = l; process.stderr.write = w;
  }
}

function base(out: string, ...more: string[]): string[] {
  const flags = new Map<string, string>([['--content', content], ['--style', style], ['--out', out], ['--size', '32'],
    ['--iters', '2'], ['--weights', 'random:1'], ['--print-every', '1']]);
  for (let i = 0; i < more.length; i += 2) flags.set(more[i], more[i + 1]);
  return ['stylize', ...[...flags].flat()];
}

const lines = (s: string) => s.split('\n').filter((x) => x.trim() !== '');

test.before(async () => {
  await testGpu();
  await writeImage(content, fitLongestSide(await readImage(join(examples, 'tubingen.jpg')), 48));
  await writeImage(style, fitLongestSide(await readImage(join(examples, 'starry_night.jpg')), 40));
});

/** Runs bin/painterly.js in a child process (`node [nodeArgs] bin/painterly.js argv`). */
function binRun(argv: string[], opts: { nodeArgs?: string[]; env?: Record<string, string> } = {}): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), bin, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  let out = '', err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out, err })));
}

const DAWN_WARNING = /^Warning: maxDynamic\w+ artificially reduced .*$/gm;

test('no Dawn limit warnings on stderr: `node bin/painterly.js info`; --verbose shows what Dawn printed', async () => {
  const r = await binRun(['info']);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /adapter: /);
  assert.not.match(r.err, /artificially reduced|maxDynamic/, r.err);
  assert.is(r.err, '');
  // Unfiltered (the bin's own child, PAINTERLY_STDERR_FILTERED=1): Dawn's lines, if this adapter makes it print any
  // (lavapipe does); --verbose passes exactly those through.
  const raw = await binRun(['info'], { env: { PAINTERLY_STDERR_FILTERED: '1' } });
  const verbose = await binRun(['info', '--verbose']);
  assert.is(verbose.code, 0, verbose.err);
  assert.equal(verbose.err.match(DAWN_WARNING) ?? [], raw.err.match(DAWN_WARNING) ?? [], verbose.err);
});

test('unwritable or missing --out and --log folders: one line, exit 1, before the GPU is opened', async () => {
  const out = join(dir, 'never.png');
  const file = join(dir, 'a-file');
  writeFileSync(file, 'x');
  // A folder even root cannot write in: sysfs refuses new files; otherwise a read-only folder.
  let locked = join(dir, 'locked');
  if (process.getuid?.() === 0) locked = '/sys';
  else { mkdirSync(locked); chmodSync(locked, 0o555); }
  let writable = true;
  try { writeFileSync(join(locked, 'probe'), 'x'); rmSync(join(locked, 'probe')); } catch { writable = false; }
  assert.not.ok(writable, `${locked} should refuse new files for this test`);
  const cases: [string[], RegExp][] = [
    [base(out, '--log', join(dir, 'no-such-dir', 'log.jsonl')), /^painterly: --log: folder ".*no-such-dir" does not exist$/],
    [base(out, '--log', join(file, 'log.jsonl')), /^painterly: --log: ".*a-file" is not a folder$/],
    [base(out, '--log', join(locked, 'log.jsonl')), /^painterly: --log: cannot write in folder ".*" \((permission denied|read-only file system)\)$/],
    [base(join(locked, 'out.png')), /^painterly: --out: cannot write in folder ".*" \((permission denied|read-only file system)\)$/],
    [base(join(dir, 'no-such-dir', 'x.png')), /^painterly: --out: folder ".*no-such-dir" does not exist$/],
    [base(join(dir, 'folder.png')), /^painterly: --out: ".*folder\.png" is a folder$/],
  ];
  mkdirSync(join(dir, 'folder.png'));
  for (const [argv, want] of cases) {
    const r = await cli(argv);
    assert.is(r.code, 1, `${argv.join(' ')}: ${r.err}`);
    assert.is(lines(r.err).length, 1, `one line: ${r.err}`);
    assert.match(lines(r.err)[0], want);
    assert.not.match(r.err, /NOT pretrained|weights:/, 'refused before loading weights or opening the GPU');
    assert.ok(r.ms < 1000, `refused in ${r.ms.toFixed(0)} ms`);
  }
  assert.not.ok(existsSync(out));
  if (locked !== '/sys') chmodSync(locked, 0o755);
});

test('images too small for the deepest layer at any scale: one line, exit 1, in under a second, before the GPU', async () => {
  // content 48x36, style 40x32; relu5_1 needs 16x16.
  const cases: [string[], RegExp][] = [
    [base(join(dir, 'small.png'), '--size', '20'), /^painterly: the output is 20x15 at size 20: relu5_1 needs at least 16x16; use a larger --size\/--scales$/],
    [base(join(dir, 'small.png'), '--style-scale', '0.5'), /^painterly: style image 1 is 16x1\d at --style-scale 0.5: relu5_1 needs at least 16x16$/],
    [base(join(dir, 'small.png'), '--scales', '20,32'), /^painterly: the output is 20x15 at size 20: relu5_1/],
  ];
  for (const [argv, want] of cases) {
    const r = await cli(argv);
    assert.is(r.code, 1, `${argv.join(' ')}: ${r.err}`);
    assert.is(lines(r.err).length, 1, `one line (no weights notice first): ${r.err}`);
    assert.match(lines(r.err)[0], want);
    assert.ok(r.ms < 1000, `refused in ${r.ms.toFixed(0)} ms`);
  }
  assert.not.ok(existsSync(join(dir, 'small.png')));
});

test('bad input of every kind is refused without loading the GPU module (a process in which importing Dawn fails)', async () => {
  // The child's `import('webgpu')` throws: a run that got as far as opening the GPU would say so instead.
  const noGpu = join(dir, 'no-gpu.mjs');
  const stub = `data:text/javascript,${encodeURIComponent('throw new Error("the GPU module was loaded");')}`;
  const hooks = `export async function resolve(s, c, next) { return s === 'webgpu' ? { url: ${JSON.stringify(stub)}, shortCircuit: true } : next(s, c); }`;
  writeFileSync(noGpu, `import { register } from 'node:module';\nregister(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});\n`);
  const corrupt = join(dir, 'corrupt.png');
  writeFileSync(corrupt, readFileSync(content).subarray(0, 60));
  const out = join(dir, 'nogpu.png');
  const cases: [string[], RegExp][] = [
    [base(out, '--content', corrupt), /^painterly: --content: .*corrupt\.png/],
    [base(out, '--style-mask', corrupt, '--content-mask', content), /^painterly: --style-mask: .*corrupt\.png/],
    [base(out, '--pooling', 'maxx'), /^painterly: --pooling: expected max or avg, got "maxx"$/],
    [base(out, '--weights', corrupt), /^painterly: .*corrupt\.png: not a weights file/],
    [base(join(dir, 'no-such-dir', 'x.png')), /^painterly: --out: folder ".*no-such-dir" does not exist$/],
    [base(out, '--log', join(dir, 'no-such-dir', 'log.jsonl')), /^painterly: --log: folder ".*no-such-dir" does not exist$/],
    [base(out, '--size', '20'), /^painterly: the output is 20x15 at size 20/],
    [base(out, '--weights', 'pretrained', '--style-scale', '0.5'), /^painterly: style image 1 is 16x1\d at --style-scale 0.5/],
  ];
  const probe = await binRun(['info'], { nodeArgs: ['--import', noGpu] });
  assert.match(probe.err, /the GPU module was loaded/, 'the stub does stop a command that opens the GPU');
  for (const [argv, want] of cases) {
    const r = await binRun(argv, { nodeArgs: ['--import', noGpu] });
    assert.is(r.code, 1, `${argv.join(' ')}: ${r.err}`);
    assert.is(lines(r.err).length, 1, `${argv.join(' ')}: exactly one line: ${r.err}`);
    assert.match(lines(r.err)[0], want);
  }
  assert.not.ok(existsSync(out));
});

test('a full disk under --log (ENOSPC on its writes): the run finishes, the image is written, one line says so, no crash', async () => {
  // The log's stream is pointed at /dev/full, whose writes fail with ENOSPC as a full disk's do.
  const fs = createRequire(import.meta.url)('node:fs') as typeof import('node:fs');
  const real = fs.createWriteStream;
  const full = existsSync('/dev/full');
  fs.createWriteStream = ((path: string, opts?: object) => {
    if (!String(path).includes('full.jsonl')) return real(path, opts as never);
    if (full) return real('/dev/full', opts as never);
    return new Writable({ write: (_c, _e, cb) => cb(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })) });
  }) as typeof fs.createWriteStream;
  syncBuiltinESMExports();
  const out = join(dir, 'full.png');
  try {
    const r = await cli(base(out, '--iters', '3', '--log', join(dir, 'full.jsonl')));
    assert.is(r.code, 1, r.err);
    assert.ok(existsSync(out), 'the image is written');
    assert.match(r.err, /painterly: --log: cannot write ".*full\.jsonl" \(ENOSPC/);
    assert.not.match(r.err, /\n\s+at /, 'no stack trace');
    assert.not.ok(existsSync(join(dir, 'full.jsonl')));
    assert.equal(readdirSync(dir).filter((f) => f.includes('full.jsonl')), [], 'no temporary log left');
  } finally {
    fs.createWriteStream = real;
    syncBuiltinESMExports();
  }
});

test('a final write that fails keeps the image in the temp folder and says where; a failing --log does not crash', async () => {
  const sub = join(dir, 'vanishing');
  mkdirSync(sub);
  const out = join(sub, 'result.png');
  const r = await cli(base(out, '--iters', '3', '--log', join(sub, 'log.jsonl')), (err) => {
    if (/iter 1\/3/.test(err) && existsSync(sub)) rmSync(sub, { recursive: true }); // the folder goes away mid-run
  });
  assert.is(r.code, 1, r.err);
  const m = /the image was written to (\S+) instead/.exec(r.err);
  assert.ok(m, r.err);
  const img = decodeImage(readFileSync(m![1]), m![1]);
  assert.is(Math.max(img.width, img.height), 32);
  assert.match(r.err, /cannot write image ".*result\.png"/);
  assert.match(r.err, /--log: cannot write ".*log\.jsonl"/);
  assert.not.match(r.err, /\n\s+at /, 'no stack trace');
  rmSync(m![1]);
});

/** Serves `file` with Range support; the body of a range past `stallAfter` stops after its first 64 KiB for `stallMs`. */
async function stallingServer(file: Uint8Array, stallAfter: number, stallMs: number, onStall: () => void): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    req.socket.on('error', () => {});
    res.on('error', () => {});
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '')!;
    const begin = Number(m[1]);
    const end = Math.min(file.length, m[2] ? Number(m[2]) + 1 : file.length);
    res.writeHead(206, { etag: '"v1"', 'content-length': String(end - begin), 'content-range': `bytes ${begin}-${end - 1}/${file.length}` });
    if (begin < stallAfter) { res.end(file.subarray(begin, end)); return; }
    const first = Math.min(end, begin + 65536);
    res.write(file.subarray(begin, first), () => {
      onStall();
      setTimeout(() => { if (!res.destroyed) res.end(file.subarray(first, end)); }, stallMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/vgg19.safetensors`,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

test('Ctrl-C during the weights download stops it at once, keeps the partial file and writes nothing', async () => {
  const file = vggFile(nextSeed(), { dtype: () => 'F16' });
  const headerEnd = 8 + Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  let interruptedAt = 0;
  // Without a working abort the download would finish after 3 s and the run go on.
  const srv = await stallingServer(file, headerEnd, 3000, () => {
    setTimeout(() => { interruptedAt = performance.now(); process.emit('SIGINT'); }, 100);
  });
  const cache = join(dir, 'cache');
  const realFetch = globalThis.fetch;
  const cacheEnv = process.env.PAINTERLY_CACHE;
  process.env.PAINTERLY_CACHE = cache;
  globalThis.fetch = ((_url: string, init?: RequestInit) => realFetch(srv.url, init)) as typeof fetch; // every request to the test server
  const out = join(dir, 'download.png');
  try {
    const r = await cli(base(out, '--weights', 'pretrained'));
    const stoppedAfter = performance.now() - interruptedAt;
    assert.ok(interruptedAt > 0, `the download reached the data: ${r.err}`);
    assert.is(r.code, 130, r.err);
    assert.ok(stoppedAfter < 1500, `stopped ${stoppedAfter.toFixed(0)} ms after Ctrl-C`);
    console.log(`  (download stopped ${stoppedAfter.toFixed(0)} ms after Ctrl-C)`);
    assert.not.ok(existsSync(out), 'the initial image is not written as --out');
    assert.match(r.err, /interrupted during the weights download \(the partial download is kept/);
    const part = readdirSync(cache).find((f) => f.endsWith('.part'));
    assert.ok(part && statSync(join(cache, part)).size > 0, `partial kept: ${readdirSync(cache)}`);
  } finally {
    globalThis.fetch = realFetch;
    if (cacheEnv === undefined) delete process.env.PAINTERLY_CACHE; else process.env.PAINTERLY_CACHE = cacheEnv;
    await srv.close();
  }
});

test('Ctrl-C before the first iteration writes nothing', async () => {
  const out = join(dir, 'early.png');
  let sent = false;
  // --verbose prints the planned memory after the network is loaded and before the first step.
  const r = await cli([...base(out), '--verbose'], (err) => {
    if (!sent && /planned GPU memory at/.test(err)) { sent = true; process.emit('SIGINT'); }
  });
  assert.ok(sent, r.err);
  assert.is(r.code, 130, r.err);
  assert.not.ok(existsSync(out), 'the initial noise is not written');
  assert.match(r.err, /interrupted before the first iteration; nothing written/);
});

test('Ctrl-C mid-run writes the last image without another evaluation', async () => {
  const out = join(dir, 'mid.png');
  const log = join(dir, 'mid.jsonl');
  let sent = false;
  const r = await cli(base(out, '--optimizer', 'adam', '--lr', '0.01', '--iters', '5', '--log', log), (err) => {
    if (!sent && /iter 1\/5/.test(err)) { sent = true; process.emit('SIGINT'); }
  });
  assert.is(r.code, 130, r.err);
  assert.ok(existsSync(out), 'the image after one step is written');
  // Adam evaluates once per step: one step, one evaluation, and no final one.
  const records = readFileSync(log, 'utf8').trim().split('\n').map((x) => JSON.parse(x));
  assert.equal(records.map((x) => [x.eval, x.iter]), [[0, 0]]);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
