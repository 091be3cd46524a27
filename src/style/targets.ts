// Loss targets: content features P and (blended, size-scaled) style Grams A, computed once per run.
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { encodeSteps, type Step } from '../gpu/kernel.ts';
import { createTensor, readBuffers, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { deepest, forwardFrom, layerShapes, planNetwork, type Network } from '../nets/executor.ts';
import type { Pooling } from '../nets/vgg19.ts';
import { gram } from '../ops/gram.ts';
import { needsTiling, tiledGrams } from './tiled.ts';
import { transformForward, type FeatureTransform } from './transform.ts';

function submit(gpu: Gpu, steps: Step[], copies: [Tensor, Tensor][] = []): void {
  const enc = gpu.device.createCommandEncoder({ label: 'targets' });
  const pass = enc.beginComputePass({ label: 'targets' });
  encodeSteps(pass, steps);
  pass.end();
  for (const [src, dst] of copies) enc.copyBufferToBuffer(src.buffer, 0, dst.buffer, 0, src.size * 4);
  gpu.device.queue.submit([enc.finish()]);
}

/** P_l: the content image's features at each layer (tensors owned by the caller). */
export function contentTargets(gpu: Gpu, net: Network, image: Tensor, layers: string[], pooling: Pooling, transform?: FeatureTransform): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  if (layers.length === 0) return out;
  const plan = planNetwork(gpu, net, { h: image.shape[1], w: image.shape[2], pooling, upTo: deepest(net.desc, layers), taps: layers, backward: false });
  const steps = forwardFrom(gpu, plan, image);
  const copies: [Tensor, Tensor][] = [];
  for (const l of layers) {
    const a = plan.acts.get(l)!;
    const t = createTensor(gpu, a.shape, `P.${l}`);
    out.set(l, t);
    if (transform) steps.push(...transformForward(gpu, transform, a, t));
    else copies.push([a, t]);
  }
  submit(gpu, steps, copies);
  plan.destroy();
  return out;
}

/** Spatial positions M of `layer`'s output for an h x w input. */
export function positionsAt(net: Network, layer: string, h: number, w: number): number {
  const [, H, W] = layerShapes(net, h, w, layer).get(layer)!;
  return H * W;
}

/**
 * A_l = Σ_k b_k (M_l / M'_lk) F_lk F_lkᵀ over the style images k with blend weights b_k (normalised to sum 1),
 * where M_l is the output's number of positions at layer l and M'_lk the style image's: the scaling keeps E_l
 * comparable when the style image has another size (it is the paper's loss when sizes are equal).
 */
export async function styleTargets(
  gpu: Gpu, net: Network, images: Tensor[], blend: number[], layers: string[], pooling: Pooling, outH: number, outW: number,
  transform?: FeatureTransform,
): Promise<Map<string, Tensor>> {
  const out = new Map<string, Tensor>();
  if (layers.length === 0) return out;
  if (blend.length !== images.length) throw new PainterlyError(`style blend weights: ${blend.length} given for ${images.length} style images`);
  const total = blend.reduce((a, b) => a + b, 0);
  if (!(total > 0) || blend.some((b) => b < 0)) throw new PainterlyError('style blend weights must be non-negative with a positive sum');
  const sums = new Map<string, Float64Array>();
  for (let k = 0; k < images.length; k++) {
    const img = images[k];
    const [h, w] = [img.shape[1], img.shape[2]];
    const scales = layers.map((l) => (blend[k] / total) * (positionsAt(net, l, outH, outW) / positionsAt(net, l, h, w)));
    // Style images past the binding limit are run in tiles (tiled.ts); the Grams are the same.
    const tiled = needsTiling(gpu, net, h, w, layers);
    if (tiled && transform) throw new PainterlyError(`style image ${k + 1} (${w}x${h}) needs tiling, which the ${transform.kind} feature transform does not support; use a smaller --style-scale`);
    const vals = tiled
      ? await tiledGrams(gpu, net, img, layers, scales, pooling)
      : await untiledGrams(gpu, net, img, layers, scales, pooling, transform);
    layers.forEach((l, i) => {
      const acc = sums.get(l) ?? new Float64Array(vals[i].length);
      vals[i].forEach((v, j) => { acc[j] += v; });
      sums.set(l, acc);
    });
  }
  for (const l of layers) {
    const n = Math.round(Math.sqrt(sums.get(l)!.length));
    out.set(l, uploadTensor(gpu, Float32Array.from(sums.get(l)!), [n, n], `A.${l}`));
  }
  return out;
}

async function untiledGrams(
  gpu: Gpu, net: Network, img: Tensor, layers: string[], scales: number[], pooling: Pooling, transform?: FeatureTransform,
): Promise<Float32Array[]> {
  const plan = planNetwork(gpu, net, { h: img.shape[1], w: img.shape[2], pooling, upTo: deepest(net.desc, layers), taps: layers, backward: false });
  const steps = [...forwardFrom(gpu, plan, img)];
  const extra: Tensor[] = [];
  const grams = layers.map((l) => {
    let F = plan.acts.get(l)!;
    if (transform) {
      const S = createTensor(gpu, F.shape, `S.${l}`);
      steps.push(...transformForward(gpu, transform, F, S));
      extra.push(S);
      F = S;
    }
    return { G: createTensor(gpu, [F.shape[0], F.shape[0]], `A.${l}`), F };
  });
  grams.forEach(({ G, F }, i) => steps.push(...gram(gpu, F, G, scales[i])));
  submit(gpu, steps);
  const vals = await readBuffers(gpu, grams.map(({ G }) => ({ buffer: G.buffer, bytes: G.size * 4 })));
  for (const { G } of grams) G.buffer.destroy();
  for (const S of extra) S.buffer.destroy();
  plan.destroy();
  return vals;
}
