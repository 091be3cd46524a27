// The convolution paths beyond conv.wgsl's stride-1 "same" kernels, routed to from conv2d.ts:
//  - strided / explicitly padded convolutions (shaders/conv_strided.wgsl), zero padding, any odd K <= 7: forward and
//    the input grad as a gather (each dx element owned by one invocation);
//  - 1x1 stride-1 convolutions as matmuls (shaders/matmul.wgsl; algorithm 'matmul' only: on lavapipe the direct
//    kernel was as fast at small H*W and 2-3x faster at 64x64, e.g. 256->64 at 64x64 21 ms direct vs 68 ms matmul): y [Cout,HW] = W [Cout,Cin] x [Cin,HW] and
//    dx [Cin,HW] = Wᵀ [Cin,Cout] dy [Cout,HW], on the weight snapshots prepareConv already writes (for K = 1 the
//    input-grad direct layout is W [Cout][Cin4] and the forward one Wᵀ [Cin][Cout4]), plus an in-place bias add.
import source from '../../shaders/conv_strided.wgsl';
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { bind, fold, type KernelSpec, type Step } from '../gpu/kernel.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { ConvLayer } from './conv2d.ts';
import { bindMatmul } from './matmul.ts';

const file = 'shaders/conv_strided.wgsl';

export const convStridedSpec: KernelSpec = {
  file, source, entry: 'conv_strided',
  bindings: { sp: 'uniform', s_x: 'read', s_w: 'read', s_b: 'read', s_y: 'read_write' },
  uniforms: {
    cin: 'u32', cout: 'u32', h: 'u32', w: 'u32', ho: 'u32', wo: 'u32', k: 'u32', stride: 'u32', pad: 'u32',
    cout4: 'u32', has_bias: 'u32', quads: 'u32',
  },
};
export const convStridedInputSpec: KernelSpec = {
  file, source, entry: 'conv_strided_input',
  bindings: { sb: 'uniform', sb_dy: 'read', sb_w: 'read', sb_dx: 'read_write' },
  uniforms: {
    cin: 'u32', cout: 'u32', h: 'u32', w: 'u32', ho: 'u32', wo: 'u32', k: 'u32', stride: 'u32', pad: 'u32',
    cin4: 'u32', gw: 'u32', hr: 'u32', quads: 'u32',
  },
};
export const convBiasAddSpec: KernelSpec = {
  file, source, entry: 'conv_bias_add',
  bindings: { ba: 'uniform', ba_b: 'read', ba_y: 'read_write' }, uniforms: { n: 'u32', hw4: 'u32' },
};

/** Output size of a K x K convolution (or pooling window) with stride S and zero padding P: floor((n+2P-K)/S)+1. */
export function convOutputSize(h: number, w: number, k: number, stride: number, padding: number): [number, number] {
  return [Math.floor((h + 2 * padding - k) / stride) + 1, Math.floor((w + 2 * padding - k) / stride) + 1];
}

/** Whether a layer runs the strided kernels: stride > 1, padding other than (K-1)/2, or K = 7 (past conv.wgsl's 5). */
export function isStrided(layer: Pick<ConvLayer, 'k' | 'stride' | 'padding'>): boolean {
  return layer.stride !== 1 || layer.padding !== (layer.k - 1) / 2 || layer.k > 5;
}

/**
 * Whether a layer prepared with algorithm 'matmul' (K = 1, stride 1, padding 0) runs a direction as a matmul: when
 * the reduction channels (Cin forward, Cout input grad) and H*W are multiples of 4 (the matmul kernel's vec4 loads).
 */
export function useConvMatmul(layer: ConvLayer, direction: 'forward' | 'input', h: number, w: number): boolean {
  if (layer.k !== 1 || layer.stride !== 1 || layer.padding !== 0 || layer.algorithm !== 'matmul') return false;
  const reduce = direction === 'forward' ? layer.cin : layer.cout;
  return reduce % 4 === 0 && (h * w) % 4 === 0;
}

/** y = conv_{S,P}(x, w) + b through conv_strided (max(., 0) with `relu`); shapes already checked by the caller. */
export function stridedForwardSteps(gpu: Gpu, layer: ConvLayer, x: Tensor, y: Tensor, label: string, relu = false): Step[] {
  const [h, w] = [x.shape[1], x.shape[2]];
  const [ho, wo] = [y.shape[1], y.shape[2]];
  const quads = ho * Math.ceil(wo / 4);
  const cout4 = Math.ceil(layer.cout / 4) * 4;
  const spec = relu ? { ...convStridedSpec, constants: { RELU: 1 } } : convStridedSpec;
  return [bind(gpu, spec, { s_x: x.buffer, s_w: layer.fwd.direct, s_b: layer.bias.buffer, s_y: y.buffer },
    { cin: layer.cin, cout: layer.cout, h, w, ho, wo, k: layer.k, stride: layer.stride, pad: layer.padding, cout4, has_bias: 1, quads },
    [Math.ceil(quads / 64), cout4 / 4, 1], `${label} strided`)];
}

/** dx = the adjoint of stridedForwardSteps' x -> y, overwriting every element of dx. */
export function stridedInputSteps(gpu: Gpu, layer: ConvLayer, dy: Tensor, dx: Tensor, label: string): Step[] {
  const [h, w] = [dx.shape[1], dx.shape[2]];
  const [ho, wo] = [dy.shape[1], dy.shape[2]];
  // S x S classes (row and column residues) x hr rows x gw groups of 4 same-residue columns (see the shader).
  const s = layer.stride;
  const gw = Math.ceil(Math.ceil(w / s) / 4);
  const hr = Math.ceil(h / s);
  const quads = s * s * hr * gw;
  const cin4 = Math.ceil(layer.cin / 4) * 4;
  return [bind(gpu, convStridedInputSpec, { sb_dy: dy.buffer, sb_w: layer.bwd.direct, sb_dx: dx.buffer },
    { cin: layer.cin, cout: layer.cout, h, w, ho, wo, k: layer.k, stride: s, pad: layer.padding, cin4, gw, hr, quads },
    [Math.ceil(quads / 64), cin4 / 4, 1], `${label} strided_input`)];
}

/** A 1x1 stride-1 convolution direction as a matmul (forward: then the bias, and with `relu` max(., 0)). */
export function matmulConvSteps(
  gpu: Gpu, layer: ConvLayer, direction: 'forward' | 'input', src: Tensor, dst: Tensor, label: string, relu = false,
): Step[] {
  const hw = src.shape[1] * src.shape[2];
  if (direction === 'forward') {
    // A = W [Cout][Cin] (the input-grad direct layout, B4 = Cin), B = x [Cin][HW].
    const steps = [bindMatmul(gpu, layer.bwd.direct, src.buffer, dst.buffer, { m: layer.cout, n: hw, k: layer.cin }, `${label} matmul`)];
    const n = (layer.cout * hw) / 4;
    const spec = relu ? { ...convBiasAddSpec, constants: { RELU: 1 } } : convBiasAddSpec;
    steps.push(bind(gpu, spec, { ba_b: layer.bias.buffer, ba_y: dst.buffer }, { n, hw4: hw / 4 },
      fold(Math.ceil(n / 64)), `${label} bias`));
    return steps;
  }
  if (direction !== 'input') throw new PainterlyError(`conv2d: unknown direction ${direction}`);
  // A = Wᵀ [Cin][Cout] (the forward direct layout, B4 = Cout), B = dy [Cout][HW].
  return [bindMatmul(gpu, layer.fwd.direct, src.buffer, dst.buffer, { m: layer.cin, n: hw, k: layer.cout }, `${label} matmul`)];
}
