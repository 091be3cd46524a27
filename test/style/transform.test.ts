// Gatys on graph backbones through GatysObjective: the loss terms and gradient on a tiny ResNet (folded batch norms,
// residuals) and DenseNet against the float64 reference, with and without Wang et al.'s softmax feature transform;
// the reference gradient with the transform against finite differences; the GPU targets with the transform.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createTensor, readTensor, uploadTensor, type Tensor } from '../../src/gpu/tensor.ts';
import { denseNet } from '../../src/nets/densenet.ts';
import { createNetwork } from '../../src/nets/executor.ts';
import { resnetBottleneck } from '../../src/nets/resnet.ts';
import type { NetDescription } from '../../src/nets/describe.ts';
import { featuresReference, gatysReference, gramReference, type RefParams } from '../../src/reference/net.ts';
import { t64, type T64 } from '../../src/reference/tensor.ts';
import { GatysObjective, type LossConfig } from '../../src/style/objective.ts';
import { contentTargets, styleTargets } from '../../src/style/targets.ts';
import { featureTransformOf } from '../../src/style/transform.ts';
import { randomNetWeights } from '../../src/weights/net-weights.ts';
import { assertClose, checkGradient, nextSeed, randArray, testGpu } from '../helpers.ts';

const test = suite('graph backbones in the Gatys objective');

const RESNET = resnetBottleneck([[1, 4], [2, 6]], 'resnet-tiny');
const DENSENET = denseNet({ blocks: [2, 2], growth: 4, init: 6, bottleneck: 2 }, 'densenet-tiny');

function config(desc: NetDescription, transform: boolean): LossConfig {
  const res = desc === RESNET;
  const styleLayers = res ? ['relu', 'layer1', 'layer2'] : ['features.relu0', 'denseblock1', 'norm5'];
  return {
    contentLayers: res ? ['layer2.0'] : ['transition1'], styleLayers, styleLayerWeights: styleLayers.map(() => 1 / styleLayers.length),
    contentWeight: 1, styleWeight: 1e3, tvWeight: 0.1, normalization: 'paper',
    featureTransform: transform ? 'softmax' : 'none', softmaxTemperature: 0.7,
  };
}

async function check(desc: NetDescription, transform: boolean): Promise<void> {
  const gpu = await testGpu();
  const weights = randomNetWeights(desc, nextSeed());
  const ref: RefParams = { convs: [...weights.convs.values()], norms: [...weights.norms!.values()] };
  const net = createNetwork(gpu, desc, weights);
  const cfg = config(desc, transform);
  const T = transform ? { kind: 'softmax' as const, temperature: cfg.softmaxTemperature! } : undefined;
  const [h, w] = [27, 22];
  const img = () => t64([3, h, w], randArray(3 * h * w, nextSeed(), 0, 1));
  const [content, style, x] = [img(), img(), img()];
  const P = featuresReference(desc, ref, content, 'max', cfg.contentLayers, T);
  const A = new Map([...featuresReference(desc, ref, style, 'max', cfg.styleLayers, T)].map(([l, F]) => [l, gramReference(F)]));
  // The GPU targets (the transform applied on the GPU) against the reference's.
  const up = (t: T64, label: string) => uploadTensor(gpu, t.data, t.shape, label);
  const tr = featureTransformOf(cfg);
  const Pg = contentTargets(gpu, net, up(content, 'content'), cfg.contentLayers, 'max', tr);
  const Ag = await styleTargets(gpu, net, [up(style, 'style')], [1], cfg.styleLayers, 'max', h, w, tr);
  for (const [l, t] of Pg) assertClose(await readTensor(gpu, t), P.get(l)!.data, 2e-5, `${desc.name} content target ${l}`);
  for (const [l, t] of Ag) assertClose(await readTensor(gpu, t), A.get(l)!.data, 1e-4, `${desc.name} style target ${l}`);
  const obj = new GatysObjective(gpu, net, h, w, 'max', cfg, { content: Pg, style: Ag });
  const grad = createTensor(gpu, [3, h, w], 'grad');
  const total = await obj.evaluate(up(x, 'x'), grad);
  const want = gatysReference(desc, ref, x, 'max', cfg, { content: P, style: A });
  const what = `${desc.name}${transform ? ' + softmax' : ''}`;
  assertClose([obj.last!.content, obj.last!.style, obj.last!.tv, total], [want.terms.content, want.terms.style, want.terms.tv, want.terms.total], 1e-4, `${what}: loss terms`);
  assert.ok(want.terms.style > 0 && want.terms.content > 0, `${what}: both terms present`);
  assertClose(await readTensor(gpu, grad), want.grad.data, 1e-4, `${what}: gradient`);
  obj.destroy();
  net.destroy();
  for (const t of [...Pg.values(), ...Ag.values(), grad] as Tensor[]) t.buffer.destroy();
}

test('ResNet: loss terms, gradient and targets match float64, with and without the softmax transform', async () => {
  await check(RESNET, false);
  await check(RESNET, true);
});

test('DenseNet: loss terms, gradient and targets match float64, with the softmax transform', async () => {
  await check(DENSENET, true);
});

test('the reference gradient through the softmax transform matches finite differences', () => {
  const weights = randomNetWeights(RESNET, nextSeed());
  const ref: RefParams = { convs: [...weights.convs.values()], norms: [...weights.norms!.values()] };
  const cfg = config(RESNET, true);
  const T = { kind: 'softmax' as const, temperature: cfg.softmaxTemperature! };
  const [h, w] = [13, 12];
  const img = () => t64([3, h, w], randArray(3 * h * w, nextSeed(), 0, 1));
  const [content, style, x] = [img(), img(), img()];
  const P = featuresReference(RESNET, ref, content, 'max', cfg.contentLayers, T);
  const A = new Map([...featuresReference(RESNET, ref, style, 'max', cfg.styleLayers, T)].map(([l, F]) => [l, gramReference(F)]));
  const f = (v: Float64Array) => gatysReference(RESNET, ref, t64(x.shape, v), 'max', cfg, { content: P, style: A }).terms.total;
  const { grad } = gatysReference(RESNET, ref, x, 'max', cfg, { content: P, style: A });
  checkGradient(f, x.data, grad.data, 'softmax-transformed Gatys loss', { h: 1e-6, rtol: 1e-4 });
});

test.run();
