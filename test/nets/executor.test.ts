// The executor on descriptions other than VGG19: a normalised-VGG encoder (1x1 colour conv, reflection-padded
// convs, ceil-mode max pooling) and a decoder (upsampling, no final ReLU), forward and backward against the float64
// reference executor, the reference backward against finite differences; the optional weight gradients likewise.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PainterlyError } from '../../src/gpu/device.ts';
import { run } from '../../src/gpu/kernel.ts';
import { createTensor, poison, readTensor, uploadTensor, type Tensor } from '../../src/gpu/tensor.ts';
import type { NetDescription } from '../../src/nets/describe.ts';
import { backwardInto, createNetwork, forwardFrom, layerShapes, minimumSide, planNetwork } from '../../src/nets/executor.ts';
import { weightGradAlgorithm } from '../../src/ops/conv2d.ts';
import { vecAxpy } from '../../src/ops/vector.ts';
import { normalisedVggDecoder, normalisedVggEncoder, sequentialTensorNames } from '../../src/nets/normalised-vgg.ts';
import { netBackward, netForward, type RefConv } from '../../src/reference/net.ts';
import { t64, type T64 } from '../../src/reference/tensor.ts';
import { randomNetWeights } from '../../src/weights/net-weights.ts';
import { assertClose, checkGradient, nextSeed, randArray, testGpu } from '../helpers.ts';

const test = suite('executor');

const WIDTHS = [4, 6, 8, 8, 8];

function refConvs(desc: NetDescription, seed: number): RefConv[] {
  return [...randomNetWeights(desc, seed).convs.values()];
}

/** Runs desc forward on the GPU, tapping `tap`, and backward with a random gradient at `tap`; compares both. */
async function check(desc: NetDescription, h: number, w: number, tap: string, what: string): Promise<void> {
  const gpu = await testGpu();
  const weights = randomNetWeights(desc, nextSeed());
  const net = createNetwork(gpu, desc, weights);
  const convs = [...weights.convs.values()];
  const c = desc.inputChannels;
  const x = t64([c, h, w], randArray(c * h * w, nextSeed(), 0, 1));
  const plan = planNetwork(gpu, net, { h, w, upTo: tap, taps: [tap], backward: true, pooling: 'max' });
  const xt = uploadTensor(gpu, x.data, x.shape, 'x');
  const gx = createTensor(gpu, x.shape, 'gx');
  const out = plan.acts.get(tap)!;
  const dy = t64(out.shape, randArray(out.size, nextSeed()));
  const dyT = uploadTensor(gpu, dy.data, dy.shape, 'dy');
  poison(gpu, gx);
  const back = backwardInto(gpu, plan, (layer, _act, grad) => (layer === tap ? [vecAxpy(gpu, 1, dyT, grad)] : []), gx);
  run(gpu, [...forwardFrom(gpu, plan, xt), ...back.steps]);
  const tr = netForward(desc, convs, x, 'max', tap);
  assertClose(await readTensor(gpu, out), tr.outs.get(tap)!.data, 2e-5, `${what}: forward ${tap}`);
  const want = netBackward(desc, convs, tr, 'max', (l) => (l === tap ? dy : undefined));
  assertClose(await readTensor(gpu, gx), want.data, 2e-5, `${what}: backward to the input`);
  plan.destroy();
  net.destroy();
}

test('normalised-VGG encoder (reflect pad, 1x1 conv, ceil-mode pooling) matches float64, odd sizes', async () => {
  const enc = normalisedVggEncoder('enc3', 3, { widths: WIDTHS, ceil: true });
  await check(enc, 13, 11, 'relu3_1', 'encoder ceil');
  const floorEnc = normalisedVggEncoder('enc2', 2, { widths: WIDTHS });
  await check(floorEnc, 10, 7, 'relu2_1', 'encoder floor');
});

test('decoder (upsampling, reflect pad, no final ReLU) matches float64', async () => {
  const dec = normalisedVggDecoder('dec3', 3, { widths: WIDTHS, finalRelu: false });
  await check(dec, 3, 5, 'conv1_1', 'decoder');
  const decRelu = normalisedVggDecoder('dec2', 2, { widths: WIDTHS, finalRelu: true });
  await check(decRelu, 4, 3, 'relu1_1', 'decoder relu');
});

test('the reference backward of a whole description matches finite differences', () => {
  const desc = normalisedVggEncoder('enc2', 2, { widths: [3, 4, 4, 4, 4], ceil: true });
  const convs = refConvs(desc, nextSeed());
  const [h, w] = [5, 7];
  const x = t64([3, h, w], randArray(3 * h * w, nextSeed(), 0, 1));
  const tr = netForward(desc, convs, x, 'max', 'relu2_1');
  const out = tr.outs.get('relu2_1')!;
  const r: T64 = t64(out.shape, randArray(out.data.length, nextSeed()));
  const f = (v: Float64Array) => netForward(desc, convs, t64(x.shape, v), 'max', 'relu2_1').outs.get('relu2_1')!.data.reduce((a, y, i) => a + r.data[i] * y, 0);
  const g = netBackward(desc, convs, tr, 'max', (l) => (l === 'relu2_1' ? r : undefined));
  checkGradient(f, x.data, g.data, 'encoder backward', { h: 1e-6, rtol: 1e-4 });
});

/** Forward, then the backward with every conv's weight and bias gradient, on the GPU against float64. */
async function checkWeightGrads(desc: NetDescription, h: number, w: number, tap: string, what: string, winograd = false): Promise<void> {
  const gpu = await testGpu();
  const weights = randomNetWeights(desc, nextSeed());
  const net = createNetwork(gpu, desc, weights);
  const convs = [...weights.convs.values()];
  const c = desc.inputChannels;
  const x = t64([c, h, w], randArray(c * h * w, nextSeed(), 0, 1));
  const plan = planNetwork(gpu, net, { h, w, upTo: tap, taps: [tap], backward: true, weightGrads: true, pooling: 'max' });
  // Which convs run the Winograd weight gradient (in the plan's shared scratch) and which the direct kernel.
  const algos = convs.map((cv) => {
    const l = desc.layers.findIndex((x) => x.name === cv.name);
    const [, H, W] = l === 0 ? [0, h, w] : plan.shapes.get(desc.layers[l - 1].name)!;
    return weightGradAlgorithm(gpu, cv.cin, cv.cout, cv.k, H, W);
  });
  if (winograd) {
    assert.ok(algos.includes('winograd') && algos.includes('direct'), `${what}: both weight-gradient kernels run (${algos})`);
    assert.ok(plan.internal.weightScratch, `${what}: the plan holds the Winograd weight-gradient scratch`);
  }
  const xt = uploadTensor(gpu, x.data, x.shape, 'x');
  const gx = createTensor(gpu, x.shape, 'gx');
  const out = plan.acts.get(tap)!;
  const dy = t64(out.shape, randArray(out.size, nextSeed()));
  const dyT = uploadTensor(gpu, dy.data, dy.shape, 'dy');
  const dws = new Map(convs.map((cv) => [cv.name, {
    weight: createTensor(gpu, [cv.cout, cv.cin, cv.k, cv.k], `d${cv.name}.weight`), bias: createTensor(gpu, [cv.cout], `d${cv.name}.bias`),
  }]));
  for (const t of [gx, ...[...dws.values()].flatMap((d) => [d.weight, d.bias])]) poison(gpu, t);
  const lossAt = (layer: string, _act: Tensor, grad: Tensor) => (layer === tap ? [vecAxpy(gpu, 1, dyT, grad)] : []);
  const back = backwardInto(gpu, plan, lossAt, gx, { weights: dws, image: xt });
  run(gpu, [...forwardFrom(gpu, plan, xt), ...back.steps]);
  const tr = netForward(desc, convs, x, 'max', tap);
  const want = new Map<string, { weight: T64; bias: T64 }>();
  const gxWant = netBackward(desc, convs, tr, 'max', (l) => (l === tap ? dy : undefined), x, want);
  assertClose(await readTensor(gpu, gx), gxWant.data, 2e-5, `${what}: backward to the input`);
  assert.equal([...want.keys()].sort(), [...dws.keys()].sort(), `${what}: every conv has a reference weight gradient`);
  for (const [name, d] of dws) {
    assertClose(await readTensor(gpu, d.weight), want.get(name)!.weight.data, 2e-5, `${what}: d${name}.weight`);
    assertClose(await readTensor(gpu, d.bias), want.get(name)!.bias.data, 2e-5, `${what}: d${name}.bias`);
  }
  plan.destroy();
  net.destroy();
}

test('weight gradients (option): every conv of an encoder and a decoder matches float64, the first conv reading the image', async () => {
  await checkWeightGrads(normalisedVggEncoder('enc3', 3, { widths: WIDTHS, ceil: true }), 13, 11, 'relu3_1', 'encoder ceil');
  await checkWeightGrads(normalisedVggDecoder('dec3', 3, { widths: WIDTHS, finalRelu: false }), 3, 5, 'conv1_1', 'decoder');
  // The wct-16x widths 16 and 32: Winograd forward, input and weight gradients (32->16, 16->16), direct for 16->3.
  await checkWeightGrads(normalisedVggDecoder('dec2', 2, { widths: [16, 32, 8, 8, 8], finalRelu: true }), 6, 7, 'relu1_1', 'decoder 16/32', true);
});

test('the reference weight gradients of a whole description match finite differences', () => {
  const descs = [
    normalisedVggEncoder('enc2', 2, { widths: [3, 4, 4, 4, 4], ceil: true }),
    normalisedVggDecoder('dec2', 2, { widths: [3, 4, 4, 4, 4], finalRelu: true }),
  ];
  for (const desc of descs) {
    const convs = refConvs(desc, nextSeed()).map((c) => ({ ...c, weight: Float64Array.from(c.weight), bias: Float64Array.from(c.bias) }));
    const [h, w] = [5, 7];
    const c = desc.inputChannels;
    const x = t64([c, h, w], randArray(c * h * w, nextSeed(), 0, 1));
    const tap = desc.layers.at(-1)!.name;
    const tr = netForward(desc, convs, x, 'max', tap);
    const out = tr.outs.get(tap)!;
    const r: T64 = t64(out.shape, randArray(out.data.length, nextSeed()));
    // checkGradient perturbs a weight array in place; f reads the same array through `convs`.
    const f = () => netForward(desc, convs, x, 'max', tap).outs.get(tap)!.data.reduce((a, y, i) => a + r.data[i] * y, 0);
    const grads = new Map<string, { weight: T64; bias: T64 }>();
    netBackward(desc, convs, tr, 'max', (l) => (l === tap ? r : undefined), x, grads);
    for (const cv of convs) {
      checkGradient(f, cv.weight, grads.get(cv.name)!.weight.data, `${desc.name} d${cv.name}.weight`, { h: 1e-6, rtol: 1e-4 });
      checkGradient(f, cv.bias, grads.get(cv.name)!.bias.data, `${desc.name} d${cv.name}.bias`, { h: 1e-6, rtol: 1e-4 });
    }
  }
});

test('weight gradients: one-line errors for a plan without them, a layer that is not a conv, the first conv without the image', async () => {
  const gpu = await testGpu();
  const enc = normalisedVggEncoder('enc2', 2, { widths: WIDTHS });
  const net = createNetwork(gpu, enc, randomNetWeights(enc, 1));
  const one = (re: RegExp) => (e: Error) => e instanceof PainterlyError && re.test(e.message) && !e.message.includes('\n');
  const gx = createTensor(gpu, [3, 8, 8], 'gx');
  const dw = (name: string, shape: number[]) => new Map([[name, { weight: createTensor(gpu, shape, 'dw') }]]);
  assert.throws(() => planNetwork(gpu, net, { h: 8, w: 8, upTo: 'relu2_1', taps: ['relu2_1'], backward: false, weightGrads: true }), one(/weightGrads needs backward: true/));
  const plain = planNetwork(gpu, net, { h: 8, w: 8, upTo: 'relu2_1', taps: ['relu2_1'], backward: true });
  assert.throws(() => backwardInto(gpu, plain, () => [], gx, { weights: dw('conv1_1', [4, 3, 3, 3]) }), one(/need a plan made with weightGrads/));
  const plan = planNetwork(gpu, net, { h: 8, w: 8, upTo: 'relu2_1', taps: ['relu2_1'], backward: true, weightGrads: true });
  assert.throws(() => backwardInto(gpu, plan, () => [], gx, { weights: dw('relu1_1', [4, 3, 3, 3]) }), one(/relu1_1 is not a convolution of the plan/));
  assert.throws(() => backwardInto(gpu, plan, () => [], gx, { weights: dw('conv0', [3, 3, 1, 1]) }), one(/conv0 reads the image: pass it as image/));
  backwardInto(gpu, plan, () => [], gx, { weights: dw('conv1_1', [4, 3, 3, 3]) }); // a conv reading a kept layer needs nothing more
  plan.destroy();
  plain.destroy();
  net.destroy();
});

test('shapes, minimum sides, name tables and errors', async () => {
  const enc = normalisedVggEncoder('enc4', 4, { widths: WIDTHS, ceil: true });
  assert.equal(layerShapes(enc, 13, 11, 'relu4_1').get('relu4_1'), [8, 2, 2]);
  assert.equal(layerShapes(enc, 13, 11, 'pool1').get('pool1'), [4, 7, 6]);
  assert.is(minimumSide(enc, 'relu4_1'), 9); // ceil-mode pools: 9 -> 5 -> 3 -> 2, a 2-px plane for the reflection pad at level 3
  // pytorch-AdaIN's nn.Sequential indices: conv0 '0', conv1_1 '2', conv1_2 '5', conv2_1 '9', conv4_1 '29'
  const names = sequentialTensorNames(enc);
  assert.equal(['conv0', 'conv1_1', 'conv1_2', 'conv2_1', 'conv4_1'].map((l) => names.get(l)), ['0', '2', '5', '9', '29']);
  const dec = normalisedVggDecoder('dec4', 4, { widths: [64, 128, 256, 512, 512], finalRelu: false });
  const dn = sequentialTensorNames(dec);
  assert.equal(['conv4_1', 'conv3_4', 'conv3_1', 'conv2_2', 'conv1_1'].map((l) => dn.get(l)), ['1', '5', '14', '18', '28']);
  const gpu = await testGpu();
  const net = createNetwork(gpu, enc, randomNetWeights(enc, 1));
  assert.throws(() => planNetwork(gpu, net, { h: 16, w: 16, upTo: 'relu9_9', taps: [], backward: false }), (e: Error) => e instanceof PainterlyError && /unknown layer "relu9_9"/.test(e.message));
  assert.throws(() => planNetwork(gpu, net, { h: 4, w: 4, upTo: 'relu4_1', taps: [], backward: false }), (e: Error) => e instanceof PainterlyError && /too small/.test(e.message));
  const plan = planNetwork(gpu, net, { h: 16, w: 16, upTo: 'relu2_1', taps: ['relu2_1'], backward: false });
  assert.throws(() => backwardInto(gpu, plan, () => [], createTensor(gpu, [3, 16, 16], 'g')), (e: Error) => e instanceof PainterlyError && /without backward/.test(e.message));
  plan.destroy();
  net.destroy();
});

test.run();
