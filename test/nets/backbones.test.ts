// The graph networks through the one executor: residual (ResNet bottlenecks: strided and 1x1 convs, folded batch
// norms, additions), dense (DenseNet: concatenations, batch norms after them as affine ops, 3x3/2 max pool, average
// pooling) and VGG19 with batch norm, forward and backward against the float64 reference executor (which applies
// every batch norm unfolded), reduced widths and odd sizes, several taps at once so gradients fan in; then the
// full-width ResNet-50 and DenseNet-121 on a small image; the reference backward against finite differences.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { run } from '../../src/gpu/kernel.ts';
import type { Gpu } from '../../src/gpu/device.ts';
import { createTensor, poison, readBuffers, readTensor, uploadTensor, type Tensor } from '../../src/gpu/tensor.ts';
import type { NetDescription } from '../../src/nets/describe.ts';
import { denseNet, DENSENET121_DESC } from '../../src/nets/densenet.ts';
import { backwardInto, createNetwork, forwardFrom, planNetwork, type NetPlan } from '../../src/nets/executor.ts';
import { resnetBottleneck, RESNET50 } from '../../src/nets/resnet.ts';
import { vggBlocks } from '../../src/nets/vgg19.ts';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../src/ops/normalize.ts';
import { vecAxpy } from '../../src/ops/vector.ts';
import { netBackward, netForward, type RefParams, type Trace } from '../../src/reference/net.ts';
import { t64, type T64 } from '../../src/reference/tensor.ts';
import { randomNetWeights } from '../../src/weights/net-weights.ts';
import type { NetWeights } from '../../src/nets/describe.ts';
import { assertClose, checkGradient, nextSeed, randArray, testGpu } from '../helpers.ts';

const test = suite('graph backbones');

const TINY_RESNET = resnetBottleneck([[2, 4], [1, 6], [2, 4]], 'resnet-tiny');
const TINY_DENSENET = denseNet({ blocks: [2, 3], growth: 4, init: 6, bottleneck: 2 }, 'densenet-tiny');
const TINY_VGG_BN: NetDescription = {
  name: 'vgg-bn-tiny', inputChannels: 3,
  layers: [{ name: 'normalize', op: 'normalize', mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] }, ...vggBlocks([[4, 5], [6]], 'zeros', {}, true)],
};

export function refParams(w: NetWeights): RefParams {
  return { convs: [...w.convs.values()], norms: [...(w.norms?.values() ?? [])] };
}

/**
 * Forward with several taps and backward with a random gradient at each; GPU vs float64.
 * With tens of thousands of ReLU inputs and max-pool windows, a draw now and then puts one within float32 rounding of
 * a tie, where the GPU may route the gradient another way than float64 (both are right; a max-pool reroute moves a
 * whole pooled gradient to a neighbour). So the float64 backward is routed the way the GPU went: each max pool with
 * the GPU's argmax and each ReLU with the GPU's output sign, after checking that every such choice is a legitimate one
 * (the chosen element within float32 tolerance of its window's float64 maximum; a sign that differs from float64
 * only where the input is within tolerance of 0). Then every element is compared, on fresh draws every run.
 */
async function check(desc: NetDescription, h: number, w: number, taps: string[], rtol = 2e-5): Promise<void> {
  const draw = nextSeed;
  const gpu = await testGpu();
  const weights = randomNetWeights(desc, draw());
  const net = createNetwork(gpu, desc, weights);
  const ref = refParams(weights);
  const x = t64([3, h, w], randArray(3 * h * w, draw(), 0, 1));
  const upTo = taps.at(-1)!;
  const plan = planNetwork(gpu, net, { h, w, upTo, taps, backward: true, pooling: 'max' });
  const tr = netForward(desc, ref, x, 'max', upTo);
  const dys = new Map<string, T64>();
  const dyT = new Map<string, Tensor>();
  for (const t of taps) {
    const s = tr.outs.get(t)!.shape;
    const dy = t64(s, randArray(s[0] * s[1] * s[2], draw()));
    dys.set(t, dy);
    dyT.set(t, uploadTensor(gpu, dy.data, s, `dy.${t}`));
  }
  const xt = uploadTensor(gpu, x.data, x.shape, 'x');
  const gx = createTensor(gpu, x.shape, 'gx');
  poison(gpu, gx);
  for (const a of new Set(plan.acts.values())) poison(gpu, a);
  const back = backwardInto(gpu, plan, (layer, _act, grad) => (dyT.has(layer) ? [vecAxpy(gpu, 1, dyT.get(layer)!, grad)] : []), gx);
  run(gpu, [...forwardFrom(gpu, plan, xt), ...back.steps]);
  for (const t of taps) assertClose(await readTensor(gpu, plan.acts.get(t)!), tr.outs.get(t)!.data, rtol, `${desc.name} ${h}x${w}: forward ${t}`);
  const want = netBackward(desc, ref, await routedAsGpu(gpu, plan, tr, rtol), 'max', (l) => dys.get(l), x);
  assertClose(await readTensor(gpu, gx), want.data, rtol, `${desc.name} ${h}x${w}: backward to the image from ${taps.join(', ')}`);
  plan.destroy();
  net.destroy();
  for (const t of [...dyT.values(), xt, gx]) t.buffer.destroy();
}

/** The trace with the GPU's routing at max pools and ReLUs, each choice checked to be a float32-rounding tie. */
async function routedAsGpu(gpu: Gpu, plan: NetPlan, tr: Trace, rtol: number): Promise<Trace> {
  const outs = new Map(tr.outs);
  const argmax = new Map(tr.argmax);
  const maxAbs = (t: T64) => t.data.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
  for (const [name, buffer] of plan.internal.argmax) {
    const n = tr.argmax.get(name)!.length;
    const [f] = await readBuffers(gpu, [{ buffer, bytes: n * 4 }]);
    const got = new Uint32Array(f.buffer, f.byteOffset, n).slice();
    const input = tr.outs.get(tr.nodes.find((x) => x.name === name)!.inputs[0])!;
    const tol = 10 * rtol * maxAbs(input);
    const want = tr.argmax.get(name)!;
    for (let o = 0; o < n; o++) {
      if (got[o] !== want[o] && !(got[o] < input.data.length && input.data[got[o]] >= input.data[want[o]] - tol)) {
        assert.unreachable(`${name}: GPU argmax ${got[o]} at output ${o} is not a tie with float64's ${want[o]}`);
      }
    }
    argmax.set(name, got);
  }
  for (const node of tr.nodes) {
    if (node.spec.op !== 'relu') continue;
    const y = await readTensor(gpu, plan.internal.outs.get(node.name)!);
    const input = tr.outs.get(node.inputs[0])!;
    const tol = 10 * rtol * maxAbs(input);
    const signs = t64(input.shape, input.data.map((v, k) => {
      if ((y[k] > 0) !== (v > 0) && Math.abs(v) > tol) assert.unreachable(`${node.name}: GPU output ${y[k]} where float64's input is ${v}`);
      return y[k] > 0 ? 1 : -1;
    }));
    outs.set(node.inputs[0], signs);   // the reference ReLU backward reads only its input's sign
  }
  return { ...tr, outs, argmax };
}

test('residual network (strided and 1x1 convs, folded batch norms, additions) matches float64', async () => {
  await check(TINY_RESNET, 23, 19, ['relu', 'maxpool', 'layer1.0', 'layer1', 'layer2', 'layer3']);
  await check(TINY_RESNET, 16, 17, ['layer3.1', 'layer3']); // an alias and its layer, one tensor, two losses
});

test('dense network (concatenations, batch norm after them, 3x3/2 max pool, 2x2 average pool) matches float64', async () => {
  await check(TINY_DENSENET, 21, 18, ['features.relu0', 'denseblock1', 'features.transition1', 'norm5']);
});

test('VGG with batch norm (folded) matches float64', async () => {
  await check(TINY_VGG_BN, 13, 10, ['bn1_1', 'relu1_2', 'relu2_1']);
});

test('full ResNet-50 and DenseNet-121 on a small image match float64', async () => {
  await check(RESNET50, 33, 35, ['relu', 'layer1', 'layer2', 'layer3', 'layer4'], 1e-4);
  await check(DENSENET121_DESC, 32, 33, ['features.relu0', 'denseblock2', 'norm5'], 1e-4);
});

test('the reference backward through residuals and concatenations matches finite differences', () => {
  for (const [desc, tap] of [[TINY_RESNET, 'layer2'], [TINY_DENSENET, 'features.transition1']] as const) {
    const weights = randomNetWeights(desc, nextSeed());
    const ref = refParams(weights);
    const [h, w] = [13, 11];
    const x = t64([3, h, w], randArray(3 * h * w, nextSeed(), 0, 1));
    const tr = netForward(desc, ref, x, 'max', tap);
    const out = tr.outs.get(tap)!;
    const r = t64(out.shape, randArray(out.data.length, nextSeed()));
    const f = (v: Float64Array) => netForward(desc, ref, t64(x.shape, v), 'max', tap).outs.get(tap)!.data.reduce((a, y, i) => a + r.data[i] * y, 0);
    const g = netBackward(desc, ref, tr, 'max', (l) => (l === tap ? r : undefined), x);
    checkGradient(f, x.data, g.data, `${desc.name} backward`, { h: 1e-6, rtol: 1e-4 });
  }
});

test('a conv followed by a folded batch norm cannot be tapped itself', async () => {
  const gpu = await testGpu();
  const net = createNetwork(gpu, TINY_RESNET, randomNetWeights(TINY_RESNET, nextSeed()));
  assert.throws(() => planNetwork(gpu, net, { h: 16, w: 16, upTo: 'conv1', taps: ['conv1'], backward: false }), /folded into it; tap bn1/);
  net.destroy();
});

test.run();
