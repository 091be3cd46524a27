import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseStylizeArgs, STYLIZE_FLAGS, stylizeHelp } from '../../src/cli/args.ts';
import { PainterlyError } from '../../src/gpu/device.ts';
import { resolveStylizeOptions, STYLIZE_OPTION_KEYS, type StylizeOptions } from '../../src/style/options.ts';

const test = suite('cli args');
const req = ['--content', 'c.jpg', '--style', 's.jpg', '--out', 'o.png'];
const parse = (...extra: string[]): StylizeOptions => {
  const r = parseStylizeArgs([...req, ...extra]);
  assert.not.ok(r.help);
  return r.options!;
};

function rejects(argv: string[], pattern: RegExp) {
  try {
    parseStylizeArgs(argv);
  } catch (e) {
    assert.instance(e, PainterlyError);
    assert.not.match((e as Error).message, /\n/);
    assert.match((e as Error).message, pattern, (e as Error).message);
    return;
  }
  assert.unreachable(`accepted ${argv.join(' ')}`);
}

test('required flags only: the library defaults', () => {
  const o = parse();
  assert.equal(o, { ...resolveStylizeOptions({ content: 'c.jpg', style: 's.jpg' }), out: 'o.png' });
  assert.equal(parseStylizeArgs(['stylize', ...req]).options, o, 'a leading "stylize" is skipped');
});

test('every flag maps onto its option, in both spellings', () => {
  const values: [string, string, keyof StylizeOptions, unknown][] = [
    ['--size', '300', 'size', 300],
    ['--style-scale', '0.5', 'styleScale', 0.5],
    ['--content-weight', '5', 'contentWeight', 5],
    ['--style-weight', '1e2', 'styleWeight', 100],
    ['--tv-weight', '0.001', 'tvWeight', 0.001],
    ['--content-layers', 'relu4_2,conv5_1', 'contentLayers', ['relu4_2', 'conv5_1']],
    ['--style-layers', 'relu1_1,relu2_1', 'styleLayers', ['relu1_1', 'relu2_1']],
    ['--pooling', 'max', 'pooling', 'max'],
    ['--feature-transform', 'softmax', 'featureTransform', 'softmax'],
    ['--softmax-temperature', '0.5', 'softmaxTemperature', 0.5],
    ['--init', 'content', 'init', 'content'],
    ['--optimizer', 'adam', 'optimizer', 'adam'],
    ['--lr', '0.1', 'lr', 0.1],
    ['--iters', '1000', 'iters', 1000],
    ['--lbfgs-history', '50', 'lbfgsHistory', 50],
    ['--line-search', 'strong-wolfe', 'lineSearch', 'strong-wolfe'],
    ['--weights', 'random:7', 'weights', 'random:7'],
    ['--preserve-colors', 'luminance', 'preserveColors', 'luminance'],
    ['--seed', '123', 'seed', 123],
    ['--save-every', '100', 'saveEvery', 100],
    ['--print-every', '0', 'printEvery', 0],
    ['--log', 'run.jsonl', 'log', 'run.jsonl'],
    ['--loss-normalization', 'scale-free', 'lossNormalization', 'scale-free'],
    ['--backbone', 'vgg19-16x', 'backbone', 'vgg19-16x'],
    ['--method', 'gatys', 'method', 'gatys'],
    ['--matting-weight', '300', 'mattingWeight', 300],
    ['--max-memory', '512M', 'maxMemory', 512 * 2 ** 20],
  ];
  for (const [flag, value, key, want] of values) {
    assert.equal(parse(flag, value)[key], want, `${flag} ${value}`);
    assert.equal(parse(`${flag}=${value}`)[key], want, `${flag}=${value}`);
  }
  assert.is(parse('--verbose').verbose, true);
  assert.is(parse('--smooth').smooth, true);
  assert.is(parse('--smooth', '--smooth-radius=8').smoothRadius, 8);
  assert.is(parse('--smooth', '--smooth-eps', '0.01').smoothEps, 0.01);
  assert.is(parse('--photorealistic').photorealistic, true);
  const mk = parse('--content-mask', 'cm.png', '--style-mask=sm.png');
  assert.equal([mk.contentMask, mk.styleMask], ['cm.png', 'sm.png']);
  assert.not.ok('contentMask' in parse(), 'no masks: no mask keys');
  assert.is(parse('--verbose=false').verbose, false);
  const m = parse('--style-layers', 'relu1_1,relu2_1', '--style-layer-weights', '1,3');
  assert.equal(m.styleLayerWeights, [1, 3]);
  const s = parseStylizeArgs(['--content=c.jpg', '--style=a.jpg,b.png', '--out=o.jpg', '--style-blend-weights=1,3']).options!;
  assert.equal(s.style, ['a.jpg', 'b.png']); assert.equal(s.styleBlendWeights, [0.25, 0.75]);
  assert.equal(parse('--scales', '256,512').scales, [256, 512]);
  assert.is(parse('--scales', '256,512').size, 512);
  assert.is(parse('--init', 'my start.png').init, 'my start.png');
  assert.is(parse('--content-weight', '-0').contentWeight, -0);
  // the feed-forward flags (they need --method wct or adain)
  const ff: [string, string, keyof StylizeOptions, unknown][] = [
    ['--model', 'adain', 'model', 'adain'], ['--alpha', '0.3', 'alpha', 0.3], ['--levels', '4,2', 'levels', [4, 2]], ['--style-size', '300', 'styleSize', 300],
  ];
  for (const [flag, value, key, want] of ff) assert.equal(parse('--method', 'wct', `${flag}=${value}`)[key], want, `${flag}=${value}`);
  assert.is(parse('--method', 'wct').alpha, 0.6, 'WCT default alpha');
  assert.is(parse('--method', 'adain').alpha, 1, 'AdaIN default alpha');
  assert.is(parse('--backbone', 'vgg19-16x').lineSearch, 'strong-wolfe', 'vgg19-16x defaults');
  // every option (but content/style/out, covered above) has a flag tested here
  const covered = new Set<string>([...values.map((v) => v[2]), ...ff.map((v) => v[2]), 'verbose', 'smooth', 'photorealistic', 'smoothRadius', 'smoothEps', 'contentMask', 'styleMask', 'styleLayerWeights', 'styleBlendWeights', 'scales', 'content', 'style', 'out']);
  for (const k of STYLIZE_OPTION_KEYS) assert.ok(covered.has(k), `option ${k} has a tested flag`);
});

test('help', () => {
  assert.equal(parseStylizeArgs(['--help']), { help: true });
  assert.equal(parseStylizeArgs(['--pooling', 'bad', '-h']), { help: true }, 'help wins over checks');
  const h = stylizeHelp();
  for (const f of STYLIZE_FLAGS) assert.ok(h.includes(f.flag + ' ') || h.includes(f.flag + '\n'), `help lists ${f.flag}`);
  for (const f of STYLIZE_FLAGS) if (f.kind !== 'flag' && !['content', 'style', 'out'].includes(f.key)) assert.ok(f.def !== undefined, `${f.flag} shows a default`);
  for (const d of ['(default: 512)', '(default: avg', '(default: lbfgs)', '(default: 500)', '(default: relu4_2)', '(default: relu1_1,relu2_1,relu3_1,relu4_1,relu5_1)', '(default: pretrained)', '(default: 10)', '(default: none)']) {
    assert.ok(h.includes(d), `help shows ${d}`);
  }
  // every option key has exactly one flag
  for (const k of STYLIZE_OPTION_KEYS) assert.is(STYLIZE_FLAGS.filter((f) => f.key === k).length, 1, k);
});

test('unknown options, positionals, missing and repeated values', () => {
  rejects([...req, '--colour', 'x'], /^unknown option --colour; see --help$/);
  rejects([...req, '--layers', 'x'], /^unknown option --layers; did you mean --content-layers or --style-layers\?$/);
  rejects([...req, 'extra.jpg'], /^unexpected argument "extra\.jpg"/);
  rejects([...req, '-v'], /^unexpected argument "-v"/);
  rejects([...req, '--size'], /^--size: missing value \(PX\)$/);
  rejects([...req, '--size', '--iters', '5'], /^--size: missing value/);
  rejects([...req, '--size='], /^--size: missing value/);
  rejects([...req, '--size', '100', '--size', '200'], /^--size given twice$/);
  rejects([...req, '--verbose=yes'], /^--verbose: takes no value \(or =true, =false\), got "yes"$/);
  rejects(['--style', 's.jpg', '--out', 'o.png'], /^--content is required/);
  rejects(['--content', 'c.jpg', '--out', 'o.png'], /^--style is required/);
  rejects(['--content', 'c.jpg', '--style', 's.jpg'], /^--out is required/);
  rejects([...req, '--style-layers', 'relu1_1,,relu2_1'], /^--style-layers: empty item in list "relu1_1,,relu2_1"$/);
});

test('bad values name the flag and what is allowed', () => {
  rejects([...req, '--pooling', 'maxx'], /^--pooling: expected max or avg, got "maxx"$/);
  rejects([...req, '--content-mask', 'cm.png'], /^--content-mask: needs --style-mask too \(semantic masks come in pairs/);
  rejects([...req, '--style-mask', 'sm.png'], /^--style-mask: needs --content-mask too/);
  rejects(['--content', 'c.jpg', '--style', 'a.jpg,b.jpg', '--out', 'o.png', '--content-mask', 'cm.png', '--style-mask', 'sm.png'], /^--style-mask: expected one style image with semantic masks, got 2$/);
  rejects([...req, '--method', 'wct', '--content-mask', 'cm.png', '--style-mask', 'sm.png'], /^--content-mask: does not apply to --method wct/);
  rejects([...req, '--style-layers', 'relu1_1,relu6_1'], /^--style-layers: unknown layer "relu6_1" for backbone vgg19; valid: conv1_1, relu1_1, /);
  rejects([...req, '--iters', 'ten'], /^--iters: expected a positive integer, got "ten"$/);
  rejects([...req, '--iters', '1.5'], /^--iters: expected a positive integer, got 1\.5$/);
  rejects([...req, '--iters', '0'], /^--iters: expected a positive integer, got 0$/);
  rejects([...req, '--seed', '-3'], /^--seed: expected an integer from 0 to 4294967295, got -3$/);
  rejects([...req, '--lr', '0x10'], /^--lr: expected a positive number, got "0x10"$/);
  rejects([...req, '--size', '12abc'], /^--size: expected an integer from 16 to 16384, got "12abc"$/);
  rejects([...req, '--optimizer', 'LBFGS'], /^--optimizer: expected lbfgs, adam or sgd, got "LBFGS"$/);
  rejects([...req, '--style-layer-weights', '1,2'], /^--style-layer-weights: 2 weights given for 5 style layers/);
  rejects(['--content', 'c', '--style', 'a,b', '--out', 'o.png', '--style-blend-weights', '1,2,3'], /^--style-blend-weights: 3 weights given for 2 style images$/);
  rejects([...req, '--style-blend-weights', 'a'], /^--style-blend-weights: expected non-negative numbers, got "a"$/);
  rejects([...req, '--scales', '256,512', '--size', '300'], /^--scales: the last scale \(512\) must equal --size \(300\)$/);
  rejects([...req, '--weights', 'random:abc'], /^--weights: expected pretrained, random:SEED/);
  rejects(['--content', 'c.jpg', '--style', 's.jpg', '--out', 'o.bmp'], /^--out: expected a \.png, \.jpg or \.jpeg file name, got "o\.bmp"$/);
  rejects([...req, '--line-search', 'armijo'], /^--line-search: expected none or strong-wolfe, got "armijo"$/);
  rejects([...req, '--preserve-colors', 'all'], /^--preserve-colors: expected none, luminance or histogram, got "all"$/);
  rejects([...req, '--loss-normalization', 'x'], /^--loss-normalization: expected paper or scale-free, got "x"$/);
});

test.run();
