// The library's feed-forward API on the real wct-16x networks (../shared/models): a style encoded once with
// Painterly.encodeStyle and reused by stylizeWithStyle for several content images (video frames, a webcam) gives,
// for each, exactly what a full Painterly.stylize({ method }) gives, the method's default α included; and
// --preserve-colors for the feed-forward methods.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Gpu } from '../../src/gpu/device.ts';
import { rgbToYiq } from '../../src/image/color.ts';
import { readImage } from '../../src/image/node-io.ts';
import { fitLongestSide } from '../../src/image/resize.ts';
import { Painterly } from '../../src/painterly.ts';
import { requireShared, testGpu } from '../helpers.ts';

const test = suite('feed-forward library API');
const examples = new URL('../../examples/', import.meta.url).pathname;
const contents = [`${examples}tubingen.jpg`, `${examples}the_scream.jpg`];
const style = `${examples}starry_night.jpg`;

for (const method of ['wct', 'adain'] as const) {
  test(`${method}: encodeStyle once, stylizeWithStyle per content image = stylize({ method }) of each`, async () => {
    const model = requireShared('models/wct-16x');
    if (!model) return;
    const shared = await testGpu();
    const p = new Painterly(await Gpu.open(undefined, null, { device: shared.device }), { readImage });
    try {
      const enc = await p.encodeStyle({ method, model, style, styleSize: 64 });
      assert.equal(enc.levels, [5, 4, 3, 2, 1]);
      // Two images and two sizes (50: not a multiple of 16, padded and cropped back) with one encoded style.
      for (const [i, size] of [[0, 50], [1, 56]]) {
        const frame = await p.stylizeWithStyle(contents[i], enc, { size });
        const full = await p.stylize({ content: contents[i], style: [style], method, model, size, styleSize: 64 });
        assert.equal([frame.width, frame.height], [full.width, full.height], `content ${i}: size`);
        assert.is(Math.max(frame.width, frame.height), size);
        let worst = 0;
        for (let k = 0; k < full.image.data.length; k++) worst = Math.max(worst, Math.abs(frame.image.data[k] - full.image.data[k]));
        assert.ok(worst <= 1e-6, `content ${i} at ${size} px: max |stylizeWithStyle − stylize| ${worst}`);
      }
    } finally {
      p.destroy();
    }
  });
}

test('wct with preserveColors: luminance keeps the content\'s chrominance, histogram changes the result', async () => {
  const model = requireShared('models/wct-16x');
  if (!model) return;
  const shared = await testGpu();
  const p = new Painterly(await Gpu.open(undefined, null, { device: shared.device }), { readImage });
  try {
    const run = (preserveColors: 'none' | 'luminance' | 'histogram') =>
      p.stylize({ content: contents[0], style: [style], method: 'wct', model, size: 50, styleSize: 64, preserveColors });
    const [plain, lum, hist] = [await run('none'), await run('luminance'), await run('histogram')];
    const content = rgbToYiq(fitLongestSide(await readImage(contents[0]), 50));
    const n = content.width * content.height;
    // Pixels whose I and Q equal the content's (clamping to [0, 1] may move a few).
    const sameChroma = (img: typeof plain) => {
      const yiq = rgbToYiq(img.image);
      let same = 0;
      for (let k = n; k < 3 * n; k++) if (Math.abs(yiq.data[k] - content.data[k]) < 1e-4) same++;
      return same / (2 * n);
    };
    assert.ok(sameChroma(lum) > 0.9, `luminance: ${(100 * sameChroma(lum)).toFixed(1)} % of I, Q values are the content's`);
    assert.ok(sameChroma(plain) < 0.2, `none: ${(100 * sameChroma(plain)).toFixed(1)} % of I, Q values are the content's`);
    let diff = 0;
    for (let k = 0; k < plain.image.data.length; k++) diff = Math.max(diff, Math.abs(hist.image.data[k] - plain.image.data[k]));
    assert.ok(diff > 0.05, `histogram changes the result (max difference ${diff})`);
  } finally {
    p.destroy();
  }
});

test.run();
