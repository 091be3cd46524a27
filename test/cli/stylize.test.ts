// `painterly stylize` end to end on tiny images with random weights: every option runs, outputs appear atomically,
// the log has the documented shape, and bad input gets a one-line error with exit code 1.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { main } from '../../src/cli/main.ts';
import { decodeImage } from '../../src/image/codec.ts';
import { readImage, writeImage } from '../../src/image/node-io.ts';
import { fitLongestSide } from '../../src/image/resize.ts';
import { writeSafetensors, f32Bytes } from '../../src/weights/safetensors.ts';
import { convsUpTo, VGG19_CONVS } from '../../src/weights/layout.ts';
import { randomConvs } from '../../src/weights/random.ts';
import { testGpu } from '../helpers.ts';

const test = suite('painterly stylize');
const dir = mkdtempSync(join(tmpdir(), 'painterly-cli-'));
const examples = new URL('../../examples/', import.meta.url).pathname;
const content = join(dir, 'content.png');
const style = join(dir, 'style.png');
const style2 = join(dir, 'style2.jpg');

/** Runs the CLI in-process, capturing what it prints. */
async function cli(...argv: string[]): Promise<{ code: number; err: string; out: string }> {
  const err: string[] = [];
  const out: string[] = [];
  const [e, l] = [console.error, console.log];
  const w = process.stderr.write;
  console.error = (...a: unknown[]) => { err.push(a.join(' ')); };
  console.log = (...a: unknown[]) => { out.push(a.join(' ')); };
  process.stderr.write = ((s: string) => { err.push(String(s)); return true; }) as typeof process.stderr.write;
  try {
    const code = await main(argv);
    return { code, err: err.join('\n'), out: out.join('\n') };
  } finally {
    console.error = e; console.log = l; process.stderr.write = w;
  }
}

/** The arguments of a small run; later flags replace the defaults (the parser refuses a flag given twice). */
function base(out: string, ...more: string[]): string[] {
  const flags = new Map<string, string>([['--content', content], ['--style', style], ['--out', out], ['--size', '32'],
    ['--iters', '2'], ['--weights', 'random:1'], ['--print-every', '1']]);
  for (let i = 0; i < more.length; i += 2) flags.set(more[i], more[i + 1]);
  return ['stylize', ...[...flags].flat()];
}

test.before(async () => {
  await testGpu(); // shares the test run's device warm-up
  await writeImage(content, fitLongestSide(await readImage(join(examples, 'tubingen.jpg')), 48));
  await writeImage(style, fitLongestSide(await readImage(join(examples, 'starry_night.jpg')), 40));
  await writeImage(style2, fitLongestSide(await readImage(join(examples, 'the_scream.jpg')), 40));
});

test('writes the output at the requested size, a JSONL log from iteration 0 to --iters, and no temporary files', async () => {
  const out = join(dir, 'basic.png');
  const log = join(dir, 'basic.jsonl');
  const r = await cli(...base(out, '--log', log, '--iters', '3'));
  assert.is(r.code, 0, r.err);
  const img = decodeImage(readFileSync(out), out);
  assert.is(Math.max(img.width, img.height), 32);
  assert.is(img.width, 32); // the content is landscape
  const lines = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(Object.keys(lines[0]).sort(), ['content', 'eval', 'iter', 'seconds', 'style', 'total', 'tv']);
  assert.is(lines[0].iter, 0);
  assert.is(lines[0].eval, 0);
  assert.is(lines.at(-1).iter, 3);
  for (let i = 1; i < lines.length; i++) assert.ok(lines[i].iter >= lines[i - 1].iter && lines[i].eval === i);
  assert.match(r.err, /NOT pretrained/);
  assert.match(r.err, /iter 3\/3/);
  assert.equal(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
});

test('--save-every writes numbered intermediate images', async () => {
  const out = join(dir, 'save.png');
  const r = await cli(...base(out, '--save-every', '1', '--iters', '3'));
  assert.is(r.code, 0, r.err);
  for (const f of ['save-1.png', 'save-2.png', 'save.png']) assert.ok(existsSync(join(dir, f)), f);
  assert.not.ok(existsSync(join(dir, 'save-3.png')), 'the final image is OUT itself');
});

const variants: [string, string[]][] = [
  ['adam', ['--optimizer', 'adam', '--lr', '0.05']],
  // Plain SGD takes raw gradient steps, so its lr depends on the loss scale (the default weights would blow it up).
  ['sgd with max pooling', ['--optimizer', 'sgd', '--pooling', 'max', '--style-weight', '1', '--tv-weight', '0', '--lr', '1e-4']],
  ['lbfgs strong-wolfe, small history', ['--line-search', 'strong-wolfe', '--lbfgs-history', '3']],
  ['init content, luminance only', ['--init', 'content', '--preserve-colors', 'luminance']],
  ['init style, histogram colours', ['--init', 'style', '--preserve-colors', 'histogram']],
  ['init from a file, two scales', ['--init', style2, '--scales', '24,32', '--size', '32', '--style-layers', 'relu1_1,relu3_1']],
  ['two styles blended, style scale', ['--style', `${style},${style2}`, '--style-blend-weights', '3,1', '--style-scale', '1.5']],
  ['custom layers and weights, scale-free', ['--content-layers', 'conv3_1,relu2_2', '--style-layers', 'relu1_1,relu2_1',
    '--style-layer-weights', '1,0.5', '--loss-normalization', 'scale-free', '--content-weight', '2', '--style-weight', '10', '--tv-weight', '0']],
  ['jpeg output, seed', ['--seed', '7']],
];
for (const [name, extra] of variants) {
  test(`runs with ${name}`, async () => {
    const out = join(dir, `${name.replace(/\W+/g, '-')}${name === 'jpeg output, seed' ? '.jpg' : '.png'}`);
    const r = await cli(...base(out, ...extra));
    assert.is(r.code, 0, r.err);
    const img = decodeImage(readFileSync(out), out);
    assert.is(Math.max(img.width, img.height), 32, name);
  });
}

test('--weights FILE (a torchvision-named safetensors file) gives exactly the result of the same weights built in memory', async () => {
  const file = join(dir, 'vgg19-random1.safetensors');
  const convs = randomConvs(1, convsUpTo('conv5_1'));
  writeFileSync(file, writeSafetensors(convs.flatMap((c) => {
    const i = VGG19_CONVS.find((v) => v.name === c.name)!.index;
    return [
      { name: `features.${i}.weight`, dtype: 'F32', shape: [c.cout, c.cin, c.k, c.k], data: f32Bytes(c.weight) },
      { name: `features.${i}.bias`, dtype: 'F32', shape: [c.cout], data: f32Bytes(c.bias) },
    ];
  })));
  const a = join(dir, 'from-file.png'), b = join(dir, 'from-random.png');
  const r = await cli(...base(a, '--weights', file));
  assert.is(r.code, 0, r.err);
  assert.not.match(r.err, /NOT pretrained/);
  assert.is((await cli(...base(b))).code, 0);
  assert.ok(readFileSync(a).equals(readFileSync(b)), 'same weights, same image');
});

test('the same seed gives the same image; another seed another', async () => {
  const a = join(dir, 'seed-a.png'), b = join(dir, 'seed-b.png'), c = join(dir, 'seed-c.png');
  assert.is((await cli(...base(a, '--seed', '3'))).code, 0);
  assert.is((await cli(...base(b, '--seed', '3'))).code, 0);
  assert.is((await cli(...base(c, '--seed', '4'))).code, 0);
  assert.ok(readFileSync(a).equals(readFileSync(b)), 'deterministic');
  assert.not.ok(readFileSync(a).equals(readFileSync(c)), 'seed matters');
});

test('bad input: one-line errors naming the file or option, exit code 1', async () => {
  const out = join(dir, 'bad.png');
  const corrupt = join(dir, 'corrupt.png');
  writeFileSync(corrupt, Buffer.concat([readFileSync(content).subarray(0, 60)]));
  const wrongShape = join(dir, 'wrong.safetensors');
  writeFileSync(wrongShape, writeSafetensors([
    { name: 'features.0.weight', dtype: 'F32', shape: [64, 3, 5, 5], data: f32Bytes(new Float32Array(64 * 3 * 25)) },
    { name: 'features.0.bias', dtype: 'F32', shape: [64], data: f32Bytes(new Float32Array(64)) },
  ]));
  const cases: [string[], RegExp][] = [
    [base(out, '--content', join(dir, 'missing.png')), /missing\.png.*no such file/],
    [base(out, '--content', corrupt), /corrupt\.png/],
    [base(out, '--pooling', 'maxx'), /--pooling: expected max or avg, got "maxx"/],
    [base(out, '--style-layers', 'relu6_1'), /--style-layers: unknown layer "relu6_1"/],
    [base(out, '--bogus', '1'), /--bogus/],
    [base(out, '--iters', '-3'), /--iters/],
    [base(out, '--weights', join(dir, 'nope.safetensors')), /nope\.safetensors/],
    [base(out, '--weights', wrongShape), /features\.0\.weight.*\[64,3,3,3\]|conv1_1/],
    [base(join(dir, 'no-such-dir', 'x.png')), /--out: folder/],
    [base(join(dir, 'x.gif')), /--out/],
    [base(out, '--style-scale', '0.5'), /style image 1 is 16x10 at --style-scale 0.5: relu5_1 needs at least 16x16/],
    [['stylize', '--style', style, '--out', out], /--content/],
    [['frobnicate'], /unknown command "frobnicate"/],
  ];
  for (const [argv, want] of cases) {
    const r = await cli(...argv);
    assert.is(r.code, 1, `${argv.join(' ')} should fail`);
    const msg = r.err.trim().split('\n').filter((l) => l.startsWith('painterly:')).pop() ?? '';
    assert.match(msg, want, `${argv.join(' ')} -> ${r.err}`);
    assert.not.match(r.err, /\n\s+at /, 'no stack trace without --verbose');
  }
  assert.not.ok(existsSync(out), 'no output after a failure');
});

test('a loss that becomes non-finite stops cleanly: last good image written, clear message, exit code 1', async () => {
  const out = join(dir, 'diverged.png');
  const r = await cli(...base(out, '--optimizer', 'sgd', '--lr', '1e30', '--iters', '4'));
  assert.is(r.code, 1, r.err);
  assert.match(r.err, /non-finite.*kept the last good image/);
  const img = decodeImage(readFileSync(out), out);
  assert.ok(img.data.every(Number.isFinite), 'the written image is finite');
});

test('painterly info shows the adapter, its limits and the weight cache', async () => {
  const r = await cli('info');
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /adapter: /);
  assert.match(r.out, /maxStorageBufferBindingSize\s+\d+/);
  assert.match(r.out, /weights cache: /);
  assert.match(r.out, /kernel variants \(tuning (off|cached|on); .*tuning\.json\):/);
});

test('painterly tune refuses an unknown kernel or argument in one line', async () => {
  const bad = await cli('tune', '--kernel', 'frob');
  assert.is(bad.code, 1);
  assert.match(bad.err, /^painterly: --kernel: expected one of matmul, gram, conv_direct, got "frob"$/);
  const unknown = await cli('tune', '--fast');
  assert.is(unknown.code, 1);
  assert.match(unknown.err, /tune: unknown argument "--fast"/);
});

test('--help documents every option with its default', async () => {
  const r = await cli('stylize', '--help');
  assert.is(r.code, 0);
  for (const f of ['--size', '--style-scale', '--style-blend-weights', '--content-weight', '--style-weight', '--tv-weight',
    '--content-layers', '--style-layers', '--style-layer-weights', '--pooling', '--init', '--optimizer', '--lr', '--iters',
    '--lbfgs-history', '--line-search', '--weights', '--preserve-colors', '--scales', '--seed', '--save-every',
    '--print-every', '--log', '--verbose']) assert.ok(r.out.includes(f), f);
});

test('Ctrl-C writes the current image and exits (separate process)', async () => {
  const out = join(dir, 'interrupted.png');
  const bin = new URL('../../bin/painterly.js', import.meta.url).pathname;
  const child = spawn(process.execPath, [bin, ...base(out, '--iters', '500')], { env: { ...process.env, PAINTERLY_FROM_SOURCE: '1' } });
  let err = '';
  const code = await new Promise<number | null>((resolve) => {
    child.stderr.on('data', (d) => {
      err += d;
      if (/iter 2\/500/.test(err) && !child.killed) child.kill('SIGINT');
    });
    child.on('exit', (c) => resolve(c));
  });
  assert.is(code, 130, err);
  assert.ok(existsSync(out), 'image written on interrupt');
  assert.match(err, /interrupted/);
});

test.run();
