// Test-written AdaIN checkpoints (naoto0804/pytorch-AdaIN's layout: `vgg_normalised.pth` and `decoder.pth` in a
// folder, zip format, nn.Sequential indices as names) on full-width seeded weights, and the float64 AdaIN path
// through the same descriptions: for the library test (adain-model.test.ts) and the CLI test (cli/methods.test.ts).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NetWeights } from '../../src/nets/describe.ts';
import { normalisedVgg19, sequentialTensorNames, VGG19_WIDTHS } from '../../src/nets/normalised-vgg.ts';
import { netForward } from '../../src/reference/net.ts';
import { t64 } from '../../src/reference/tensor.ts';
import { ADAIN } from '../../src/style/ff-models.ts';
import { adainMap, featureStats, momentsFromVariance } from '../../src/style/transforms.ts';
import type { RgbImage } from '../../src/image/image.ts';
import { randomNetWeights } from '../../src/weights/net-weights.ts';
import { odict, tensor, zipCheckpoint, type PV, type Storage } from '../weights/pth-writer.ts';

/** A state dict {"<index>.weight", "<index>.bias"} of NetWeights named by nn.Sequential indices, as a zip .pth. */
export function sequentialCheckpoint(w: NetWeights, names: Map<string, string>): Uint8Array {
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

export interface AdainFolder { dir: string; enc: NetWeights; dec: NetWeights }

/**
 * A new folder holding the two upstream AdaIN checkpoints with seeded full-width weights (encoder `seed`, decoder
 * `seed + 1`), scaled by 0.7 so 10 ReLU layers of random features stay in a sane range.
 */
export function writeAdainFolder(seed: number): AdainFolder {
  const spec = ADAIN.level(4);
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
  return { dir, enc, dec };
}

/**
 * Maps the decoder's output v to gain * v + bias (its last conv, which no ReLU follows, scaled and shifted) and
 * rewrites decoder.pth: random decoders give values of about +-0.01, an image saved as 8 bits needs them spread
 * over [0, 1].
 */
export function mapDecoderOutput(w: AdainFolder, gain: number, bias: number): void {
  const last = [...w.dec.convs.values()].at(-1)!;
  last.weight.forEach((v, i, a) => { a[i] = gain * v; });
  last.bias.forEach((v, i, a) => { a[i] = gain * v + bias; });
  writeFileSync(join(w.dir, 'decoder.pth'), sequentialCheckpoint(w.dec, sequentialTensorNames(ADAIN.level(4).decoder)));
}

/**
 * AdaIN in float64 (Huang & Belongie 2017): encode the content and each style to relu4_1, move the content's
 * per-channel mean and standard deviation to the blend of the styles', mix with the content's features by `alpha`,
 * decode. The content's sides must be multiples of 8 (no padding).
 */
export function adainFloat64(w: AdainFolder, content: RgbImage, styles: RgbImage[], blend = styles.map(() => 1), alpha = 1): Float64Array {
  const spec = ADAIN.level(4);
  const e = [...w.enc.convs.values()];
  const encode = (img: RgbImage) => netForward(spec.encoder, e, t64([3, img.height, img.width], img.data), 'max', 'relu4_1').outs.get('relu4_1')!;
  const F = encode(content);
  const c = F.shape[0];
  const mom = (data: Float64Array) => { const s = featureStats(data, c); return momentsFromVariance(s.mean, Array.from({ length: c }, (_, i) => s.cov[i * c + i])); };
  const { a, b } = adainMap(mom(F.data), styles.map((s) => mom(encode(s).data)), blend, alpha);
  const m = F.data.length / c;
  const Y = t64(F.shape, F.data.map((v, i) => a[Math.floor(i / m)] * v + b[Math.floor(i / m)]));
  const last = spec.decoder.layers.at(-1)!.name;
  return netForward(spec.decoder, [...w.dec.convs.values()], Y, 'max', last).outs.get(last)!.data;
}
