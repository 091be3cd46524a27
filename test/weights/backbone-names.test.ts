// The descriptions against torchvision's tensors, written independently (src/weights/torchvision-shapes.ts): every
// conv and batch-norm tensor the description needs exists with the same shape, and nothing torchvision has (but the
// classifier) is left unused. Then a checkpoint with torchvision's names (and DenseNet's old spellings) read back.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BACKBONES } from '../../src/nets/backbones.ts';
import { convInputChannels, normChannels } from '../../src/nets/graph.ts';
import { readNetWeights, type TensorTable } from '../../src/weights/net-weights.ts';
import { tensorNamesUpTo } from '../../src/weights/backbone-weights.ts';
import { torchvisionShapes } from '../../src/weights/torchvision-shapes.ts';
import { legacyDenseName } from '../../src/nets/densenet.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/gpu/kernel.ts';
import { readTensor, uploadTensor } from '../../src/gpu/tensor.ts';
import { createNetwork, forwardFrom, planNetwork } from '../../src/nets/executor.ts';
import { RESNET50 } from '../../src/nets/resnet.ts';
import { netForward } from '../../src/reference/net.ts';
import { t64 } from '../../src/reference/tensor.ts';
import { loadBackboneWeights } from '../../src/weights/backbone-weights.ts';
import { writeSafetensors } from '../../src/weights/safetensors.ts';
import { assertClose, nextSeed, randArray, testGpu } from '../helpers.ts';
import { serve } from './range-server.ts';

const test = suite('backbone tensor names');

for (const name of ['vgg19_bn', 'resnet50', 'densenet121'] as const) {
  test(`${name}: the description's tensors are torchvision's, shapes included`, () => {
    const bb = BACKBONES[name];
    const last = bb.desc.layers.at(-1)!.name;
    const want = torchvisionShapes(name)!;
    const names = tensorNamesUpTo(name, last);
    const cin = convInputChannels(bb.desc, last);
    const nch = normChannels(bb.desc, last);
    const shapeOf = new Map<string, number[]>();
    for (const l of bb.desc.layers) {
      const base = bb.tensorName(l.name);
      if (l.op === 'conv') {
        shapeOf.set(`${base}.weight`, [l.cout, cin.get(l.name)!, l.k, l.k]);
        if (l.bias !== false) shapeOf.set(`${base}.bias`, [l.cout]);
      }
      if (l.op === 'batchnorm') for (const k of ['weight', 'bias', 'running_mean', 'running_var']) shapeOf.set(`${base}.${k}`, [nch.get(l.name)!]);
    }
    for (const n of names) {
      assert.ok(want.has(n), `${name}: ${n} is one of torchvision's tensors`);
      assert.equal(shapeOf.get(n), [...want.get(n)!], `${name}: ${n} shape`);
    }
    const unused = [...want.keys()].filter((n) => !names.includes(n));
    assert.equal(unused, [], `${name}: torchvision tensors the description never reads`);
  });
}

test('a DenseNet checkpoint with the old norm.1 / conv.2 spellings reads the same', async () => {
  const bb = BACKBONES.densenet121;
  const upTo = 'features.transition1';
  const names = tensorNamesUpTo('densenet121', upTo);
  const shapes = torchvisionShapes('densenet121')!;
  const table = (rename: (n: string) => string): TensorTable => {
    const m = new Map(names.map((n) => [rename(n), [...shapes.get(n)!]]));
    return {
      file: 'dense.pth', shapes: m,
      read: async (n) => Float32Array.from({ length: m.get(n)!.reduce((a, b) => a * b, 1) }, (_, i) => ((i * 7) % 13) / 13 + 0.5),
    };
  };
  const legacy = (n: string) => { const [base, k] = [n.slice(0, n.lastIndexOf('.')), n.slice(n.lastIndexOf('.') + 1)]; return `${legacyDenseName(base)}.${k}`; };
  const a = await readNetWeights(bb.desc, bb.tensorName, table((n) => n), { upTo, source: 'new', altName: bb.altName });
  const b = await readNetWeights(bb.desc, bb.tensorName, table(legacy), { upTo, source: 'old', altName: bb.altName });
  assert.ok(names.some((n) => legacy(n) !== n), 'some names differ');
  assert.is(a.convs.size, b.convs.size);
  for (const [k, c] of a.convs) assert.equal([...b.convs.get(k)!.weight.slice(0, 5)], [...c.weight.slice(0, 5)]);
  assert.is(a.norms!.size, b.norms!.size);
});

test('--weights pretrained for resnet50 against a local server with torchvision\'s names: fetched, cached, and the network runs', async () => {
  const upTo = 'layer1';
  const names = tensorNamesUpTo('resnet50', upTo);
  const shapes = torchvisionShapes('resnet50')!;
  // The tensors up to layer1 with seeded values, plus ones the run must not fetch (layer2's, the classifier).
  const all = [...names, 'layer2.0.conv1.weight', 'fc.bias'];
  const shapeOf = (n: string) => (n === 'fc.bias' ? [1000] : [...shapes.get(n)!]);
  const data = new Map(all.map((n, k) => {
    const count = shapeOf(n).reduce((a, b) => a * b, 1);
    const v = Float32Array.from({ length: count }, (_, i) => n.endsWith('running_var') ? 1 + ((i * 13 + k) % 7) / 10 : (((i * 31 + k * 7) % 19) - 9) / 90);
    return [n, v];
  }));
  const file = writeSafetensors(all.map((n) => ({ name: n, dtype: 'F32', shape: shapeOf(n), data: new Uint8Array(data.get(n)!.buffer) })));
  const server = await serve(file, { path: '/timm/resnet50.tv_in1k/model.safetensors' });
  const cacheDir = mkdtempSync(join(tmpdir(), 'painterly-bb-'));
  try {
    const w = await loadBackboneWeights('resnet50', 'pretrained', { upTo, url: `${server.url}/timm/resnet50.tv_in1k/model.safetensors`, cacheDir, onMessage: () => {} });
    assert.ok(w.pretrained);
    assert.equal([...w.convs.get('layer1.0.downsample.0')!.weight.slice(0, 4)], [...data.get('layer1.0.downsample.0.weight')!.slice(0, 4)]);
    assert.equal([...w.norms!.get('bn1')!.variance], [...data.get('bn1.running_var')!]);
    const fetched = server.bytes();
    assert.ok(fetched < file.length * 0.9, `only the needed tensors were fetched (${fetched} of ${file.length} bytes)`);
    // Cached: a second load makes no request.
    const before = server.requests.length;
    await loadBackboneWeights('resnet50', 'pretrained', { upTo, url: `${server.url}/timm/resnet50.tv_in1k/model.safetensors`, cacheDir, onMessage: () => {} });
    assert.is(server.requests.length, before);
    // The weights run: GPU forward to layer1 equals the float64 reference (batch norms unfolded there).
    const gpu = await testGpu();
    const net = createNetwork(gpu, RESNET50, w);
    const [h, wd] = [19, 21];
    const x = t64([3, h, wd], randArray(3 * h * wd, nextSeed(), 0, 1));
    const plan = planNetwork(gpu, net, { h, w: wd, upTo, taps: [upTo], backward: false });
    run(gpu, forwardFrom(gpu, plan, uploadTensor(gpu, x.data, x.shape, 'x')));
    const want = netForward(RESNET50, { convs: [...w.convs.values()], norms: [...w.norms!.values()] }, x, 'max', upTo).outs.get(upTo)!;
    assertClose(await readTensor(gpu, plan.acts.get(upTo)!), want.data, 2e-5, 'resnet50 to layer1 with downloaded weights');
    plan.destroy();
    net.destroy();
  } finally {
    await server.close();
    rmSync(cacheDir, { recursive: true, force: true });
  }
});

test.run();
