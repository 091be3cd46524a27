// `painterly stylize --method wct|adain` and `--backbone vgg19-16x` end to end with the real wct-16x networks from
// ../shared/models at small sizes, `--method adain` with the AdaIN architecture on checkpoints this test writes
// (against float64), and the one-line errors of options given to the wrong method.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { cli } from './run-cli.ts';
import { readImage } from '../../src/image/node-io.ts';
import { fitLongestSide } from '../../src/image/resize.ts';
import { nextSeed, requireShared, SHARED_DIR } from '../helpers.ts';
import { adainFloat64, mapDecoderOutput, writeAdainFolder } from '../style/adain-checkpoints.ts';

const test = suite('painterly stylize methods');
const dir = mkdtempSync(join(tmpdir(), 'painterly-methods-'));
const examples = new URL('../../examples/', import.meta.url).pathname;
const models = join(SHARED_DIR, 'models', 'wct-16x');
const content = join(examples, 'tubingen.jpg');
const style = join(examples, 'starry_night.jpg');


/** ../shared/models/wct-16x is there; otherwise the test fails, or is listed as skipped (test/helpers.ts requireShared). */
const needModels = () => requireShared('models/wct-16x') !== undefined;

for (const method of ['wct', 'adain']) {
  test(`--method ${method} --model DIR writes an image of the content's size`, async () => {
    if (!needModels()) return;
    const out = join(dir, `${method}.png`);
    const r = await cli('stylize', '--method', method, '--model', models, '--content', content, '--style', style, '--size', '70', '--out', out);
    assert.is(r.code, 0, r.err);
    const img = await readImage(out);
    assert.equal([img.width, img.height], [70, 53]); // 1024x768 fitted to 70: not a multiple of 16, padded and cropped
  });
}

test('--method adain --model DIR: the AdaIN layout on test-written full-width checkpoints, the PNG equals float64', async () => {
  const folder = writeAdainFolder(nextSeed());
  // What the CLI stylises: the images fitted to --size (and --style-size, by default the same); 32x24 is a multiple of 8.
  const size = 32;
  const c = fitLongestSide(await readImage(content), size);
  const s = fitLongestSide(await readImage(style), size);
  const v = adainFloat64(folder, c, [s]);
  // Spread the decoder's output over [0.1, 0.9] (its last conv: the map is exact in float64 too), so the 8-bit PNG
  // resolves it.
  let [lo, hi] = [Infinity, -Infinity];
  for (const x of v) { lo = Math.min(lo, x); hi = Math.max(hi, x); }
  const gain = 0.8 / (hi - lo);
  mapDecoderOutput(folder, gain, 0.1 - gain * lo);
  const want = v.map((x) => gain * (x - lo) + 0.1);
  const out = join(dir, 'adain-written.png');
  const t0 = performance.now();
  const r = await cli('stylize', '--method', 'adain', '--model', folder.dir, '--content', content, '--style', style, '--size', String(size), '--out', out);
  console.log(`  (painterly stylize --method adain at ${size} px: ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  assert.is(r.code, 0, r.err);
  assert.match(r.err, /wrote .*adain-written\.png \(32x24, 0 iterations, .*weights: adain from /);
  const img = await readImage(out);
  assert.equal([img.width, img.height], [c.width, c.height]);
  // 8 bits: half a step of rounding, plus the GPU's float32 error (2e-3 of the span, as in adain-model.test.ts).
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(img.data[i] - want[i]));
  assert.ok(worst <= 0.5 / 255 + 2e-3, `worst |PNG - float64| ${worst.toExponential(2)} (${(worst * 255).toFixed(2)} / 255)`);
});

test('--backbone vgg19-16x --weights FILE.pth runs Gatys on the real encoder', async () => {
  if (!needModels()) return;
  const out = join(dir, 'gatys16x.png');
  const r = await cli('stylize', '--backbone', 'vgg19-16x', '--weights', join(models, 'wct_se_16x_new/20191109-211322_E20.pth'),
    '--content', content, '--style', style, '--size', '64', '--iters', '3', '--init', 'content', '--out', out, '--print-every', '0');
  assert.is(r.code, 0, r.err);
  assert.match(r.err, /vgg19-16x weights from/);
  assert.ok(existsSync(out));
});

test('options of the other method, unknown methods and models, wrong checkpoints: one line, exit 1', async () => {
  const cases: [string[], RegExp][] = [
    [['--method', 'wct', '--iters', '5'], /^painterly: --iters: does not apply to --method wct \(it is for gatys\)$/],
    [['--method', 'adain', '--style-weight', '5'], /^painterly: --style-weight: does not apply to --method adain/],
    [['--alpha', '0.5'], /^painterly: --alpha: does not apply to --method gatys \(it is for wct and adain\)$/],
    [['--method', 'nst'], /^painterly: --method: expected gatys, wct or adain, got "nst"$/],
    [['--method', 'wct', '--alpha', '2'], /^painterly: --alpha: expected a number from 0 to 1, got 2$/],
    [['--method', 'wct', '--levels', '6'], /^painterly: --levels: expected levels from 1 to 5, got 6$/],
    [['--method', 'wct', '--model', join(dir, 'nothing-here')], /^painterly: --model: ".*nothing-here" is neither a model name/],
    [["--backbone", "resnet"], /^painterly: --backbone: expected vgg19, vgg19-16x, vgg19_bn, resnet50 or densenet121, got "resnet"$/],
    [['--backbone', 'vgg19-16x', '--weights', join(examples, 'tubingen.jpg')], /tubingen\.jpg: not a weights file/],
  ];
  for (const [flags, want] of cases) {
    const r = await cli('stylize', '--content', content, '--style', style, '--out', join(dir, 'x.png'), '--size', '32', ...flags);
    assert.is(r.code, 1, `${flags.join(' ')}: ${r.err}`);
    const lines = r.err.trim().split('\n').filter((x) => !/^Warning: maxDynamic/.test(x));
    assert.is(lines.length, 1, `${flags.join(' ')}: ${r.err}`);
    assert.match(lines[0], want);
  }
});

test('bad inputs are refused before the GPU: images decoded, weight files sniffed, model folders checked', async () => {
  const { writeFileSync } = await import('node:fs');
  const bad = join(dir, 'bad.png');
  writeFileSync(bad, 'not an image at all');
  const cases: [string[], RegExp][] = [
    [['--content', bad, '--style', style, '--weights', 'random:1'], /^painterly: --content: image ".*bad\.png": not a PNG or JPEG file/],
    [['--content', content, '--style', `${style},${bad}`, '--weights', 'random:1'], /^painterly: --style: image ".*bad\.png"/],
    [['--content', content, '--style', style, '--weights', bad], /bad\.png: not a weights file/],
    [['--content', content, '--style', style, '--method', 'adain', '--model', examples], /expected a folder laid out like upstream/],
  ];
  for (const [flags, want] of cases) {
    const r = await cli('stylize', '--out', join(dir, 'y.png'), '--size', '32', ...flags);
    const lines = r.err.trim().split('\n').filter((x) => !/^Warning: maxDynamic/.test(x));
    assert.is(r.code, 1, r.err);
    assert.is(lines.length, 1, `exactly one line (no "NOT pretrained" notice first): ${r.err}`);
    assert.match(lines[0], want);
  }
});

test.run();
