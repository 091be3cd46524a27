// `painterly stylize --content-mask --style-mask` (semantic masks, Luan et al. 2017) end to end on tiny images with
// random weights, the library's contentMask/styleMask, and bad masks refused in one line.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { cli } from './run-cli.ts';
import { Gpu } from '../../src/gpu/device.ts';
import { decodeImage } from '../../src/image/codec.ts';
import { toRgba, type RgbImage } from '../../src/image/image.ts';
import { readImage, writeImage } from '../../src/image/node-io.ts';
import { fitLongestSide } from '../../src/image/resize.ts';
import { Painterly } from '../../src/painterly.ts';
import { testGpu } from '../helpers.ts';

const test = suite('painterly masks');
const dir = mkdtempSync(join(tmpdir(), 'painterly-masks-'));
const examples = new URL('../../examples/', import.meta.url).pathname;
const content = join(dir, 'content.png');
const style = join(dir, 'style.png');
const cmask = join(dir, 'content-mask.png');
const smask = join(dir, 'style-mask.jpg');


function base(out: string, ...more: string[]): string[] {
  const flags = new Map<string, string>([['--content', content], ['--style', style], ['--out', out], ['--size', '32'],
    ['--iters', '2'], ['--weights', 'random:1'], ['--print-every', '0'], ['--content-mask', cmask], ['--style-mask', smask]]);
  // A value of '' drops the flag.
  for (let i = 0; i < more.length; i += 2) if (more[i + 1] === '') flags.delete(more[i]); else flags.set(more[i], more[i + 1]);
  return ['stylize', ...[...flags].flat()];
}

/** An image painted by f(x, y) -> 0-255 RGB. */
function paint(w: number, h: number, f: (x: number, y: number) => number[]): RgbImage {
  const n = w * h, data = new Float32Array(3 * n);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) f(x, y).forEach((v, c) => { data[c * n + y * w + x] = v / 255; });
  return { width: w, height: h, data };
}

let contentImg: RgbImage, styleImg: RgbImage;
test.before(async () => {
  await testGpu();
  contentImg = fitLongestSide(await readImage(join(examples, 'tubingen.jpg')), 48);
  styleImg = fitLongestSide(await readImage(join(examples, 'starry_night.jpg')), 40);
  await writeImage(content, contentImg);
  await writeImage(style, styleImg);
  // Content (at another size than the image): sky blue on top, red below, a green patch the style has not got.
  await writeImage(cmask, paint(96, 72, (x, y) => (y < 30 ? [0, 0, 255] : x > 70 && y > 50 ? [0, 200, 0] : [255, 0, 0])));
  // Style: blue above, red below (JPEG: the colours are noisy).
  await writeImage(smask, paint(80, 50, (_, y) => (y < 25 ? [0, 0, 255] : [255, 0, 0])));
});

test('runs with masks: output written, unmatched colours said once on stderr, the result differs from the unmasked one', async () => {
  const out = join(dir, 'masked.png'), plain = join(dir, 'plain.png');
  const r = await cli(...base(out));
  assert.is(r.code, 0, r.err);
  const said = r.err.split('\n').filter((l) => /content-mask colours #00c800 are not in the style mask: those regions get no style loss/.test(l));
  assert.is(said.length, 1, r.err);
  const img = decodeImage(readFileSync(out), out);
  assert.equal([img.width, img.height], [32, 24]);
  const p = await cli(...base(plain, '--content-mask', '', '--style-mask', ''));
  assert.is(p.code, 0, p.err);
  const a = decodeImage(readFileSync(plain), plain);
  let diff = 0;
  for (let i = 0; i < a.data.length; i++) diff = Math.max(diff, Math.abs(a.data[i] - img.data[i]));
  assert.ok(diff > 1 / 255, `masks change the result (max difference ${diff})`);
});

test('the library: contentMask and styleMask as RGBA pixels give the CLI\'s result', async () => {
  const shared = await testGpu();
  const p = new Painterly(await Gpu.open(undefined, null, { device: shared.device }), { readImage });
  const rgba = async (f: string) => { const m = await readImage(f); return { data: toRgba(m), width: m.width, height: m.height }; };
  const r = await p.stylize({ content: contentImg, style: styleImg, size: 32, iters: 2, weights: 'random:1',
    contentMask: await rgba(cmask), styleMask: await rgba(smask) });
  const cliOut = decodeImage(readFileSync(join(dir, 'masked.png')), 'masked.png');
  let diff = 0;
  for (let i = 0; i < cliOut.data.length; i++) diff = Math.max(diff, Math.abs(cliOut.data[i] - r.image.data[i]));
  assert.ok(diff <= 1 / 255 + 1e-6, `library = CLI (max difference ${diff})`);
});

test('bad masks: one line naming the option, exit 1, nothing written', async () => {
  const out = join(dir, 'bad.png');
  const corrupt = join(dir, 'corrupt.png');
  writeFileSync(corrupt, readFileSync(cmask).subarray(0, 50));
  const cases: [string[], RegExp][] = [
    [base(out, '--style-mask', ''), /^painterly: --content-mask: needs --style-mask too/],
    [base(out, '--content-mask', join(dir, 'missing.png')), /^painterly: --content-mask: .*missing\.png.*no such file/],
    [base(out, '--style-mask', corrupt), /^painterly: --style-mask: .*corrupt\.png/],
    [base(out, '--style', `${style},${style}`), /^painterly: --style-mask: expected one style image with semantic masks, got 2/],
    [base(out, '--method', 'adain', '--weights', '', '--iters', ''), /^painterly: --content-mask: does not apply to --method adain/],
  ];
  for (const [argv, want] of cases) {
    const r = await cli(...argv);
    assert.is(r.code, 1, `${argv.join(' ')} should fail`);
    const lines = r.err.trim().split('\n').filter((l) => l.trim());
    assert.is(lines.length, 1, r.err);
    assert.match(lines[0], want);
  }
  assert.not.ok(existsSync(out));
});

test.run();
