// The descriptions of the new backbones against torchvision's numbers (parameter counts, feature shapes at 224 px),
// and the graph helpers (aliases, shapes through strided and padded layers, minimum sizes). No GPU.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PainterlyError } from '../../src/gpu/device.ts';
import { BACKBONES } from '../../src/nets/backbones.ts';
import { DENSENET121_DESC, legacyDenseName } from '../../src/nets/densenet.ts';
import { convInputChannels, graphOf, minimumSide, normChannels, resolveLayer, shapesOf, slidingSize } from '../../src/nets/graph.ts';
import { RESNET50 } from '../../src/nets/resnet.ts';
import { VGG19_BN } from '../../src/nets/vgg19.ts';
import type { NetDescription } from '../../src/nets/describe.ts';

const test = suite('network graphs');

/** Trainable parameters (conv weights and biases, batch-norm γ and β), as torchvision's numel sum counts them. */
function params(desc: NetDescription): number {
  const last = desc.layers.at(-1)!.name;
  const cin = convInputChannels(desc, last);
  const nch = normChannels(desc, last);
  let n = 0;
  for (const l of desc.layers) {
    if (l.op === 'conv') n += l.cout * cin.get(l.name)! * l.k * l.k + (l.bias === false ? 0 : l.cout);
    if (l.op === 'batchnorm') n += 2 * nch.get(l.name)!;
  }
  return n;
}

test('parameter counts equal torchvision\'s without the classifier', () => {
  // torchvision: resnet50 25,557,032 (fc 2048x1000 + 1000); densenet121 7,978,856 (classifier 1024x1000 + 1000);
  // vgg19_bn 143,678,248 (classifier 25088x4096+4096 + 4096x4096+4096 + 4096x1000+1000).
  assert.is(params(RESNET50), 25_557_032 - 2_049_000);
  assert.is(params(DENSENET121_DESC), 7_978_856 - 1_025_000);
  assert.is(params(VGG19_BN), 143_678_248 - (25088 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000));
});

test('feature shapes at 224 px match torchvision', () => {
  const r = shapesOf(RESNET50, 224, 224, 'layer4').shapes;
  assert.equal(r.get('relu'), [64, 112, 112]);
  assert.equal(r.get('maxpool'), [64, 56, 56]);
  assert.equal(r.get('layer1'), [256, 56, 56]);
  assert.equal(r.get('layer2'), [512, 28, 28]);
  assert.equal(r.get('layer3'), [1024, 14, 14]);
  assert.equal(r.get('layer4'), [2048, 7, 7]);
  const d = shapesOf(DENSENET121_DESC, 224, 224, 'features.norm5').shapes;
  assert.equal(d.get('features.relu0'), [64, 112, 112]);
  assert.equal(d.get('features.denseblock1'), [256, 56, 56]);
  assert.equal(d.get('features.transition1'), [128, 28, 28]);
  assert.equal(d.get('features.denseblock2'), [512, 28, 28]);
  assert.equal(d.get('features.denseblock3'), [1024, 14, 14]);
  assert.equal(d.get('features.norm5'), [1024, 7, 7]);
  // Odd sizes: PyTorch's floor rules through the 7x7/2 stem, the padded 3x3/2 max pool and the 3x3/2 convs.
  const o = shapesOf(RESNET50, 37, 50, 'layer4').shapes;
  assert.equal(o.get('relu'), [64, 19, 25]);
  assert.equal(o.get('maxpool'), [64, 10, 13]);
  assert.equal(o.get('layer2'), [512, 5, 7]);
  assert.equal(o.get('layer4'), [2048, 2, 2]);
});

test('aliases, sliding sizes, minimum sides', () => {
  assert.is(resolveLayer(RESNET50, 'layer3.5'), 'layer3');
  assert.is(resolveLayer(DENSENET121_DESC, 'denseblock2'), 'features.denseblock2');
  assert.is(resolveLayer(DENSENET121_DESC, 'norm5'), 'features.norm5');
  assert.is(slidingSize(7, 3, 2, 1), 4);
  assert.is(slidingSize(5, 2, 2, 0, true), 3);
  assert.is(slidingSize(4, 2, 2, 0, true), 2);
  for (const [desc, layer] of [[RESNET50, 'layer4'], [DENSENET121_DESC, 'features.norm5'], [VGG19_BN, 'relu5_1']] as const) {
    const m = minimumSide(desc, layer);
    assert.ok(!shapesOf(desc, m, m, layer).tooSmall, `${desc.name}: ${m} px fits ${layer}`);
    assert.ok(shapesOf(desc, m - 1, m - 1, layer).tooSmall, `${desc.name}: ${m - 1} px does not fit ${layer}`);
  }
  assert.is(minimumSide(RESNET50, 'layer4'), 1); // padded strided layers keep one position, as in PyTorch
});

test('graph checks: inputs must exist earlier, arities fit', () => {
  const bad = (layers: NetDescription['layers']) => () => graphOf({ name: 'bad', inputChannels: 3, layers });
  assert.throws(bad([{ name: 'a', op: 'relu' }, { name: 'b', op: 'add', inputs: ['a', 'c'] }]), (e: unknown) => e instanceof PainterlyError && /reads c/.test((e as Error).message));
  assert.throws(bad([{ name: 'a', op: 'relu' }, { name: 'b', op: 'add', inputs: ['a'] }]), /reads 1 layers, expected 2/);
  assert.throws(bad([{ name: 'a', op: 'relu' }, { name: 'a', op: 'relu' }]), /used twice/);
});

test('backbone tables: default layers exist, names map to torchvision tensors', () => {
  for (const b of Object.values(BACKBONES)) {
    for (const l of [...b.defaults.contentLayers, ...b.defaults.styleLayers]) assert.ok(b.featureLayers.includes(l), `${b.name}: ${l} is offered`);
  }
  const vbn = BACKBONES.vgg19_bn;
  assert.is(vbn.tensorName('conv1_1'), 'features.0');
  assert.is(vbn.tensorName('bn1_1'), 'features.1');
  assert.is(vbn.tensorName('conv1_2'), 'features.3');
  assert.is(vbn.tensorName('conv2_1'), 'features.7');
  assert.is(vbn.tensorName('bn5_4'), 'features.50');
  assert.is(legacyDenseName('features.denseblock1.denselayer1.norm1'), 'features.denseblock1.denselayer1.norm.1');
  assert.is(legacyDenseName('features.transition1.norm'), 'features.transition1.norm');
});

test.run();
