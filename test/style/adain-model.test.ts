// The `adain` model (naoto0804/pytorch-AdaIN's architecture: the normalised VGG19 as one nn.Sequential with
// ceil-mode poolings up to relu4_1, and its decoder with no final ReLU) on full-width seeded weights that this test
// writes as the two upstream checkpoints (`vgg_normalised.pth`, `decoder.pth`, zip format, Sequential indices as
// names; adain-checkpoints.ts): `--model DIR` loads them, and the GPU result equals the float64 path through the
// same descriptions.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeStyle, stylizeFeedForward } from '../../src/style/feedforward.ts';
import { loadFeedForwardModel } from '../../src/style/ff-load.ts';
import type { RgbImage } from '../../src/image/image.ts';
import { assertClose, nextSeed, rng, testGpu } from '../helpers.ts';
import { adainFloat64, writeAdainFolder } from './adain-checkpoints.ts';

const test = suite('adain model');

test('--model DIR with the adain layout: full-width networks from test-written checkpoints match float64', async () => {
  const folder = writeAdainFolder(nextSeed());
  const gpu = await testGpu();
  const model = await loadFeedForwardModel(gpu, folder.dir);
  try {
    assert.is(model.spec.name, 'adain');
    const r = rng(nextSeed());
    const img = (w: number, h: number): RgbImage => ({ width: w, height: h, data: Float32Array.from({ length: 3 * w * h }, () => r()) });
    const content = img(24, 16);
    const style = img(20, 20);
    const out = await stylizeFeedForward(gpu, model, content, await encodeStyle(gpu, model, 'adain', [style], [1], [4]), { alpha: 1 });
    // float64: encode both, AdaIN, decode (24x16 is a multiple of 8: no padding).
    assertClose(out.data, adainFloat64(folder, content, [style]), 2e-3, 'adain model, whole path');
  } finally {
    model.destroy();
  }
});

test.run();
