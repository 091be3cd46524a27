// Seeded, untrained VGG19 weights for tests and for running without a download.
import { PainterlyError } from '../gpu/device.ts';
import { VGG19_K, type ConvWeights, type VggConv } from './layout.ts';

/** Mulberry32 returning integers in [0, 2^32) (also seeds the engine's noise image). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/**
 * Approximately standard normal: Irwin-Hall sum of 4 uniforms, centred and scaled to variance exactly 1.
 * Unlike Box-Muller (log, cos) it uses only exact or correctly rounded operations, so every JS engine on every
 * platform produces the same bits. Tails end at +-3.46 sigma, which is irrelevant for an initialization.
 */
function normal(next: () => number): number {
  const s = next() + next() + next() + next(); // exact: < 2^34
  return (s / 2 ** 32 - 2) * Math.sqrt(3);
}

/**
 * He initialization for conv+ReLU stacks: weight ~ N(0, 2 / (cin k k)), bias ~ N(0, 0.01^2) (small but non-zero, so
 * that a dropped bias shows in tests). Each layer draws from its own stream (seed, layer position), so a layer's
 * weights do not depend on how many layers were requested. `channels[i]` replaces cout of conv i (tiny networks).
 */
export function randomConvs(seed: number, convs: VggConv[], channels?: number[]): ConvWeights[] {
  if (channels) {
    if (channels.length < convs.length) {
      throw new PainterlyError(`random weights: channels has ${channels.length} entries, expected one per conv up to ${convs.at(-1)!.name} (${convs.length})`);
    }
    const bad = channels.findIndex((c) => !Number.isSafeInteger(c) || c < 1);
    if (bad >= 0) throw new PainterlyError(`random weights: channels[${bad}] is ${channels[bad]}, expected a positive integer`);
  }
  let cin = 3;
  return convs.map((conv, i) => {
    const c = heConv(seed, i, conv.name, cin, channels ? channels[i] : conv.cout, VGG19_K);
    cin = c.cout;
    return c;
  });
}

/** Conv number `index` of a seeded network: its own Mulberry32 stream (seed, index), He-initialised. */
export function heConv(seed: number, index: number, name: string, cin: number, cout: number, k: number): ConvWeights {
  const next = mulberry32(Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca77));
  next(); // decorrelate nearby seeds
  const std = Math.sqrt(2 / (cin * k * k));
  const weight = new Float32Array(cout * cin * k * k);
  for (let j = 0; j < weight.length; j++) weight[j] = normal(next) * std;
  const bias = new Float32Array(cout);
  for (let j = 0; j < cout; j++) bias[j] = normal(next) * 0.01;
  return { name, cin, cout, k, weight, bias };
}

/** Parses the seed of 'random:SEED'. */
export function parseRandomSpec(spec: string): number {
  const m = /^random:(\d{1,10})$/.exec(spec);
  const seed = m ? Number(m[1]) : NaN;
  if (!(seed <= 0xffffffff)) {
    throw new PainterlyError(`weights '${spec}': expected random:SEED with SEED an integer in [0, 4294967295]`);
  }
  return seed;
}
