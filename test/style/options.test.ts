import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PainterlyError } from '../../src/gpu/device.ts';
import {
  DEFAULT_CONTENT_LAYERS, DEFAULT_LR, DEFAULT_STYLE_LAYERS, resolveStylizeOptions, VGG19_FEATURE_LAYERS, type StylizeInput,
} from '../../src/style/options.ts';

const test = suite('stylize options');
const base: StylizeInput = { content: 'c.jpg', style: 's.jpg' };

function rejects(input: Record<string, unknown>, pattern: RegExp) {
  try {
    resolveStylizeOptions({ ...base, ...input } as StylizeInput);
  } catch (e) {
    assert.instance(e, PainterlyError);
    assert.not.match((e as Error).message, /\n/);
    assert.match((e as Error).message, pattern, (e as Error).message);
    return;
  }
  assert.unreachable(`accepted ${JSON.stringify(input)}`);
}

test('defaults', () => {
  const o = resolveStylizeOptions(base);
  assert.equal(o.style, ['s.jpg']);
  assert.is(o.size, 512);
  assert.equal(o.scales, [512]);
  assert.equal(o.contentLayers, ['relu4_2']);
  assert.equal(o.styleLayers, ['relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1']);
  assert.equal(o.styleLayerWeights, [0.2, 0.2, 0.2, 0.2, 0.2]);
  assert.equal(o.styleBlendWeights, [1]);
  assert.is(o.pooling, 'avg'); assert.is(o.init, 'noise'); assert.is(o.optimizer, 'lbfgs'); assert.is(o.lr, 1);
  assert.is(o.iters, 500); assert.is(o.lbfgsHistory, 100); assert.is(o.lineSearch, 'none'); assert.is(o.seed, 0);
  assert.is(o.styleScale, 1); assert.is(o.preserveColors, 'none'); assert.is(o.saveEvery, 0); assert.is(o.printEvery, 10);
  assert.is(o.log, undefined); assert.is(o.verbose, false); assert.is(o.weights, 'pretrained');
  assert.is(o.lossNormalization, 'paper'); assert.is(o.out, undefined);
  assert.ok(o.contentWeight >= 0 && o.styleWeight > 0 && o.tvWeight >= 0);
  // defaults are copies, not the shared constants
  o.styleLayers.push('conv1_1');
  assert.is(DEFAULT_STYLE_LAYERS.length, 5); assert.is(DEFAULT_CONTENT_LAYERS.length, 1);
});

test('the layer list is VGG19\'s convs and relus', () => {
  assert.is(VGG19_FEATURE_LAYERS.length, 32);
  for (const l of ['conv1_1', 'relu1_2', 'conv3_4', 'relu4_4', 'conv5_4', 'relu5_4']) assert.ok(VGG19_FEATURE_LAYERS.includes(l), l);
  for (const l of ['conv1_3', 'relu2_3', 'relu6_1', 'pool1', 'relu0_1']) assert.not.ok(VGG19_FEATURE_LAYERS.includes(l), l);
});

test('optimizer-dependent learning rate; explicit values kept', () => {
  assert.is(resolveStylizeOptions({ ...base, optimizer: 'adam' }).lr, DEFAULT_LR.adam);
  assert.is(resolveStylizeOptions({ ...base, optimizer: 'sgd' }).lr, DEFAULT_LR.sgd);
  assert.is(resolveStylizeOptions({ ...base, optimizer: 'adam', lr: 0.5 }).lr, 0.5);
});

test('blend weights are normalised; style layer weights are not', () => {
  const o = resolveStylizeOptions({ ...base, style: ['a.jpg', 'b.png', 'c.jpg'], styleBlendWeights: [1, 3, 0] });
  assert.equal(o.styleBlendWeights, [0.25, 0.75, 0]);
  assert.equal(resolveStylizeOptions({ ...base, style: ['a', 'b'] }).styleBlendWeights, [0.5, 0.5]);
  const l = resolveStylizeOptions({ ...base, styleLayers: ['relu1_1', 'conv2_2'], styleLayerWeights: [2, 5] });
  assert.equal(l.styleLayerWeights, [2, 5]);
  assert.equal(resolveStylizeOptions({ ...base, styleLayers: ['relu1_1', 'relu3_1'] }).styleLayerWeights, [0.5, 0.5]);
});

test('scales: default [size], the last is the size, increasing', () => {
  assert.equal(resolveStylizeOptions({ ...base, size: 300 }).scales, [300]);
  const o = resolveStylizeOptions({ ...base, scales: [256, 512, 1024] });
  assert.is(o.size, 1024); assert.equal(o.scales, [256, 512, 1024]);
  assert.is(resolveStylizeOptions({ ...base, scales: [128, 256], size: 256 }).size, 256);
  rejects({ scales: [256, 512], size: 300 }, /^scales: the last scale \(512\) must equal size \(300\)$/);
  rejects({ scales: [512, 256] }, /^scales: expected increasing sizes, got 512,256$/);
  rejects({ scales: [] }, /^scales: expected at least one size$/);
  rejects({ scales: [8, 64] }, /^scales: expected sizes that are integers from 16 to 16384, got 8$/);
});

test('images: paths or image objects', () => {
  const img = { width: 2, height: 1, data: new Float32Array(6) };
  const rgba = { width: 1, height: 1, data: new Uint8ClampedArray(4) };
  const o = resolveStylizeOptions({ content: img, style: [rgba, 'x.jpg'], init: img });
  assert.ok(o.content === img && o.style[0] === rgba && o.init === img);
  assert.is(resolveStylizeOptions({ ...base, init: 'start.png' }).init, 'start.png');
  assert.is(resolveStylizeOptions({ ...base, init: 'content' }).init, 'content');
  rejects({ content: undefined }, /^content: required/);
  rejects({ style: undefined }, /^style: required/);
  rejects({ style: [] }, /^style: expected at least one style image$/);
  rejects({ content: '' }, /^content: expected a file path or an image .*got an empty string$/);
  rejects({ style: ['a.jpg', 42] }, /^style: expected a file path or an image .*got 42$/);
  rejects({ init: '' }, /^init: expected noise, content, style, or an image file, got an empty string$/);
  rejects({ out: 'x.gif' }, /^out: expected a \.png, \.jpg or \.jpeg file name, got "x\.gif"$/);
  assert.is(resolveStylizeOptions({ ...base, out: 'r/X.JPEG' }).out, 'r/X.JPEG');
});

test('every bad value is refused with what is allowed', () => {
  rejects({ pooling: 'maxx' }, /^pooling: expected max or avg, got "maxx"$/);
  rejects({ optimizer: 'bfgs' }, /^optimizer: expected lbfgs, adam or sgd, got "bfgs"$/);
  rejects({ lineSearch: 'wolfe' }, /^lineSearch: expected none or strong-wolfe, got "wolfe"$/);
  rejects({ preserveColors: 'yes' }, /^preserveColors: expected none, luminance or histogram, got "yes"$/);
  rejects({ lossNormalization: 'none' }, /^lossNormalization: expected paper or scale-free, got "none"$/);
  rejects({ iters: 0 }, /^iters: expected a positive integer, got 0$/);
  rejects({ iters: 2.5 }, /^iters: expected a positive integer, got 2\.5$/);
  rejects({ iters: '10' }, /^iters: expected a positive integer, got "10"$/);
  rejects({ lbfgsHistory: -1 }, /^lbfgsHistory: expected a positive integer/);
  rejects({ size: 15 }, /^size: expected an integer from 16 to 16384, got 15$/);
  rejects({ size: 20000 }, /^size: expected an integer from 16 to 16384/);
  rejects({ lr: 0 }, /^lr: expected a positive number, got 0$/);
  rejects({ lr: NaN }, /^lr: expected a positive number, got NaN$/);
  rejects({ contentWeight: -1 }, /^contentWeight: expected a non-negative number, got -1$/);
  rejects({ styleWeight: Infinity }, /^styleWeight: expected a non-negative number, got Infinity$/);
  rejects({ tvWeight: 'x' }, /^tvWeight: expected a non-negative number, got "x"$/);
  rejects({ styleScale: 0 }, /^styleScale: expected a positive number/);
  rejects({ seed: -1 }, /^seed: expected an integer from 0 to 4294967295, got -1$/);
  rejects({ seed: 2 ** 32 }, /^seed: expected an integer from 0 to 4294967295/);
  rejects({ saveEvery: 1.5 }, /^saveEvery: expected a non-negative integer/);
  rejects({ printEvery: -2 }, /^printEvery: expected a non-negative integer/);
  rejects({ verbose: 'yes' }, /^verbose: expected true or false, got "yes"$/);
  rejects({ log: '' }, /^log: expected a file path, got an empty string$/);
  rejects({ weights: 'random' }, /^weights: expected pretrained, random:SEED .*got "random"$/);
  rejects({ weights: 'random:x' }, /^weights: expected pretrained, random:SEED/);
  rejects({ weights: '' }, /^weights: expected pretrained/);
  for (const w of ['pretrained', 'random:0', 'random:42', 'vgg19.safetensors']) {
    assert.is(resolveStylizeOptions({ ...base, weights: w }).weights, w);
  }
  rejects({ colour: 'x' }, /^unknown stylize option "colour"; valid: content, style/);
});

test('layers and weight lists', () => {
  rejects({ styleLayers: ['relu1_1', 'relu6_1'] }, /^styleLayers: unknown layer "relu6_1" for backbone vgg19; valid: conv1_1, relu1_1, /);
  rejects({ contentLayers: ['pool4'] }, /^contentLayers: unknown layer "pool4"/);
  rejects({ contentLayers: [] }, /^contentLayers: expected at least one layer$/);
  rejects({ styleLayers: 'relu1_1' }, /^styleLayers: expected a list, got "relu1_1"$/);
  rejects({ styleLayers: ['relu1_1', 'relu1_1'] }, /^styleLayers: layer "relu1_1" is listed twice$/);
  rejects({ styleLayerWeights: [1, 1] }, /^styleLayerWeights: 2 weights given for 5 style layers \(relu1_1,relu2_1,relu3_1,relu4_1,relu5_1\)$/);
  rejects({ styleLayerWeights: [1, 1, 1, 1, -1] }, /^styleLayerWeights: expected non-negative numbers, got -1$/);
  rejects({ style: ['a', 'b'], styleBlendWeights: [1] }, /^styleBlendWeights: 1 weights given for 2 style images$/);
  rejects({ styleBlendWeights: [1, 2] }, /^styleBlendWeights: 2 weights given for 1 style image$/);
  rejects({ style: ['a', 'b'], styleBlendWeights: [0, 0] }, /^styleBlendWeights: expected weights with a positive sum$/);
});

test('the input is not modified', () => {
  const input = { ...base, style: ['a', 'b'], styleBlendWeights: [1, 3] };
  resolveStylizeOptions(input);
  assert.equal(input.styleBlendWeights, [1, 3]);
});

test.run();
