// Per-channel statistics and maps on float32 features (shaders/channel.wgsl), for AdaIN, WCT and batch norm.
// Features are [C,H,W] or [C,M] tensors (batch 1): channel c is the M = H*W contiguous values x[c, 0..M).
//  - channelMoments: per-channel mean and unbiased variance, out = [mean_0..mean_{C-1}, var_0..var_{C-1}];
//  - channelAffine:  y[c,p] = a[c] x[c,p] + b[c], coef = [a_0..a_{C-1}, b_0..b_{C-1}] on the GPU;
//  - channelMix:     y[:,p] = T x[:,p] + bias (WCT's whitening and colouring), T row-major [Co, Ci];
//  - channelCopy:    dst[dstC0+c, p] (+)= src[srcC0+c, p], a channel slice (concatenation and its backward).
import source from '../../shaders/channel.wgsl';
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { bind, fold, type KernelSpec, type Step } from '../gpu/kernel.ts';
import { createTensor, type Tensor } from '../gpu/tensor.ts';

const file = 'shaders/channel.wgsl';
const momentUniforms = { C: 'u32', M: 'u32', S: 'u32', chunk: 'u32' } as const;
const affineUniforms = { n: 'u32', M: 'u32', C: 'u32', bias: 'u32' } as const;
const mixUniforms = { R: 'u32', K: 'u32', P: 'u32', groups: 'u32', trans: 'u32', has_bias: 'u32' } as const;
export const channelSpecs = {
  momentsPartial: { file, source, entry: 'moments_partial', uniforms: momentUniforms,
    bindings: { mpp: 'uniform', mpx: 'read', mppart: 'read_write' } },
  momentsFinish: { file, source, entry: 'moments_finish', uniforms: momentUniforms,
    bindings: { mfp: 'uniform', mfpart: 'read', mfout: 'read_write' } },
  affine: { file, source, entry: 'channel_affine', uniforms: affineUniforms,
    bindings: { afp: 'uniform', afcoef: 'read', afx: 'read', afy: 'read_write' } },
  affineInPlace: { file, source, entry: 'channel_affine_inplace', uniforms: affineUniforms,
    bindings: { aip: 'uniform', aicoef: 'read', aiy: 'read_write' } },
  mixVec4: { file, source, entry: 'channel_mix_vec4', uniforms: mixUniforms,
    bindings: { mvp: 'uniform', mvT: 'read', mvbias: 'read', mvx: 'read', mvy: 'read_write' } },
  mix: { file, source, entry: 'channel_mix', uniforms: mixUniforms,
    bindings: { msp: 'uniform', msT: 'read', msbias: 'read', msx: 'read', msy: 'read_write' } },
  copy: { file, source, entry: 'channel_copy', uniforms: { n: 'u32', src0: 'u32', dst0: 'u32', acc: 'u32' },
    bindings: { ccp: 'uniform', cc_src: 'read', cc_dst: 'read_write' } },
  copyVec4: { file, source, entry: 'channel_copy_vec4', uniforms: { n: 'u32', src0: 'u32', dst0: 'u32', acc: 'u32' },
    bindings: { cvp: 'uniform', cv_src: 'read', cv_dst: 'read_write' } },
} satisfies Record<string, KernelSpec>;

/**
 * Elements per moments_partial workgroup (64 invocations x 256) unless M needs more than MAX_CHUNKS chunks. 4096 was
 * about 2x slower on lavapipe (per-workgroup cost); 16384 still gives a 1024x1024 channel 64 workgroups.
 */
const CHUNK = 16384;
/** Most chunks per channel: moments_finish merges them serially, one invocation per channel. */
const MAX_CHUNKS = 1024;

/** Channels and positions per channel of a [C,H,W] or [C,M] tensor. */
function features(what: string, x: Tensor): { C: number; M: number } {
  if (x.shape.length !== 2 && x.shape.length !== 3) {
    throw new PainterlyError(`${what}: expected features [C,H,W] or [C,M], got [${x.shape}] (${x.label})`);
  }
  const [C, ...rest] = x.shape;
  const M = rest.reduce((a, b) => a * b, 1);
  if (C < 1 || M < 1) throw new PainterlyError(`${what}: expected at least one channel and one position, got [${x.shape}] (${x.label})`);
  return { C, M };
}

function checkSize(what: string, t: Tensor, n: number, meaning: string): void {
  if (t.size !== n) throw new PainterlyError(`${what}: expected ${t.label} to hold ${meaning} = ${n} values, got [${t.shape}]`);
}

function checkSameShape(what: string, a: Tensor, b: Tensor): void {
  if (a.shape.join() !== b.shape.join()) {
    throw new PainterlyError(`${what}: expected ${b.label} [${a.shape}] like ${a.label}, got [${b.shape}]`);
  }
}

/**
 * out [2C] = per-channel mean then unbiased variance (divide by M - 1; 0, not torch's NaN, when M = 1) of x
 * [C,H,W] or [C,M]. Two stages: chunks of 16384 values per workgroup (two passes each: mean, then squared
 * deviations), merged per channel in fixed order. Deterministic. Scratch is allocated here, at bind time.
 */
export function channelMoments(gpu: Gpu, x: Tensor, out: Tensor): Step[] {
  const { C, M } = features('channelMoments', x);
  checkSize('channelMoments', out, 2 * C, '2 x channels');
  if (C > 65535) throw new PainterlyError(`channelMoments: at most 65535 channels, got ${C} (${x.label})`);
  const chunk = M <= CHUNK * MAX_CHUNKS ? CHUNK : Math.ceil(M / MAX_CHUNKS / 64) * 64;
  const S = Math.ceil(M / chunk);
  const part = createTensor(gpu, [C, S, 2], `${x.label}.moments.partial`);
  const u = { C, M, S, chunk };
  return [
    bind(gpu, channelSpecs.momentsPartial, { mpx: x.buffer, mppart: part.buffer }, u, [S, C, 1], `moments_partial ${x.label}`),
    bind(gpu, channelSpecs.momentsFinish, { mfpart: part.buffer, mfout: out.buffer }, u, Math.ceil(C / 64), `moments_finish ${x.label}`),
  ];
}

function affineSteps(what: string, gpu: Gpu, x: Tensor, coef: Tensor, y: Tensor, bias: boolean): Step[] {
  const { C, M } = features(what, x);
  checkSameShape(what, x, y);
  checkSize(what, coef, 2 * C, '2 x channels');
  const u = { n: x.size, M, C, bias: bias ? 1 : 0 };
  const groups = Math.ceil(x.size / 256);
  if (x.buffer === y.buffer) {
    return [bind(gpu, channelSpecs.affineInPlace, { aicoef: coef.buffer, aiy: y.buffer }, u, groups, `channel_affine_inplace ${y.label}`)];
  }
  return [bind(gpu, channelSpecs.affine, { afcoef: coef.buffer, afx: x.buffer, afy: y.buffer }, u, groups, `channel_affine ${y.label}`)];
}

/** y[c,p] = a[c] x[c,p] + b[c] with coef [2C] = [a..., b...] (overwrites y; y may be x itself). */
export function channelAffine(gpu: Gpu, x: Tensor, coef: Tensor, y: Tensor): Step[] {
  return affineSteps('channelAffine', gpu, x, coef, y, true);
}

/** dx[c,p] = a[c] dy[c,p] with channelAffine's coef [2C] (b unused; overwrites dx; dx may be dy itself). */
export function channelAffineBackward(gpu: Gpu, dy: Tensor, coef: Tensor, dx: Tensor): Step[] {
  return affineSteps('channelAffineBackward', gpu, dy, coef, dx, false);
}

function mixSteps(what: string, gpu: Gpu, x: Tensor, T: Tensor, bias: Tensor | undefined, y: Tensor, trans: boolean): Step[] {
  const { C: K, M } = features(what, x);
  const { C: R, M: My } = features(what, y);
  const want = trans ? [K, R] : [R, K];
  if (T.shape.length !== 2 || T.shape[0] !== want[0] || T.shape[1] !== want[1]) {
    throw new PainterlyError(`${what}: expected matrix [${want}] for ${x.label} [${x.shape}] and ${y.label} [${y.shape}], got [${T.shape}] (${T.label})`);
  }
  if (My !== M || x.shape.slice(1).join() !== y.shape.slice(1).join()) {
    throw new PainterlyError(`${what}: expected ${y.label} [${[R, ...x.shape.slice(1)]}] to have ${x.label}'s positions, got [${y.shape}]`);
  }
  if (bias) checkSize(what, bias, R, 'output channels');
  if (x.buffer === y.buffer) throw new PainterlyError(`${what}: output ${y.label} must not be the input ${x.label} (not in place)`);
  const vec4 = M % 4 === 0;
  const P = vec4 ? M / 4 : M;
  const groups = Math.ceil(R / 4);
  const u = { R, K, P, groups, trans: trans ? 1 : 0, has_bias: bias ? 1 : 0 };
  const n = Math.ceil((groups * P) / 64);
  // Without a bias, T stands in for the (unread) bias binding.
  const b = (bias ?? T).buffer;
  return vec4
    ? [bind(gpu, channelSpecs.mixVec4, { mvT: T.buffer, mvbias: b, mvx: x.buffer, mvy: y.buffer }, u, n, `channel_mix_vec4 ${y.label}`)]
    : [bind(gpu, channelSpecs.mix, { msT: T.buffer, msbias: b, msx: x.buffer, msy: y.buffer }, u, n, `channel_mix ${y.label}`)];
}

/**
 * y[o,p] = Σ_i T[o,i] x[i,p] + bias[o]: x [Ci,H,W] or [Ci,M], T [Co,Ci] row-major, bias [Co] or null, y [Co,...]
 * with x's positions (overwrites y; not in place). Any channel counts; vec4 along p when M % 4 == 0.
 */
export function channelMix(gpu: Gpu, x: Tensor, T: Tensor, bias: Tensor | null, y: Tensor): Step[] {
  return mixSteps('channelMix', gpu, x, T, bias ?? undefined, y, false);
}

/** dx[i,p] = Σ_o T[o,i] dy[o,p] (dx = Tᵀ dy): channelMix's gradient w.r.t. x; T [Co,Ci], dy [Co,...], dx [Ci,...]. */
export function channelMixBackward(gpu: Gpu, dy: Tensor, T: Tensor, dx: Tensor): Step[] {
  return mixSteps('channelMixBackward', gpu, dy, T, undefined, dx, true);
}

export interface ChannelCopyOptions {
  /** First channel of src to copy. Default 0. */
  srcC0?: number;
  /** First channel of dst to write. Default 0. */
  dstC0?: number;
  /** Number of channels. Default: the rest of src from srcC0 (all of it by default). */
  channels?: number;
  /** Add to dst instead of overwriting it. Default false. */
  accumulate?: boolean;
}

/**
 * dst[dstC0 + c, p] = (accumulate ? dst[dstC0 + c, p] : 0) + src[srcC0 + c, p] for c < channels; other channels of
 * dst are untouched. src and dst are [C,H,W] (or [C,M]) with the same positions (H, W), and different buffers.
 * Concatenation along channels is one channelCopy per input (dstC0 = its offset); its backward one per input from
 * dy's slice (srcC0 = the offset; accumulate when that input's gradient already holds another consumer's part).
 */
export function channelCopy(gpu: Gpu, src: Tensor, dst: Tensor, opts: ChannelCopyOptions = {}): Step {
  const what = 'channelCopy';
  const { C: Cs, M } = features(what, src);
  const { C: Cd } = features(what, dst);
  if (src.shape.slice(1).join() !== dst.shape.slice(1).join()) {
    throw new PainterlyError(`${what}: ${src.label} [${src.shape}] and ${dst.label} [${dst.shape}] must have the same H,W`);
  }
  const srcC0 = opts.srcC0 ?? 0;
  const dstC0 = opts.dstC0 ?? 0;
  const channels = opts.channels ?? Cs - srcC0;
  for (const [name, v] of [['srcC0', srcC0], ['dstC0', dstC0], ['channels', channels]] as const) {
    if (!Number.isInteger(v) || v < (name === 'channels' ? 1 : 0)) {
      throw new PainterlyError(`${what}: ${name} must be an integer >= ${name === 'channels' ? 1 : 0}, got ${v}`);
    }
  }
  if (srcC0 + channels > Cs) {
    throw new PainterlyError(`${what}: channels ${srcC0}..${srcC0 + channels - 1} are past ${src.label}'s ${Cs} channels`);
  }
  if (dstC0 + channels > Cd) {
    throw new PainterlyError(`${what}: channels ${dstC0}..${dstC0 + channels - 1} are past ${dst.label}'s ${Cd} channels`);
  }
  if (src.buffer === dst.buffer) throw new PainterlyError(`${what}: ${src.label} and ${dst.label} must be different buffers`);
  const vec4 = M % 4 === 0;
  const q = vec4 ? M / 4 : M;
  const u = { n: channels * q, src0: srcC0 * q, dst0: dstC0 * q, acc: opts.accumulate ? 1 : 0 };
  const groups = fold(Math.ceil(u.n / 256));
  const label = `channel_copy ${src.label}[${srcC0}:${srcC0 + channels}] -> ${dst.label}[${dstC0}:]`;
  return vec4
    ? bind(gpu, channelSpecs.copyVec4, { cv_src: src.buffer, cv_dst: dst.buffer }, u, groups, label)
    : bind(gpu, channelSpecs.copy, { cc_src: src.buffer, cc_dst: dst.buffer }, u, groups, label);
}
