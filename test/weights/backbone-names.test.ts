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

test.run();
