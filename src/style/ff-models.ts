// The encoder/decoder pairs the feed-forward methods run (--model): which description, which checkpoint file and
// which name table at each level. Networks are data: a model is a table, the executor runs it.
import { PainterlyError } from '../gpu/device.ts';
import type { NetDescription } from '../nets/describe.ts';
import { normalisedVgg19, normalisedVggDecoder, normalisedVggEncoder, sequentialTensorNames, VGG19_WIDTHS, wctTensorName } from '../nets/normalised-vgg.ts';

export interface LevelNets {
  level: number;
  /** The encoder's output layer (relu{level}_1). */
  feature: string;
  encoder: NetDescription;
  decoder: NetDescription;
  /** Checkpoint paths relative to the model folder. */
  encoderFile: string;
  decoderFile: string;
  encoderNames: (layer: string) => string;
  decoderNames: (layer: string) => string;
}

export interface FeedForwardModelSpec {
  name: 'wct-16x' | 'adain';
  levels: number[];
  /** Levels each method runs by default, coarse to fine. */
  defaultLevels: { wct: number[]; adain: number[] };
  level(level: number): LevelNets;
  /** Every file the model needs (for downloads and folder checks). */
  files: string[];
}

// wct-16x: per level K an encoder to reluK_1 and the decoder trained to invert it (upstream trained_models/).
const WCT16X_ENCODERS = ['20191110-133713_E20.pth', '20191110-132713_E20.pth', '20191110-132705_E20.pth', '20191110-132643_E20.pth', '20191109-211322_E20.pth'];
const WCT16X_DECODERS = ['20191111-091942_E20.pth', '20191111-091932_E20.pth', '20191111-091929_E20.pth', '20191111-092553_E20.pth', '20191110-204615_E20.pth'];
/** Block widths of the distilled encoders; the level-1 pair is wider (24 channels) than block 1 of the others. */
const WCT16X_WIDTHS = [16, 32, 64, 128, 128];
const WCT16X_LEVEL1_WIDTHS = [24, 32, 64, 128, 128];

export const WCT16X: FeedForwardModelSpec = {
  name: 'wct-16x',
  levels: [1, 2, 3, 4, 5],
  defaultLevels: { wct: [5, 4, 3, 2, 1], adain: [5, 4, 3, 2, 1] },
  files: [...WCT16X_ENCODERS.map((f) => `wct_se_16x_new/${f}`), ...WCT16X_DECODERS.map((f) => `wct_se_16x_new_sd/${f}`)],
  level(level) {
    const widths = level === 1 ? WCT16X_LEVEL1_WIDTHS : WCT16X_WIDTHS;
    return {
      level, feature: `relu${level}_1`,
      encoder: normalisedVggEncoder(`wct-16x/encoder${level}`, level, { widths }),
      decoder: normalisedVggDecoder(`wct-16x/decoder${level}`, level, { widths, finalRelu: true }),
      encoderFile: `wct_se_16x_new/${WCT16X_ENCODERS[level - 1]}`,
      decoderFile: `wct_se_16x_new_sd/${WCT16X_DECODERS[level - 1]}`,
      encoderNames: wctTensorName,
      decoderNames: wctTensorName,
    };
  },
};

// naoto0804/pytorch-AdaIN: the normalised VGG19 as one nn.Sequential (ceil_mode poolings) to relu4_1 and its decoder.
const ADAIN_ENCODER_NAMES = sequentialTensorNames(normalisedVgg19('adain/vgg', { widths: VGG19_WIDTHS, ceil: true }));
const ADAIN_DECODER = normalisedVggDecoder('adain/decoder', 4, { widths: VGG19_WIDTHS, finalRelu: false });
const ADAIN_DECODER_NAMES = sequentialTensorNames(ADAIN_DECODER);

export const ADAIN: FeedForwardModelSpec = {
  name: 'adain',
  levels: [4],
  defaultLevels: { wct: [4], adain: [4] },
  files: ['vgg_normalised.pth', 'decoder.pth'],
  level(level) {
    if (level !== 4) throw new PainterlyError(`--levels: the adain model has one level, 4 (relu4_1), not ${level}`);
    return {
      level, feature: 'relu4_1',
      encoder: normalisedVggEncoder('adain/encoder', 4, { widths: VGG19_WIDTHS, ceil: true }),
      decoder: ADAIN_DECODER,
      encoderFile: 'vgg_normalised.pth',
      decoderFile: 'decoder.pth',
      encoderNames: (l) => ADAIN_ENCODER_NAMES.get(l)!,
      decoderNames: (l) => ADAIN_DECODER_NAMES.get(l)!,
    };
  },
};

export const FF_MODELS: Record<string, FeedForwardModelSpec> = { 'wct-16x': WCT16X, adain: ADAIN };
