// The whole Gatys evaluation on the GPU (VGG19 with reduced channel counts, tiny images) against the float64
// reference, and the gradient against finite differences; an evaluation is one submit (plus the loss readback).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createTensor, poison, readTensor, uploadTensor, type Tensor } from '../../src/gpu/tensor.ts';
import { createVgg19, VGG19, VGG19_BLOCKS, type Pooling } from '../../src/nets/vgg19.ts';
import { VGG19_16X } from '../../src/nets/backbones.ts';
import { createNetwork, layerShapes } from '../../src/nets/executor.ts';
import { convAlgorithmFor } from '../../src/ops/conv2d.ts';
import { randomNetWeights } from '../../src/weights/net-weights.ts';
import { featuresReference, gatysReference, gramReference, type RefConv } from '../../src/reference/net.ts';
import { t64, type T64 } from '../../src/reference/tensor.ts';
import { GatysObjective, type LossConfig } from '../../src/style/objective.ts';
import { contentTargets, styleTargets } from '../../src/style/targets.ts';
import { assertClose, nextSeed, randArray, rng, testGpu } from '../helpers.ts';

const test = suite('gatys objective');

/** VGG19's layer structure with small channel counts and He-style random weights. */
function tinyVgg(seed: number, width = [4, 6, 8, 8, 8]): (RefConv & { weight: Float32Array; bias: Float32Array })[] {
  const r = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const convs: (RefConv & { weight: Float32Array; bias: Float32Array })[] = [];
  let cin = 3;
  VGG19_BLOCKS.forEach((block, b) => block.forEach((_, i) => {
    const cout = width[b];
    const std = Math.sqrt(2 / (cin * 9));
    convs.push({
      name: `conv${b + 1}_${i + 1}`, cin, cout, k: 3,
      weight: Float32Array.from({ length: cout * cin * 9 }, () => std * gauss()),
      bias: Float32Array.from({ length: cout }, () => 0.05 * (r() - 0.5)),
    });
    cin = cout;
  }));
  return convs;
}

function config(over: Partial<LossConfig> = {}): LossConfig {
  return {
    contentLayers: ['relu4_2'], styleLayers: ['relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1'],
    styleLayerWeights: [0.2, 0.2, 0.2, 0.2, 0.2], contentWeight: 1, styleWeight: 1e3, tvWeight: 0.1, normalization: 'paper', ...over,
  };
}

const H = 22;
const W = 19;

/** Runs fn counting queue submits: an evaluation is one submit of the recorded program plus one of the loss readback. */
async function submitsDuring<T>(gpu: Awaited<ReturnType<typeof testGpu>>, fn: () => Promise<T>): Promise<{ value: T; submits: number }> {
  const q = gpu.device.queue;
  const submit = q.submit;
  let submits = 0;
  q.submit = function (this: GPUQueue, buffers: Iterable<GPUCommandBuffer>) { submits++; return submit.call(this, buffers); };
  try {
    return { value: await fn(), submits };
  } finally {
    q.submit = submit;
  }
}

async function setup(pooling: Pooling, cfg: LossConfig, width?: number[]) {
  const gpu = await testGpu();
  const convs = tinyVgg(nextSeed(), width);
  const net = createVgg19(gpu, { convs, pretrained: false, source: 'test' });
  const content = t64([3, H, W], randArray(3 * H * W, nextSeed(), 0, 1));
  const style = t64([3, H, W], randArray(3 * H * W, nextSeed(), 0, 1));
  const x = t64([3, H, W], randArray(3 * H * W, nextSeed(), 0, 1));
  const P = featuresReference(VGG19, convs, content, pooling, cfg.contentLayers);
  const S = featuresReference(VGG19, convs, style, pooling, cfg.styleLayers);
  const A = new Map<string, T64>([...S].map(([l, F]) => [l, gramReference(F)]));
  const up = (m: Map<string, T64>) => new Map<string, Tensor>([...m].map(([l, t]) => [l, uploadTensor(gpu, t.data, t.shape, l)]));
  const obj = new GatysObjective(gpu, net, H, W, pooling, cfg, { content: up(P), style: up(A) });
  return { gpu, convs, net, content, style, x, P, A, obj };
}

for (const pooling of ['avg', 'max'] as Pooling[]) {
  for (const cfg of [config(), config({ contentLayers: ['conv4_2', 'relu2_2'], normalization: 'scale-free', tvWeight: 3 })]) {
    test(`loss terms and gradient match float64 (${pooling} pooling, content ${cfg.contentLayers}, ${cfg.normalization})`, async () => {
      const { gpu, convs, x, P, A, obj } = await setup(pooling, cfg);
      const want = gatysReference(VGG19, convs, x, pooling, cfg, { content: P, style: A });
      const gx = uploadTensor(gpu, x.data, x.shape, 'x');
      const grad = createTensor(gpu, x.shape, 'grad');
      poison(gpu, grad);
      const total = await obj.evaluate(gx, grad);
      const t = obj.last!;
      for (const k of ['content', 'style', 'tv', 'total'] as const) {
        assertClose([t[k]], [want.terms[k]], 2e-4, `${k} loss`);
      }
      assert.is(total, t.total);
      assert.ok(want.terms.style > 0 && want.terms.content > 0, 'the test exercises both losses');
      assertClose(await readTensor(gpu, grad), want.grad.data, 2e-3, 'gradient w.r.t. the image');
      // A second evaluation reuses the recorded program and must give the same numbers bit for bit, in one submit
      // (and the readback's).
      const again = await submitsDuring(gpu, () => obj.evaluate(gx, grad));
      assert.is(again.value, total);
      assert.is(again.submits, 2, 'one submit for the evaluation, one for the loss readback');
    });
  }
}

// Winograd engages at min(channels) >= 16 (multiples of 4): widths 16..24 run it inside the whole objective, forward
// and input gradient, on an image whose width is not a multiple of 4 (the scalar output path) and one that is.
for (const [h, w] of [[22, 19], [20, 24]]) {
  test(`loss terms and gradient match float64 with Winograd convolutions (16-24 channels, ${h}x${w}, max pooling)`, async () => {
    const cfg = config();
    const width = [16, 16, 20, 24, 24];
    const gpu = await testGpu();
    const convs = tinyVgg(nextSeed(), width);
    const net = createVgg19(gpu, { convs, pretrained: false, source: 'test' });
    const winograd = [...net.convs].filter(([name, c]) => {
      const shape = layerShapes(net, h, w, name).get(name)!;
      const a = convAlgorithmFor(gpu, c, shape[1], shape[2]);
      return a.forward === 'winograd' && a.input === 'winograd';
    }).map(([name]) => name);
    assert.ok(winograd.includes('conv1_2') && winograd.includes('conv3_1'), `Winograd runs in the objective (${winograd})`);
    const rand = () => t64([3, h, w], randArray(3 * h * w, nextSeed(), 0, 1));
    const content = rand(), style = rand(), x = rand();
    const P = featuresReference(VGG19, convs, content, 'max', cfg.contentLayers);
    const A = new Map<string, T64>([...featuresReference(VGG19, convs, style, 'max', cfg.styleLayers)].map(([l, F]) => [l, gramReference(F)]));
    const up = (m: Map<string, T64>) => new Map<string, Tensor>([...m].map(([l, t]) => [l, uploadTensor(gpu, t.data, t.shape, l)]));
    const obj = new GatysObjective(gpu, net, h, w, 'max', cfg, { content: up(P), style: up(A) });
    const want = gatysReference(VGG19, convs, x, 'max', cfg, { content: P, style: A });
    const gx = uploadTensor(gpu, x.data, x.shape, 'x');
    const grad = createTensor(gpu, x.shape, 'grad');
    poison(gpu, grad);
    await obj.evaluate(gx, grad);
    // The ReLU backward of every conv whose input gradient runs Winograd is fused into it (masked input transform).
    const masks = obj.stages(gx, grad).all.filter((st) => st.label.includes('wino_input') && st.kernel.spec.constants?.MASK === 1);
    assert.ok(masks.length >= 2, `fused ReLU backwards in the program (${masks.length})`);
    for (const k of ['content', 'style', 'tv', 'total'] as const) assertClose([obj.last![k]], [want.terms[k]], 2e-4, `${k} loss`);
    assert.ok(want.terms.style > 0 && want.terms.content > 0, 'the test exercises both losses');
    assertClose(await readTensor(gpu, grad), want.grad.data, 2e-3, 'gradient w.r.t. the image');
    obj.destroy();
    net.destroy();
  });
}

test('reference gradient matches finite differences along random directions', async () => {
  const cfg = config({ contentLayers: ['relu3_2'] });
  const convs = tinyVgg(nextSeed(), [3, 4, 4, 5, 5]);
  const [h, w] = [16, 17];
  const img = (s: number) => t64([3, h, w], randArray(3 * h * w, s, 0, 1));
  const content = img(nextSeed());
  const style = img(nextSeed());
  const x = img(nextSeed());
  const P = featuresReference(VGG19, convs, content, 'avg', cfg.contentLayers);
  const A = new Map([...featuresReference(VGG19, convs, style, 'avg', cfg.styleLayers)].map(([l, F]) => [l, gramReference(F)]));
  const f = (v: Float64Array) => gatysReference(VGG19, convs, t64(x.shape, v), 'avg', cfg, { content: P, style: A }).terms.total;
  const { grad } = gatysReference(VGG19, convs, x, 'avg', cfg, { content: P, style: A });
  const r = rng(nextSeed());
  for (let k = 0; k < 3; k++) {
    const d = Float64Array.from(x.data, () => r() - 0.5);
    const h = 1e-7; // small: a step that crosses a ReLU kink makes the quotient meaningless, and float64 affords it
    const xp = x.data.map((v, i) => v + h * d[i]);
    const xm = x.data.map((v, i) => v - h * d[i]);
    const fd = (f(xp) - f(xm)) / (2 * h);
    const an = grad.data.reduce((a, g, i) => a + g * d[i], 0);
    assertClose([fd], [an], 1e-5, `directional derivative ${k}`);
  }
});

test('GPU gradient matches float32 finite differences along random directions', async () => {
  const cfg = config();
  const { gpu, x, obj, convs, P, A } = await setup('avg', cfg);
  const ref = (v: Float64Array) => gatysReference(VGG19, convs, t64(x.shape, v), 'avg', cfg, { content: P, style: A });
  const an64 = ref(x.data).grad.data;
  const gx = uploadTensor(gpu, x.data, x.shape, 'x');
  const grad = createTensor(gpu, x.shape, 'grad');
  await obj.evaluate(gx, grad);
  const g = await readTensor(gpu, grad);
  const r = rng(nextSeed());
  for (let k = 0; k < 2; k++) {
    // Random magnitudes with the gradient's signs: a float32 loss carries ~1e-7 |f| of rounding, so the direction
    // must change f by much more than that for the difference quotient to mean anything (a fully random direction
    // is nearly orthogonal to the gradient in 1254 dimensions).
    const d = Float64Array.from(x.data, (_, i) => r() * Math.sign(g[i]));
    const h = 1e-2;
    const at = async (s: number) => {
      const t = uploadTensor(gpu, x.data.map((v, i) => v + s * h * d[i]), x.shape, 'x±hd');
      const scratch = createTensor(gpu, x.shape, 'scratch-grad');
      const v = await obj.evaluate(t, scratch);
      t.buffer.destroy(); scratch.buffer.destroy();
      return v;
    };
    // Fourth-order central difference: float32 losses need a large h, so cancel the h² curvature term too.
    const fd = (8 * (await at(1) - await at(-1)) - (await at(2) - await at(-2))) / (12 * h);
    const an = g.reduce((a, gi, i) => a + gi * d[i], 0);
    // The same stencil in float64: with a step this large it can cross ReLU kinks and max-pool switches, which no
    // precision fixes, so the GPU may miss by what exact arithmetic misses by, plus float32 slack.
    const f64 = (s: number) => ref(x.data.map((v, i) => v + s * h * d[i])).terms.total;
    const fd64 = (8 * (f64(1) - f64(-1)) - (f64(2) - f64(-2))) / (12 * h);
    const an64d = an64.reduce((a, gi, i) => a + gi * d[i], 0);
    const stencil = Math.abs(fd64 - an64d);
    assert.ok(stencil <= 0.05 * Math.abs(an64d), `directional derivative ${k}: the float64 stencil itself misses by ${stencil} (step too large)`);
    assert.ok(Math.abs(fd - an) <= 5e-3 * Math.abs(an) + 2 * stencil,
      `directional derivative ${k}: float32 FD ${fd} vs GPU gradient ${an} (float64 stencil misses by ${stencil.toExponential(2)})`);
  }
});

test('GPU targets: content features and blended, size-scaled style Grams match float64', async () => {
  const gpu = await testGpu();
  const convs = tinyVgg(nextSeed());
  const net = createVgg19(gpu, { convs, pretrained: false, source: 'test' });
  const layers = ['relu1_1', 'relu3_1', 'relu5_1'];
  const content = t64([3, H, W], randArray(3 * H * W, nextSeed(), 0, 1));
  const s1 = t64([3, 33, 27], randArray(3 * 33 * 27, nextSeed(), 0, 1));
  const s2 = t64([3, H, W], randArray(3 * H * W, nextSeed(), 0, 1));
  const P = contentTargets(gpu, net, uploadTensor(gpu, content.data, content.shape, 'c'), ['relu4_2'], 'max');
  assertClose(await readTensor(gpu, P.get('relu4_2')!), featuresReference(VGG19, convs, content, 'max', ['relu4_2']).get('relu4_2')!.data, 1e-4, 'P relu4_2');
  const A = await styleTargets(gpu, net, [s1, s2].map((s) => uploadTensor(gpu, s.data, s.shape, 's')), [3, 1], layers, 'max', H, W);
  const F1 = featuresReference(VGG19, convs, s1, 'max', layers);
  const F2 = featuresReference(VGG19, convs, s2, 'max', layers);
  const C = featuresReference(VGG19, convs, content, 'max', layers);
  for (const l of layers) {
    const m = C.get(l)!.shape[1] * C.get(l)!.shape[2];
    const m1 = F1.get(l)!.shape[1] * F1.get(l)!.shape[2];
    const g1 = gramReference(F1.get(l)!, 0.75 * m / m1).data;
    const g2 = gramReference(F2.get(l)!, 0.25).data;
    assertClose(await readTensor(gpu, A.get(l)!), g1.map((v, i) => v + g2[i]), 1e-4, `A ${l}`);
  }
});

test('vgg19-16x (1x1 colour conv, reflection padding, max pooling; a reduced-width copy): loss and gradient match float64, one submit', async () => {
  const gpu = await testGpu();
  const weights = randomNetWeights(VGG19_16X, nextSeed(), { channels: [3, 4, 4, 5, 5, 6, 6, 6, 6, 8, 8, 8, 8, 8] });
  const net = createNetwork(gpu, VGG19_16X, weights);
  const convs = [...weights.convs.values()];
  const [h, w] = [36, 34]; // relu5_1's reflection pad needs 2 px at level 4
  const img = () => t64([3, h, w], randArray(3 * h * w, nextSeed(), 0, 1));
  const [content, style, x] = [img(), img(), img()];
  const cfg = config();
  const up = (m: Map<string, T64>) => new Map<string, Tensor>([...m].map(([l, t]) => [l, uploadTensor(gpu, t.data, t.shape, l)]));
  const P = featuresReference(VGG19_16X, convs, content, 'max', cfg.contentLayers);
  const A = new Map([...featuresReference(VGG19_16X, convs, style, 'max', cfg.styleLayers)].map(([l, F]) => [l, gramReference(F)]));
  const obj = new GatysObjective(gpu, net, h, w, 'max', cfg, { content: up(P), style: up(A) });
  const want = gatysReference(VGG19_16X, convs, x, 'max', cfg, { content: P, style: A });
  const grad = createTensor(gpu, x.shape, 'grad');
  poison(gpu, grad);
  const gx = uploadTensor(gpu, x.data, x.shape, 'x');
  const total = await obj.evaluate(gx, grad);
  for (const k of ['content', 'style', 'tv', 'total'] as const) assertClose([obj.last![k]], [want.terms[k]], 2e-4, `vgg19-16x ${k} loss`);
  assertClose(await readTensor(gpu, grad), want.grad.data, 2e-3, 'vgg19-16x gradient');
  const again = await submitsDuring(gpu, () => obj.evaluate(gx, grad));
  assert.equal([again.value, again.submits], [total, 2], 'the same result from one submit (and the readback)');
  obj.destroy();
  net.destroy();
});

test.run();
