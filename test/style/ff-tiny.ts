// Tiny random feed-forward models for tests: the wct-16x layer structure (1x1 colour conv, reflect-padded convs, max
// pooling; decoders with nearest upsampling) at widths 4..8, levels 1..K, seeded He weights.
import type { NetWeights } from '../../src/nets/describe.ts';
import { normalisedVggDecoder, normalisedVggEncoder } from '../../src/nets/normalised-vgg.ts';
import type { FeedForwardModelSpec } from '../../src/style/ff-models.ts';
import { randomNetWeights } from '../../src/weights/net-weights.ts';

export const TINY_WIDTHS = [4, 6, 8, 8, 8];
export const tinyEncoder = (k: number) => normalisedVggEncoder(`tiny/enc${k}`, k, { widths: TINY_WIDTHS });
/** Levels past 1 end in a ReLU as wct-16x's do; level 1's decoder does not (both kinds get exercised). */
export const tinyDecoder = (k: number) => normalisedVggDecoder(`tiny/dec${k}`, k, { widths: TINY_WIDTHS, finalRelu: k !== 1 });

/** A model of levels 1..`levels` with its weights (the loader callback reads them by file name). */
export function tinyModel(seed: number, levels = 2): { spec: FeedForwardModelSpec; weights: Map<string, NetWeights> } {
  const ks = Array.from({ length: levels }, (_, i) => i + 1);
  const weights = new Map<string, NetWeights>();
  const spec: FeedForwardModelSpec = {
    name: 'wct-16x', levels: ks, defaultLevels: { wct: [...ks].reverse(), adain: [...ks].reverse() }, files: [],
    level: (k) => ({
      level: k, feature: `relu${k}_1`, encoder: tinyEncoder(k), decoder: tinyDecoder(k),
      encoderFile: `enc${k}`, decoderFile: `dec${k}`, encoderNames: (l) => l, decoderNames: (l) => l,
    }),
  };
  for (const k of ks) {
    const l = spec.level(k);
    weights.set(l.encoderFile, randomNetWeights(l.encoder, seed + k));
    weights.set(l.decoderFile, randomNetWeights(l.decoder, seed + 10 + k));
  }
  return { spec, weights };
}
