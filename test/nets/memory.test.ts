// GPU memory of network plans: one Winograd scratch per plan, nothing left behind by destroy, a second backward
// program that allocates no storage, the buffer counter of Gpu, out-of-memory error scopes, and the dry-run device
// counting exactly what the real device allocates.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { GpuMemoryError, PainterlyError, type Gpu } from '../../src/gpu/device.ts';
import { dryRunGpu } from '../../src/gpu/dry.ts';
import { createTensor } from '../../src/gpu/tensor.ts';
import { backwardInto, createNetwork, forwardFrom, planNetwork } from '../../src/nets/executor.ts';
import { VGG19 } from '../../src/nets/vgg19.ts';
import { convAlgorithmFor } from '../../src/ops/conv2d.ts';
import { randomNetWeights } from '../../src/weights/net-weights.ts';
import { nextSeed, takeGpuErrors, testGpu } from '../helpers.ts';

const test = suite('network memory');

const isStorage = (b: GPUBuffer) => (b.usage & GPUBufferUsage.STORAGE) !== 0;
const [H, W] = [44, 37];
// Widths of 16-20 so that Winograd runs (both directions) in blocks 1-3.
const weights = () => randomNetWeights(VGG19, nextSeed(), { upTo: 'relu3_1', channels: [16, 16, 16, 20, 20] });

/** A backward plan to relu3_1 with its forward and one backward program recorded. */
function build(gpu: Gpu, w = weights()) {
  const net = createNetwork(gpu, VGG19, w);
  const plan = planNetwork(gpu, net, { h: H, w: W, upTo: 'relu3_1', taps: ['relu1_1', 'relu2_1', 'relu3_1'], backward: true });
  const x = createTensor(gpu, [3, H, W], 'x');
  const g = createTensor(gpu, [3, H, W], 'g');
  const steps = [...forwardFrom(gpu, plan, x), ...backwardInto(gpu, plan, () => [], g).steps];
  return { net, plan, x, g, steps };
}

test('one Winograd scratch per plan, shared by every layer and both directions', async () => {
  const gpu = await testGpu();
  const c = gpu.collect();
  const { net, plan, x, g } = build(gpu);
  c.stop();
  const wino = [...net.convs].filter(([name, l]) => {
    const [, h, w] = plan.shapes.get(name)!;
    const a = convAlgorithmFor(gpu, l, h, w);
    return a.forward === 'winograd' && a.input === 'winograd';
  });
  assert.ok(wino.length >= 3, `several layers run Winograd both ways (${wino.map((e) => e[0])})`);
  const vs = c.buffers.filter((b) => b.label.endsWith('.V'));
  const ms = c.buffers.filter((b) => b.label.endsWith('.M'));
  assert.equal([vs.length, ms.length], [1, 1], `one V and one M (${vs.map((b) => b.label)})`);
  assert.is(vs[0], plan.internal.convScratch.v);
  assert.ok(plan.bytes >= vs[0].size + ms[0].size, 'the plan counts its scratch');
  // The first program above recorded the backward; a second one (a fresh gradient tensor, as the engine's final
  // evaluation) allocates no storage at all, only its steps' small uniform buffers.
  const c2 = gpu.collect();
  const g2 = createTensor(gpu, [3, H, W], 'g2');
  backwardInto(gpu, plan, () => [], g2);
  c2.stop();
  assert.equal(c2.buffers.filter(isStorage).map((b) => b.label), ['g2']);
  assert.ok(c2.bytes() - g2.buffer.size < 64 * 1024, `second program: ${c2.bytes()} bytes`);
  for (const t of [x, g, g2]) t.buffer.destroy();
  c2.destroy();
  c.destroy();
  assert.is(takeGpuErrors().length, 0);
});

test('plan.destroy and net.destroy free every storage buffer they created (prepared weights included)', async () => {
  const gpu = await testGpu();
  const before = gpu.liveBytes;
  const c = gpu.collect();
  const { net, plan, x, g } = build(gpu);
  c.stop();
  const uniforms = c.buffers.filter((b) => !isStorage(b)).reduce((a, b) => a + b.size, 0);
  assert.ok(gpu.liveBytes - before > 1e6, 'the plan allocated something');
  plan.destroy();
  net.destroy();
  x.buffer.destroy();
  g.buffer.destroy();
  // What remains is the steps' uniform buffers (owned by the recorded steps, freed with them by the engine).
  assert.is(gpu.liveBytes - before, uniforms);
  c.destroy();
  assert.is(gpu.liveBytes, before);
});

test('the buffer counter tracks creation, destruction and the high-water mark', async () => {
  const gpu = await testGpu();
  const before = gpu.liveBytes;
  gpu.resetPeak();
  const a = createTensor(gpu, [1000], 'a');
  const b = createTensor(gpu, [500], 'b');
  assert.is(gpu.liveBytes - before, 6000);
  a.buffer.destroy();
  a.buffer.destroy(); // twice is harmless and counted once
  assert.is(gpu.liveBytes - before, 2000);
  assert.is(gpu.peakBytes - before, 6000);
  b.buffer.destroy();
  assert.is(gpu.liveBytes, before);
});

test('the dry-run device counts exactly the buffers the real device allocates', async () => {
  const gpu = await testGpu();
  const dry = dryRunGpu(gpu);
  const w = weights();
  const sizes = (g: Gpu) => {
    const c = g.collect();
    const b = build(g, w);
    c.stop();
    const out = c.buffers.map((x) => `${x.label}:${x.size}`).sort();
    b.plan.destroy();
    b.net.destroy();
    c.destroy();
    return out;
  };
  // Once on each first: per-device singletons (the constant-coefficient scalars buffer) are made at first use and kept.
  sizes(gpu);
  sizes(dry);
  const kept = dry.liveBytes;
  assert.ok(kept <= 64, `the dry device keeps only its singletons (${kept} bytes)`);
  const real = sizes(gpu);
  assert.ok(real.length > 50);
  assert.equal(sizes(dry), real);
  assert.is(dry.liveBytes, kept);
});

test('out of memory inside an error scope: one-line GpuMemoryError, everything the scope allocated freed', async () => {
  const gpu = await testGpu();
  const dev = gpu.device;
  const pop = dev.popErrorScope;
  const before = gpu.liveBytes;
  dev.popErrorScope = async function (this: GPUDevice) {
    await pop.call(dev);
    return { message: 'Out of memory (simulated)\nsecond line' } as GPUError;
  };
  try {
    const err = await gpu.allocating('the test plan', () => build(gpu)).then(() => undefined, (e) => e as Error);
    assert.ok(err instanceof GpuMemoryError && err instanceof PainterlyError, String(err));
    assert.match(err!.message, /^out of GPU memory while allocating the test plan \(.* MiB requested so far/);
    assert.not.match(err!.message, /\n/);
    assert.is(gpu.liveBytes, before, 'the partial plan was freed');
  } finally {
    dev.popErrorScope = pop;
  }
  // A real scope with no error passes the value through; an exception inside frees what was created and rethrows.
  const t = await gpu.allocating('a tensor', () => createTensor(gpu, [10], 't'));
  t.buffer.destroy();
  const thrown = await gpu.allocating('a failing plan', () => { createTensor(gpu, [10], 'u'); throw new Error('boom'); }).catch((e) => e);
  assert.is((thrown as Error).message, 'boom');
  assert.is(gpu.liveBytes, before);
});

test.run();
