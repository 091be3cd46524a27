// Feature statistics of the feed-forward methods on the GPU (read back as float64), and their merge over tiles.
import type { Gpu } from '../gpu/device.ts';
import { encodeSteps, type Step } from '../gpu/kernel.ts';
import { createTensor, destroyTensors, readBuffers, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { channelAffine, channelMoments } from '../ops/channel.ts';
import { gram } from '../ops/gram.ts';
import type { FeatureStats } from './transforms.ts';

export function submit(gpu: Gpu, steps: Step[], label: string): void {
  const enc = gpu.device.createCommandEncoder({ label });
  const pass = enc.beginComputePass({ label });
  encodeSteps(pass, steps);
  pass.end();
  gpu.device.queue.submit([enc.finish()]);
}

/** Per-channel mean and unbiased variance of F [C,H,W] (GPU), read back. */
export async function moments(gpu: Gpu, F: Tensor): Promise<{ mean: Float32Array; variance: Float32Array }> {
  const c = F.shape[0];
  const out = createTensor(gpu, [2 * c], 'moments');
  try {
    submit(gpu, channelMoments(gpu, F, out), 'moments');
    const [v] = await readBuffers(gpu, [{ buffer: out.buffer, bytes: 2 * c * 4 }]);
    return { mean: v.slice(0, c), variance: v.slice(c, 2 * c) };
  } finally {
    out.buffer.destroy();
  }
}

/** Means and centred covariance F̄F̄ᵀ/(M−1) of F on the GPU (centre, then a Gram), read back as float64. */
export async function featureStatsGpu(gpu: Gpu, F: Tensor): Promise<FeatureStats> {
  const c = F.shape[0];
  const m = F.size / c;
  const { mean } = await moments(gpu, F);
  const coef = new Float32Array(2 * c);
  coef.fill(1, 0, c);
  for (let i = 0; i < c; i++) coef[c + i] = -mean[i];
  const coefT = uploadTensor(gpu, coef, [2 * c], 'centre.coef');
  const centred = createTensor(gpu, F.shape, 'centred');
  const G = createTensor(gpu, [c, c], 'covariance');
  try {
    submit(gpu, [...channelAffine(gpu, F, coefT, centred), ...gram(gpu, centred, G, 1 / Math.max(1, m - 1))], 'covariance');
    const [cov] = await readBuffers(gpu, [{ buffer: G.buffer, bytes: c * c * 4 }]);
    return { channels: c, mean: Float64Array.from(mean), cov: Float64Array.from(cov) };
  } finally {
    destroyTensors(coefT, centred, G);
  }
}

/**
 * Running statistics over disjoint parts (tiles' cores) in float64: count, mean and the centred co-moment
 * Σ (x−μ)(x−μ)ᵀ (full C x C, or its diagonal only). Parts merge by Chan et al.'s pairwise rule,
 *   C = C_a + C_b + δδᵀ n_a n_b / n,  δ = μ_b − μ_a,
 * from each part's own centred statistics, so no large uncentred sums cancel.
 */
export class StatsAccumulator {
  n = 0;
  readonly mean: Float64Array;
  readonly comoment: Float64Array;

  constructor(readonly channels: number, readonly full: boolean) {
    this.mean = new Float64Array(channels);
    this.comoment = new Float64Array(full ? channels * channels : channels);
  }

  /** Adds a part of n positions with mean μ and co-moment (full or diagonal, as this accumulator). */
  add(n: number, mean: ArrayLike<number>, comoment: ArrayLike<number>): void {
    if (n <= 0) return;
    const c = this.channels;
    const total = this.n + n;
    const f = (this.n * n) / total;
    const d = Float64Array.from({ length: c }, (_, i) => mean[i] - this.mean[i]);
    if (this.full) {
      for (let i = 0; i < c; i++) for (let j = 0; j < c; j++) this.comoment[i * c + j] += comoment[i * c + j] + f * d[i] * d[j];
    } else {
      for (let i = 0; i < c; i++) this.comoment[i] += comoment[i] + f * d[i] * d[i];
    }
    for (let i = 0; i < c; i++) this.mean[i] += (d[i] * n) / total;
    this.n = total;
  }

  /** Means and covariance (divided by n−1, as F̄F̄ᵀ/(M−1)). */
  stats(): FeatureStats {
    if (!this.full) throw new Error('StatsAccumulator: diagonal only');
    return { channels: this.channels, mean: this.mean.slice(), cov: this.comoment.map((v) => v / Math.max(1, this.n - 1)) };
  }

  /** Means and unbiased variances (0 for a single position, as channelMoments). */
  moments(): { mean: Float64Array; variance: Float64Array } {
    const c = this.channels;
    const diag = this.full ? Float64Array.from({ length: c }, (_, i) => this.comoment[i * c + i]) : this.comoment;
    return { mean: this.mean.slice(), variance: diag.map((v) => (this.n > 1 ? v / (this.n - 1) : 0)) };
  }
}
