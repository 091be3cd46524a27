// The `adain` model (naoto0804/pytorch-AdaIN's architecture: the normalised VGG19 as one nn.Sequential with
// ceil-mode poolings up to relu4_1, and its decoder with no final ReLU) on full-width seeded weights that this test
// writes as the two upstream checkpoints (`vgg_normalised.pth`, `decoder.pth`, zip format, Sequential indices as
// names): `--model DIR` loads them, and the GPU result equals the float64 path through the same descriptions.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { NetWeights } from '../../src/nets/describe.ts';
import { normalisedVgg19, sequentialTensorNames, VGG19_WIDTHS } from '../../src/nets/normalised-vgg.ts';
import { netForward } from '../../src/reference/net.ts';
import { t64 } from '../../src/reference/tensor.ts';
import { encodeStyle, stylizeFeedForward } from '../../src/style/feedforward.ts';
import { ADAIN } from '../../src/style/ff-models.ts';
import { loadFeedForwardModel } from '../../src/style/ff-load.ts';
import { adainMap, featureStats, momentsFromVariance } from '../../src/style/transforms.ts';
import type { RgbImage } from '../../src/image/image.ts';
import { randomNetWeights } from '../../src/weights/net-weights.ts';
import { assertClose, nextSeed, rng, testGpu } from '../helpers.ts';
import { odict, tensor, zipCheckpoint, type PV, type Storage } from '../weights/pth-writer.ts';

const test = suite('adain model');

/** A state dict {"<index>.weight", "<index>.bias"} of NetWeights named by nn.Sequential indices, as a zip .pth. */
function sequentialCheckpoint(w: NetWeights, names: Map<string, string>): Uint8Array {
  const storages: Storage[] = [];
  const entries: [string, PV][] = [];
  for (const [layer, c] of w.convs) {
    for (const [what, data, shape] of [['weight', c.weight, [c.cout, c.cin, c.k, c.k]], ['bias', c.bias, [c.cout]]] as const) {
      const s: Storage = { key: String(storages.length), dtype: 'F32', bytes: new Uint8Array(data.buffer.slice(0)) };
      storages.push(s);
      entries.push([`${names.get(layer)}.${what}`, tensor(s, [...shape])]);
    }
  }
  return zipCheckpoint(odict(entries), storages);
}

test('--model DIR with the adain layout: full-width networks from test-written checkpoints match float64', async () => {
  const spec = ADAIN.level(4);
  const seed = nextSeed();
  // Small weights keep 10 ReLU layers of full-width random features in a sane range.
  const scale = (w: NetWeights): NetWeights => {
    for (const c of w.convs.values()) c.weight.forEach((v, i) => { c.weight[i] = 0.7 * v; });
    return w;
  };
  const enc = scale(randomNetWeights(spec.encoder, seed));
  const dec = scale(randomNetWeights(spec.decoder, seed + 1));
  const dir = mkdtempSync(join(tmpdir(), 'painterly-adain-'));
  // The released vgg_normalised.pth holds the whole Sequential; its first 31 modules are what the encoder reads.
  writeFileSync(join(dir, 'vgg_normalised.pth'), sequentialCheckpoint(enc, sequentialTensorNames(normalisedVgg19('vgg', { widths: VGG19_WIDTHS, ceil: true }))));
  writeFileSync(join(dir, 'decoder.pth'), sequentialCheckpoint(dec, sequentialTensorNames(spec.decoder)));
  const gpu = await testGpu();
  const model = await loadFeedForwardModel(gpu, dir);
  try {
    assert.is(model.spec.name, 'adain');
    const r = rng(nextSeed());
    const img = (w: number, h: number): RgbImage => ({ width: w, height: h, data: Float32Array.from({ length: 3 * w * h }, () => r()) });
    const content = img(24, 16);
    const style = img(20, 20);
    const out = await stylizeFeedForward(gpu, model, content, await encodeStyle(gpu, model, 'adain', [style], [1], [4]), { alpha: 1 });
    // float64: encode both, AdaIN, decode (24x16 is a multiple of 8: no padding).
    const e = [...enc.convs.values()];
    const F = netForward(spec.encoder, e, t64([3, 16, 24], content.data), 'max', 'relu4_1').outs.get('relu4_1')!;
    const Fs = netForward(spec.encoder, e, t64([3, 20, 20], style.data), 'max', 'relu4_1').outs.get('relu4_1')!;
    const c = F.shape[0];
    const mom = (data: Float64Array) => { const s = featureStats(data, c); return momentsFromVariance(s.mean, Array.from({ length: c }, (_, i) => s.cov[i * c + i])); };
    const { a, b } = adainMap(mom(F.data), [mom(Fs.data)], [1], 1);
    const m = F.data.length / c;
    const Y = t64(F.shape, F.data.map((v, i) => a[Math.floor(i / m)] * v + b[Math.floor(i / m)]));
    const last = spec.decoder.layers.at(-1)!.name;
    const want = netForward(spec.decoder, [...dec.convs.values()], Y, 'max', last).outs.get(last)!;
    assertClose(out.data, want.data, 2e-3, 'adain model, whole path');
  } finally {
    model.destroy();
  }
});

test.run();
