// Photorealistic transfer glue: options and flags, the matting term inside the Gatys objective, smoothing of images.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PainterlyError } from '../../src/gpu/device.ts';
import { createTensor, readTensor, uploadTensor, type Tensor } from '../../src/gpu/tensor.ts';
import { parseStylizeArgs } from '../../src/cli/args.ts';
import { VGG19_16X } from '../../src/nets/backbones.ts';
import { createNetwork } from '../../src/nets/executor.ts';
import { randomNetWeights } from '../../src/weights/net-weights.ts';
import * as gref from '../../src/reference/guided.ts';
import * as mref from '../../src/reference/matting.ts';
import { t64 } from '../../src/reference/tensor.ts';
import { GatysObjective, type LossConfig } from '../../src/style/objective.ts';
import { resolveStylizeOptions } from '../../src/style/options.ts';
import { DEFAULT_SMOOTH_EPS, DEFAULT_SMOOTH_RADIUS, PHOTOREAL_MATTING_PER_TV, smoothImage, smoothRadiusFor } from '../../src/style/photoreal.ts';
import { contentTargets, styleTargets } from '../../src/style/targets.ts';
import { BACKBONES } from '../../src/nets/backbones.ts';
import { assertClose, nextSeed, randArray, testGpu } from '../helpers.ts';

const test = suite('photoreal');
const base = { content: 'c.jpg', style: 's.jpg' };
const one = (re: RegExp) => (e: Error) => e instanceof PainterlyError && re.test(e.message) && !e.message.includes('\n');

test('options: defaults off; --photorealistic turns on content init and λ_m = 300 x the default TV weight', () => {
  const o = resolveStylizeOptions(base);
  assert.equal([o.smooth, o.smoothRadius, o.smoothEps, o.mattingWeight, o.photorealistic], [false, DEFAULT_SMOOTH_RADIUS, DEFAULT_SMOOTH_EPS, 0, false]);
  const p = resolveStylizeOptions({ ...base, photorealistic: true });
  assert.is(p.init, 'content');
  assert.is(p.mattingWeight, PHOTOREAL_MATTING_PER_TV * BACKBONES.vgg19.defaults.paper.tvWeight);
  const b = resolveStylizeOptions({ ...base, photorealistic: true, backbone: 'vgg19-16x', lossNormalization: 'scale-free' });
  assert.is(b.mattingWeight, PHOTOREAL_MATTING_PER_TV * BACKBONES['vgg19-16x'].defaults.scaleFree.tvWeight);
  // Explicit values win.
  const q = resolveStylizeOptions({ ...base, photorealistic: true, mattingWeight: 5, init: 'noise' });
  assert.equal([q.mattingWeight, q.init], [5, 'noise']);
  assert.is(resolveStylizeOptions({ ...base, method: 'wct', smooth: true, smoothRadius: 4 }).smoothRadius, 4);
});

test('options: bad values and methods are one-line errors', () => {
  assert.throws(() => resolveStylizeOptions({ ...base, method: 'wct', photorealistic: true }), one(/photorealistic: does not apply to --method wct/));
  assert.throws(() => resolveStylizeOptions({ ...base, method: 'adain', mattingWeight: 1 }), one(/mattingWeight: does not apply/));
  assert.throws(() => resolveStylizeOptions({ ...base, mattingWeight: -1 }), one(/mattingWeight: expected a non-negative number/));
  assert.throws(() => resolveStylizeOptions({ ...base, smoothRadius: 4 }), one(/smoothRadius: only applies with smoothing on/));
  assert.throws(() => resolveStylizeOptions({ ...base, smooth: true, smoothRadius: 2.5 }), one(/smoothRadius: expected an integer/));
  assert.throws(() => resolveStylizeOptions({ ...base, smooth: true, smoothEps: 0 }), one(/smoothEps: expected a number from 1e-6/));
  assert.throws(() => resolveStylizeOptions({ ...base, smooth: 'yes' as unknown as boolean }), one(/smooth: expected true or false/));
});

test('flags: --smooth, --smooth-radius, --smooth-eps, --matting-weight, --photorealistic', () => {
  const req = ['--content', 'c.jpg', '--style', 's.jpg', '--out', 'o.png'];
  const o = parseStylizeArgs([...req, '--method', 'wct', '--smooth', '--smooth-radius', '12', '--smooth-eps=1e-2']).options!;
  assert.equal([o.smooth, o.smoothRadius, o.smoothEps], [true, 12, 1e-2]);
  const g = parseStylizeArgs([...req, '--photorealistic', '--matting-weight', '1e4']).options!;
  assert.equal([g.photorealistic, g.mattingWeight, g.init], [true, 1e4, 'content']);
  assert.throws(() => parseStylizeArgs([...req, '--method', 'wct', '--photorealistic']), one(/--photorealistic: does not apply to --method wct/));
  assert.throws(() => parseStylizeArgs([...req, '--smooth-eps', '1e-2']), one(/--smooth-eps: only applies/));
});

test('smoothRadiusFor scales with the longest side, at least 1', () => {
  assert.is(smoothRadiusFor(16, 512, 384), 16);
  assert.is(smoothRadiusFor(16, 768, 1024), 32);
  assert.is(smoothRadiusFor(8, 20, 10), 1);
});

test('smoothImage = the float64 guided filter of the image guided by the content (resized), clamped', async () => {
  const gpu = await testGpu();
  const W = 37, H = 29, n = W * H;
  const content = { width: W, height: H, data: Float32Array.from(randArray(3 * n, nextSeed(), 0, 1)) };
  const styl = { width: W, height: H, data: Float32Array.from(randArray(3 * n, nextSeed(), 0, 1)) };
  const r = smoothRadiusFor(64, W, H);
  const want = gref.guidedFilter(t64([3, H, W], content.data), t64([3, H, W], styl.data), r, 1e-2).data.map((v) => Math.min(1, Math.max(0, v)));
  const got = await smoothImage(gpu, content, styl, 64, 1e-2);
  assert.equal([got.width, got.height], [W, H]);
  assertClose(got.data, want, 2e-5, 'smoothImage', 1);
});

function cfg(over: Partial<LossConfig> = {}): LossConfig {
  return {
    contentLayers: ['relu4_2'], styleLayers: ['relu1_1', 'relu3_1'], styleLayerWeights: [0.5, 0.5],
    contentWeight: 1, styleWeight: 1e2, tvWeight: 0.1, normalization: 'paper', ...over,
  };
}

test('Gatys objective: the matting term adds λ Σ V_cᵀ M V_c to the loss and 2λ M V to the gradient', async () => {
  const gpu = await testGpu();
  const H = 24, W = 21, n = 3 * H * W;
  const net = createNetwork(gpu, VGG19_16X, randomNetWeights(VGG19_16X, nextSeed()));
  const content = { width: W, height: H, data: Float32Array.from(randArray(n, nextSeed(), 0, 1)) };
  const style = uploadTensor(gpu, randArray(n, nextSeed(), 0, 1), [3, H, W], 'style');
  const x = randArray(n, nextSeed(), 0, 1);
  for (const normalization of ['paper', 'scale-free'] as const) {
    const c = cfg({ normalization });
    const ct = uploadTensor(gpu, content.data, [3, H, W], 'content');
    const P = contentTargets(gpu, net, ct, c.contentLayers, 'max');
    const A = await styleTargets(gpu, net, [style], [1], c.styleLayers, 'max', H, W);
    const lambda = 3.5;
    const plain = new GatysObjective(gpu, net, H, W, 'max', c, { content: P, style: A });
    const reg = new GatysObjective(gpu, net, H, W, 'max', { ...c, mattingWeight: lambda }, { content: P, style: A }, content);
    const xs = uploadTensor(gpu, x, [n], 'x');
    const g0 = createTensor(gpu, [n], 'g0'), g1 = createTensor(gpu, [n], 'g1');
    const f0 = await plain.evaluate(xs, g0);
    const f1 = await reg.evaluate(xs, g1);
    const want = mref.mattingEnergy(t64([3, H, W], content.data), t64([3, H, W], x), 1e-7);
    const w = normalization === 'scale-free' ? lambda / (H * W) : lambda;
    assertClose([reg.last!.matting!], [want.energy], 1e-4, `matting term ${normalization}`);
    assertClose([f1 - f0], [w * want.energy], 1e-3, `total ${normalization}`, Math.abs(f0) * 1e-3);
    const a = await readTensor(gpu, g0), b = await readTensor(gpu, g1);
    assertClose(b.map((v, i) => v - a[i]), want.grad.data.map((v) => w * v), 1e-4, `gradient ${normalization}`, Math.max(...a.map(Math.abs)) * 1e-2);
    assert.throws(() => new GatysObjective(gpu, net, H, W, 'max', { ...c, mattingWeight: 1 }, { content: P, style: A }), one(/needs the 21x24 content image/));
    plain.destroy(); reg.destroy();
    for (const t of [...P.values(), ...A.values(), ct, xs, g0, g1] as Tensor[]) t.buffer.destroy();
  }
});

test.run();
