// `painterly info --size N` (the planned GPU bytes of a default run) and `stylize --max-memory`.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { main } from '../../src/cli/main.ts';
import { parseStylizeArgs } from '../../src/cli/args.ts';
import { nextSeed } from '../helpers.ts';
import { serve } from '../weights/range-server.ts';
import { vggFile } from '../weights/weights-helpers.ts';

const test = suite('cli memory');
const examples = new URL('../../examples/', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'painterly-mem-'));

async function cli(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [], err: string[] = [];
  const [l, e, w] = [console.log, console.error, process.stderr.write];
  console.log = (...a: unknown[]) => { out.push(a.join(' ')); };
  console.error = (...a: unknown[]) => { err.push(a.join(' ')); };
  process.stderr.write = ((s: string) => { err.push(String(s)); return true; }) as typeof process.stderr.write;
  try {
    return { code: await main(argv), out, err };
  } finally {
    [console.log, console.error, process.stderr.write] = [l, e, w];
  }
}

const mib = (line: string, what: RegExp) => Number(new RegExp(`${what.source}\\s+([\\d.]+) (MiB|GiB)`).exec(line)?.[1] ?? NaN);

test('info --size N prints the planned GPU memory of a default run, growing with N', async () => {
  const small = await cli(['info', '--size', '64']);
  assert.is(small.code, 0, small.err.join('\n'));
  assert.match(small.out[0], /^GPU memory of a default Gatys run at 64x64 \(vgg19, L-BFGS history 100\): [\d.]+ (MiB|GiB) at the peak$/);
  assert.ok(mib(small.out.join('\n'), /network weights/) > 400, 'VGG19 to conv5_1 with its rearranged weights');
  const big = await cli(['info', '--size=256']);
  assert.ok(mib(big.out.join('\n'), /activations, gradients, scratch/) > 4 * mib(small.out.join('\n'), /activations, gradients, scratch/));
  const bad = await cli(['info', '--size', '9']);
  assert.is(bad.code, 1);
  assert.equal(bad.err, ['painterly: --size: expected an integer from 16 to 16384, got "9"']);
  const unknown = await cli(['info', '--sise', '9']);
  assert.equal(unknown.err, ['painterly: info: unknown argument "--sise"; expected --size N']);
});

test('--max-memory: parsed with suffixes; an impossible budget is one line on stderr and exit code 1', async () => {
  const base = ['--content', 'c.jpg', '--style', 's.jpg', '--out', 'o.png'];
  assert.is(parseStylizeArgs([...base, '--max-memory', '1.5G']).options!.maxMemory, 1.5 * 2 ** 30);
  assert.is(parseStylizeArgs([...base, '--max-memory=512M']).options!.maxMemory, 512 * 2 ** 20);
  assert.throws(() => parseStylizeArgs([...base, '--max-memory', 'lots']), /^--max-memory: expected a byte count such as 512M or 2G, got "lots"$/);
  const r = await cli(['stylize', '--content', join(examples, 'tubingen.jpg'), '--style', join(examples, 'starry_night.jpg'),
    '--out', join(dir, 'o.png'), '--weights', 'random:1', '--size', '64', '--iters', '1', '--max-memory', '1M']);
  assert.is(r.code, 1);
  // Exactly one line: the weights notice comes only with a result, never ahead of an error.
  const lines = r.err.join('\n').split('\n').filter((s) => s.trim() !== '');
  assert.is(lines.length, 1, r.err.join('\n'));
  assert.match(lines[0], /^painterly: a 64x\d+ run needs at least [\d.]+ MiB of GPU memory.*past the budget of 1\.0 MiB; use --max-memory \d+M or more/);
});

test('--max-memory impossible with --weights pretrained: refused before any download (the server sees no request)', async () => {
  const srv = await serve(vggFile(nextSeed(), { dtype: () => 'F16' }));
  const realFetch = globalThis.fetch;
  const cacheEnv = process.env.PAINTERLY_CACHE;
  process.env.PAINTERLY_CACHE = mkdtempSync(join(dir, 'cache-')); // empty: pretrained weights would be downloaded
  let fetched = 0;
  globalThis.fetch = ((_url: string, init?: RequestInit) => { fetched++; return realFetch(srv.url, init); }) as typeof fetch;
  try {
    const r = await cli(['stylize', '--content', join(examples, 'tubingen.jpg'), '--style', join(examples, 'starry_night.jpg'),
      '--out', join(dir, 'p.png'), '--weights', 'pretrained', '--size', '64', '--iters', '1', '--max-memory', '1M']);
    assert.is(r.code, 1);
    const lines = r.err.join('\n').split('\n').filter((s) => s.trim() !== '');
    assert.is(lines.length, 1, r.err.join('\n'));
    assert.match(lines[0], /^painterly: a 64x\d+ run needs at least [\d.]+ MiB of GPU memory.*past the budget of 1\.0 MiB/);
    assert.is(fetched, 0, 'no fetch');
    assert.equal(srv.requests, [], 'the server saw no request');
  } finally {
    globalThis.fetch = realFetch;
    if (cacheEnv === undefined) delete process.env.PAINTERLY_CACHE; else process.env.PAINTERLY_CACHE = cacheEnv;
    await srv.close();
  }
});

test.run();
