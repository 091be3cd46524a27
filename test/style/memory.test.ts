// The engine's GPU memory: planned bytes (a dry run of the engine's own planning code) against a real run's measured
// peak, everything freed when a run ends, --max-memory tiling to fit a budget with the same image, a one-line
// refusal for an impossible budget, and the fallback when the device runs out of memory while planning.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openDawnGpu } from '../../src/gpu/dawn.ts';
import { PainterlyError, type Gpu } from '../../src/gpu/device.ts';
import type { RgbImage } from '../../src/image/image.ts';
import { createNetwork, type Network } from '../../src/nets/executor.ts';
import { VGG19 } from '../../src/nets/vgg19.ts';
import { plannedBytesAt, stylizeImages, type EngineSettings } from '../../src/style/engine.ts';
import { parseBytes } from '../../src/style/options.ts';
import { randomNetWeights } from '../../src/weights/net-weights.ts';
import { assertClose, nextSeed, randArray, takeGpuErrors, testGpu } from '../helpers.ts';

const test = suite('engine memory');

const image = (w: number, h: number): RgbImage => ({ width: w, height: h, data: Float32Array.from(randArray(3 * h * w, nextSeed(), 0, 1)) });

function settings(over: Partial<EngineSettings> = {}): EngineSettings {
  return {
    size: 64, scales: [], styleScale: 1, styleBlendWeights: [],
    loss: {
      contentLayers: ['relu4_2'], styleLayers: ['relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1'], styleLayerWeights: [0.2, 0.2, 0.2, 0.2, 0.2],
      contentWeight: 1, styleWeight: 1e3, tvWeight: 0.1, normalization: 'paper',
    },
    pooling: 'max', init: 'content', optimizer: 'lbfgs', lr: 1, iters: 8, lbfgsHistory: 3, lineSearch: 'none', seed: 1,
    preserveColors: 'none', saveEvery: 0, ...over,
  };
}

/** The default layers on a narrow VGG19 (16-24 channels: Winograd runs). */
const network = (gpu: Gpu): Network =>
  createNetwork(gpu, VGG19, randomNetWeights(VGG19, 7, { upTo: 'relu5_1', channels: [16, 16, 16, 16, 20, 20, 20, 20, 24, 24, 24, 24, 24] }));

test('planned bytes agree with the measured peak of a real run, and a run frees everything it allocated', async () => {
  const gpu = await testGpu();
  const net = network(gpu);
  const [w, h] = [64, 56];
  const s = settings({ size: w });
  const planned = await plannedBytesAt(gpu, net, w, h, s);
  const before = gpu.liveBytes;
  const r = await stylizeImages(gpu, net, { content: image(w, h), styles: [image(w, h)] }, s);
  assert.is(r.stopped, 'done');
  const measured = r.peakBytes! - before;
  const plan = planned.total - planned.network;
  assert.ok(Math.abs(measured - plan) <= 0.03 * plan, `measured ${measured} vs planned ${plan} bytes`);
  assert.ok(planned.optimizer > 0 && planned.plan > 0 && planned.network > 0);
  // Everything the run created (targets' plans, loss scratch, programs, optimiser) is gone; a 16-byte per-device
  // constant buffer may remain.
  assert.ok(gpu.liveBytes - before <= 16, `${gpu.liveBytes - before} bytes left behind`);
  net.destroy();
  assert.is(takeGpuErrors().length, 0);
});

test('--max-memory: a budget below the untiled plan tiles the run, within the budget, and gives the same image', async () => {
  const gpu = await testGpu();
  const net = network(gpu);
  // Shallow layers have a small halo, so tiles can be small; SGD keeps the optimiser state small.
  const loss = { ...settings().loss, contentLayers: ['relu2_2'], styleLayers: ['relu1_1', 'relu2_1'], styleLayerWeights: [0.5, 0.5] };
  const [w, h] = [160, 144];
  const s = settings({ size: w, loss, optimizer: 'sgd', lr: 1e-3, iters: 2 });
  const images = { content: image(w, h), styles: [image(w, h)] };
  const untiled = await plannedBytesAt(gpu, net, w, h, s);
  assert.is(untiled.tiles, 1);
  const budget = Math.floor(untiled.network + 0.6 * (untiled.total - untiled.network));
  const fitted = await plannedBytesAt(gpu, net, w, h, { ...s, maxMemoryBytes: budget });
  assert.ok(fitted.tiles > 1 && fitted.total <= budget, `${fitted.tiles} tiles, ${fitted.total} <= ${budget}`);

  const want = await stylizeImages(gpu, net, images, s);
  const messages: string[] = [];
  const before = gpu.liveBytes;
  const got = await stylizeImages(gpu, net, images, { ...s, maxMemoryBytes: budget }, { onMessage: (m) => messages.push(m) });
  assert.match(messages.join('\n'), /160x144 runs in \d+ tiles of \d+x\d+ .*memory budget/);
  assert.ok(got.peakBytes! - before + untiled.network <= budget, `measured peak ${got.peakBytes! - before + untiled.network} within ${budget}`);
  for (const k of ['content', 'style', 'tv', 'total'] as const) assertClose([got.terms![k]], [want.terms![k]], 1e-4, `${k} loss`);
  assertClose(got.image.data, want.image.data, 1e-5, 'image after 2 SGD steps');
  net.destroy();
  assert.is(takeGpuErrors().length, 0);
});

test('--max-memory: an impossible budget is refused in one line that says what would fit, before any allocation', async () => {
  const gpu = await testGpu();
  const net = network(gpu);
  const before = gpu.liveBytes;
  const t0 = performance.now();
  const err = await stylizeImages(gpu, net, { content: image(64, 64), styles: [image(64, 64)] }, settings({ maxMemoryBytes: 2 ** 20 }))
    .catch((e) => e as Error);
  assert.ok(err instanceof PainterlyError, String(err));
  assert.match(err.message, /^a 64x64 run needs at least [\d.]+ MiB of GPU memory .*past the budget of 1\.0 MiB; use --max-memory \d+M or more/);
  assert.not.match(err.message, /\n/);
  assert.is(gpu.liveBytes, before);
  assert.ok(performance.now() - t0 < 5000);
  // The number it suggests does fit.
  const need = Number(/--max-memory (\d+)M/.exec(err.message)![1]) * 2 ** 20;
  const r = await stylizeImages(gpu, net, { content: image(64, 64), styles: [image(64, 64)] }, settings({ maxMemoryBytes: need, iters: 1 }));
  assert.is(r.iterations, 1);
  net.destroy();
});

test('out of memory while planning: the engine frees the plan and retries in tiles within half the bytes', async () => {
  // A device of its own: its error scopes are made to report out-of-memory for the first plan only.
  const gpu = await openDawnGpu({ onError: (m) => { throw new Error(m); } });
  try {
    const net = network(gpu);
    const loss = { ...settings().loss, contentLayers: ['relu2_2'], styleLayers: ['relu1_1', 'relu2_1'], styleLayerWeights: [0.5, 0.5] };
    const s = settings({ size: 160, loss, optimizer: 'sgd', lr: 1e-3, iters: 1 });
    const dev = gpu.device;
    const pop = dev.popErrorScope;
    let fail = 1;
    dev.popErrorScope = async function () {
      const e = await pop.call(dev);
      return fail-- > 0 ? ({ message: 'Out of memory (simulated)' } as GPUError) : e;
    };
    const messages: string[] = [];
    const before = gpu.liveBytes;
    const r = await stylizeImages(gpu, net, { content: image(160, 144), styles: [image(160, 144)] }, s, { onMessage: (m) => messages.push(m) });
    assert.is(r.iterations, 1);
    assert.match(messages.join('\n'), /out of GPU memory with a plan of [\d.]+ MiB; retrying within/);
    assert.match(messages.join('\n'), /runs in \d+ tiles/);
    assert.ok(gpu.liveBytes - before <= 16);
    // Every scope failing: one line, nothing left allocated.
    fail = Infinity;
    const err = await stylizeImages(gpu, net, { content: image(160, 144), styles: [image(160, 144)] }, s).catch((e) => e as Error);
    assert.ok(err instanceof PainterlyError, String(err));
    assert.match(err.message, /^out of GPU memory while allocating/);
    assert.not.match(err.message, /\n/);
    assert.ok(gpu.liveBytes - before <= 16);
    dev.popErrorScope = pop;
    net.destroy();
  } finally {
    gpu.destroy();
  }
});

test('byte counts with suffixes', () => {
  assert.is(parseBytes('512M'), 512 * 2 ** 20);
  assert.is(parseBytes('2G'), 2 * 2 ** 30);
  assert.is(parseBytes('1.5GiB'), 1.5 * 2 ** 30);
  assert.is(parseBytes('64k'), 65536);
  assert.is(parseBytes('1000'), 1000);
  assert.is(parseBytes(4096), 4096);
  for (const bad of ['', 'G', '2X', '-1M', '0', 0, 1.5, 'lots']) assert.is(parseBytes(bad), undefined, String(bad));
});

test.run();
