// Command-line parsing for `painterly stylize`: kebab-case flags onto StylizeOptions. Flags take `--flag value` or
// `--flag=value`; lists are comma-separated. Type and range checks live in resolveStylizeOptions, so the library and
// the CLI report the same rules (here under the flag's name).
import { PainterlyError } from '../gpu/device.ts';
import { BACKBONE_NAMES, BACKBONES } from '../nets/backbones.ts';
import { DEFAULT_SMOOTH_EPS, DEFAULT_SMOOTH_RADIUS, PHOTOREAL_MATTING_PER_TV } from '../style/photoreal.ts';
import {
  DEFAULT_CONTENT_LAYERS, DEFAULT_CONTENT_WEIGHT, DEFAULT_INIT, DEFAULT_ITERS, DEFAULT_LBFGS_HISTORY, DEFAULT_LINE_SEARCH,
  DEFAULT_LOSS_NORMALIZATION, DEFAULT_LR, DEFAULT_OPTIMIZER, DEFAULT_POOLING, DEFAULT_PRESERVE_COLORS, DEFAULT_PRINT_EVERY,
  DEFAULT_SAVE_EVERY, DEFAULT_SEED, DEFAULT_SIZE, DEFAULT_STYLE_LAYERS, DEFAULT_STYLE_SCALE, DEFAULT_STYLE_WEIGHT,
  DEFAULT_TV_WEIGHT, DEFAULT_WEIGHTS, MAX_SIZE, SCALE_FREE_DEFAULT_WEIGHTS, MIN_SIZE, resolveStylizeOptions, type StylizeInput, type StylizeOptions,
} from '../style/options.ts';

type Kind = 'string' | 'number' | 'strings' | 'numbers' | 'flag';

interface FlagSpec {
  flag: string;
  key: keyof StylizeOptions | 'help';
  kind: Kind;
  /** Value placeholder in the help text. */
  arg?: string;
  help: string;
  /** Default, as shown in the help text. */
  def?: string;
}

const list = (xs: readonly string[]) => xs.join(',');
const w16 = BACKBONES['vgg19-16x'].defaults;

/** Every flag of `painterly stylize`, in help order. */
export const STYLIZE_FLAGS: readonly FlagSpec[] = [
  { flag: '--content', key: 'content', kind: 'string', arg: 'FILE', help: 'content image (PNG or JPEG); required' },
  { flag: '--style', key: 'style', kind: 'strings', arg: 'FILE[,FILE...]', help: 'style image(s), comma-separated; required' },
  { flag: '--out', key: 'out', kind: 'string', arg: 'FILE', help: 'output image, .png or .jpg; required' },
  { flag: '--size', key: 'size', kind: 'number', arg: 'PX', help: `longest side of the output (${MIN_SIZE} to ${MAX_SIZE})`, def: String(DEFAULT_SIZE) },
  { flag: '--scales', key: 'scales', kind: 'numbers', arg: 'PX,PX,...', help: 'coarse-to-fine sizes, increasing, e.g. 256,512,1024; the last is the output size', def: 'just --size' },
  { flag: '--style-scale', key: 'styleScale', kind: 'number', arg: 'X', help: 'style images are resized to X times the output size', def: String(DEFAULT_STYLE_SCALE) },
  { flag: '--style-blend-weights', key: 'styleBlendWeights', kind: 'numbers', arg: 'W,W,...', help: 'one weight per style image, normalised to sum 1', def: 'equal' },
  { flag: '--content-weight', key: 'contentWeight', kind: 'number', arg: 'A', help: 'weight of the content loss', def: `${DEFAULT_CONTENT_WEIGHT} (scale-free: ${SCALE_FREE_DEFAULT_WEIGHTS.content}); vgg19-16x: ${w16.paper.contentWeight} (${w16.scaleFree.contentWeight})` },
  { flag: '--style-weight', key: 'styleWeight', kind: 'number', arg: 'B', help: 'weight of the style loss', def: `${DEFAULT_STYLE_WEIGHT} (scale-free: ${SCALE_FREE_DEFAULT_WEIGHTS.style}); vgg19-16x: ${w16.paper.styleWeight} (${w16.scaleFree.styleWeight})` },
  { flag: '--tv-weight', key: 'tvWeight', kind: 'number', arg: 'G', help: 'weight of the total-variation (smoothness) loss', def: `${DEFAULT_TV_WEIGHT} (scale-free: ${SCALE_FREE_DEFAULT_WEIGHTS.tv}); vgg19-16x: ${w16.paper.tvWeight} (${w16.scaleFree.tvWeight})` },
  { flag: '--content-layers', key: 'contentLayers', kind: 'strings', arg: 'L,L,...', help: 'layers for content (VGG19: conv1_1..conv5_4, relu1_1..relu5_4; resnet50: relu, maxpool, layer1..layer4, layer3.5; densenet121: relu0, denseblock1..4, transition1..3, norm5)', def: list(DEFAULT_CONTENT_LAYERS) },
  { flag: '--style-layers', key: 'styleLayers', kind: 'strings', arg: 'L,L,...', help: 'layers for style (names as for --content-layers)', def: list(DEFAULT_STYLE_LAYERS) },
  { flag: '--style-layer-weights', key: 'styleLayerWeights', kind: 'numbers', arg: 'W,W,...', help: 'one weight per style layer', def: '1/n each' },
  { flag: '--loss-normalization', key: 'lossNormalization', kind: 'string', arg: 'paper|scale-free', help: 'paper: Gatys et al.\'s sums; scale-free: per-element content loss and N*M-normalised Grams, so weights mean the same at any size', def: DEFAULT_LOSS_NORMALIZATION },
  { flag: '--pooling', key: 'pooling', kind: 'string', arg: 'max|avg', help: 'pooling in the backbone (the paper uses avg)', def: `${DEFAULT_POOLING} (vgg19-16x: ${BACKBONES['vgg19-16x'].defaults.pooling})` },
  { flag: '--init', key: 'init', kind: 'string', arg: 'noise|content|style|FILE', help: 'starting image', def: DEFAULT_INIT },
  { flag: '--optimizer', key: 'optimizer', kind: 'string', arg: 'lbfgs|adam|sgd', help: 'optimiser', def: DEFAULT_OPTIMIZER },
  { flag: '--lr', key: 'lr', kind: 'number', arg: 'X', help: 'step size (pixels in [0,1])', def: `${DEFAULT_LR.lbfgs} for lbfgs, ${DEFAULT_LR.adam} for adam, ${DEFAULT_LR.sgd} for sgd` },
  { flag: '--iters', key: 'iters', kind: 'number', arg: 'N', help: 'iterations (per scale)', def: String(DEFAULT_ITERS) },
  { flag: '--lbfgs-history', key: 'lbfgsHistory', kind: 'number', arg: 'N', help: 'L-BFGS correction pairs kept', def: String(DEFAULT_LBFGS_HISTORY) },
  { flag: '--line-search', key: 'lineSearch', kind: 'string', arg: 'none|strong-wolfe', help: 'L-BFGS line search', def: `${DEFAULT_LINE_SEARCH} (vgg19-16x: ${w16.lineSearch})` },
  { flag: '--preserve-colors', key: 'preserveColors', kind: 'string', arg: 'none|luminance|histogram', help: 'keep the content\'s colours: transfer luminance only, or match the style\'s colour histogram to the content first', def: DEFAULT_PRESERVE_COLORS },
  { flag: '--method', key: 'method', kind: 'string', arg: 'gatys|wct|adain', help: 'gatys: optimise the image; wct, adain: one feed-forward pass (real time)', def: 'gatys' },
  { flag: '--model', key: 'model', kind: 'string', arg: 'NAME|DIR', help: 'wct/adain: wct-16x or adain (downloaded and cached), or a folder laid out like upstream', def: 'wct-16x' },
  { flag: '--alpha', key: 'alpha', kind: 'number', arg: 'X', help: 'wct/adain: style strength, 0 (content) to 1 (full style)', def: '0.6 for wct, 1 for adain' },
  { flag: '--levels', key: 'levels', kind: 'numbers', arg: 'K,K,...', help: 'wct/adain: encoder levels (relu{K}_1), coarse to fine', def: '5,4,3,2,1 (adain model: 4)' },
  { flag: '--style-size', key: 'styleSize', kind: 'number', arg: 'PX', help: 'wct/adain: longest side of the style images', def: 'the output size' },
  { flag: '--backbone', key: 'backbone', kind: 'string', arg: BACKBONE_NAMES.join('|'), help: 'network whose features are matched; vgg19-16x: the distilled wct-16x encoder (its own default layers, pooling and weights)', def: 'vgg19' },
  { flag: '--feature-transform', key: 'featureTransform', kind: 'string', arg: 'none|softmax', help: 'gatys: softmax over channels of the tapped features before the losses (Wang et al. 2021: makes ResNet features transfer style)', def: 'none' },
  { flag: '--softmax-temperature', key: 'softmaxTemperature', kind: 'number', arg: 'T', help: 'with --feature-transform softmax: the temperature T of softmax(F/T)', def: '1' },
  { flag: '--weights', key: 'weights', kind: 'string', arg: 'pretrained|random:SEED|FILE', help: "the backbone's weights: downloaded and cached, random (tests only), or a .safetensors/.pth file", def: DEFAULT_WEIGHTS },
  { flag: '--smooth', key: 'smooth', kind: 'flag', help: 'photorealistic smoothing after any method: the colour guided filter of the result, guided by the content photo (Li et al. 2018, fast variant)' },
  { flag: '--smooth-radius', key: 'smoothRadius', kind: 'number', arg: 'R', help: 'with --smooth: guided-filter window radius at a 512 px output, scaled with the size', def: String(DEFAULT_SMOOTH_RADIUS) },
  { flag: '--smooth-eps', key: 'smoothEps', kind: 'number', arg: 'E', help: 'with --smooth: guided-filter regulariser (larger: smoother, fewer edges kept)', def: String(DEFAULT_SMOOTH_EPS) },
  { flag: '--matting-weight', key: 'mattingWeight', kind: 'number', arg: 'L', help: 'gatys: weight of the matting-Laplacian photorealism term (Luan et al. 2017) on the content photo; 0 = off', def: `0; ${PHOTOREAL_MATTING_PER_TV} x the default TV weight with --photorealistic` },
  { flag: '--content-mask', key: 'contentMask', kind: 'string', arg: 'FILE', help: 'gatys: colour-coded segmentation of the content (PNG/JPEG, any size); each colour region gets the style of the same colour in --style-mask (Luan et al. 2017)', def: 'none' },
  { flag: '--style-mask', key: 'styleMask', kind: 'string', arg: 'FILE', help: 'gatys: colour-coded segmentation of the (one) style image; with --content-mask', def: 'none' },
  { flag: '--photorealistic', key: 'photorealistic', kind: 'flag', help: 'gatys: photo in, photo out: --init content and the matting term on (Luan et al.\'s settings)' },
  { flag: '--seed', key: 'seed', kind: 'number', arg: 'N', help: 'random seed for the noise initialisation', def: String(DEFAULT_SEED) },
  { flag: '--save-every', key: 'saveEvery', kind: 'number', arg: 'N', help: 'also write OUT-<iter>.png (OUT-s<k>-<iter> with several scales) every N iterations (0 = never)', def: String(DEFAULT_SAVE_EVERY) },
  { flag: '--print-every', key: 'printEvery', kind: 'number', arg: 'N', help: 'print progress every N iterations (0 = never)', def: String(DEFAULT_PRINT_EVERY) },
  { flag: '--log', key: 'log', kind: 'string', arg: 'FILE', help: 'append one JSON line per loss evaluation', def: 'none' },
  { flag: '--max-memory', key: 'maxMemory', kind: 'string', arg: 'BYTES', help: 'GPU memory budget (e.g. 512M, 2G): tiles the image to fit, or says what would', def: 'no limit' },
  { flag: '--verbose', key: 'verbose', kind: 'flag', help: 'print more detail (device, timings)' },
  { flag: '--help', key: 'help', kind: 'flag', help: 'show this help' },
];

const BY_FLAG = new Map(STYLIZE_FLAGS.map((f) => [f.flag, f]));
const BY_KEY = new Map(STYLIZE_FLAGS.map((f) => [f.key, f]));

export type StylizeArgs = { help: true; options?: undefined } | { help: false; options: StylizeOptions };

// A strict decimal literal; anything else is handed on as the raw string, so the range check reports it verbatim.
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
const toNumber = (s: string): number | string => (NUMBER.test(s.trim()) ? Number(s) : s);

/**
 * Parses the arguments of `painterly stylize` (with or without the leading "stylize"). With --help, returns
 * { help: true } without requiring or checking anything else. Errors are one-line PainterlyErrors naming the flag.
 */
export function parseStylizeArgs(argv: readonly string[]): StylizeArgs {
  const args = argv[0] === 'stylize' ? argv.slice(1) : argv;
  const input: Record<string, unknown> = {};
  const seen = new Set<string>();
  let help = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '-h') { help = true; continue; }
    if (!arg.startsWith('--')) throw new PainterlyError(`unexpected argument ${JSON.stringify(arg)} (options are --flag value; see --help)`);
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg : arg.slice(0, eq);
    const spec = BY_FLAG.get(name);
    if (!spec) {
      const near = STYLIZE_FLAGS.filter((f) => f.flag.includes(name.slice(2)) || name.includes(f.flag.slice(2))).map((f) => f.flag);
      throw new PainterlyError(`unknown option ${name}` + (near.length ? `; did you mean ${near.join(' or ')}?` : '; see --help'));
    }
    if (seen.has(name)) throw new PainterlyError(`${name} given twice`);
    seen.add(name);
    let value: string;
    if (spec.kind === 'flag') {
      const v = eq < 0 ? 'true' : arg.slice(eq + 1);
      if (v !== 'true' && v !== 'false') throw new PainterlyError(`${name}: takes no value (or =true, =false), got ${JSON.stringify(v)}`);
      if (spec.key === 'help') help = v === 'true';
      else input[spec.key] = v === 'true';
      continue;
    }
    if (eq >= 0) value = arg.slice(eq + 1);
    else {
      const next = args[i + 1];
      // A following flag means this one's value was forgotten (negative numbers still pass: they start with one dash).
      if (next === undefined || /^--[a-z]/i.test(next)) throw new PainterlyError(`${name}: missing value (${spec.arg})`);
      value = next;
      i++;
    }
    if (value === '' ) throw new PainterlyError(`${name}: missing value (${spec.arg})`);
    const items = () => {
      const parts = value.split(',').map((s) => s.trim());
      if (parts.some((p) => p === '')) throw new PainterlyError(`${name}: empty item in list ${JSON.stringify(value)}`);
      return parts;
    };
    input[spec.key] = spec.kind === 'string' ? value : spec.kind === 'number' ? toNumber(value) :
      spec.kind === 'strings' ? items() : items().map(toNumber);
  }
  if (help) return { help: true };
  for (const key of ['content', 'style', 'out'] as const) {
    if (input[key] === undefined) throw new PainterlyError(`${BY_KEY.get(key)!.flag} is required (${BY_KEY.get(key)!.help.replace(/; required$/, '')}); see --help`);
  }
  const options = resolveStylizeOptions(input as StylizeInput, (k) => BY_KEY.get(k)?.flag ?? k);
  return { help: false, options };
}

/** Usage text for `painterly stylize`: every flag, what it does, and its default. */
export function stylizeHelp(): string {
  const rows = STYLIZE_FLAGS.map((f) => [`  ${f.flag}${f.arg ? ` ${f.arg}` : ''}`, f.help + (f.def !== undefined ? ` (default: ${f.def})` : '')]);
  const width = Math.max(...rows.map((r) => r[0].length)) + 2;
  return [
    'Usage: painterly stylize --content FILE --style FILE[,FILE...] --out FILE [options]',
    '',
    'Neural style transfer (Gatys et al.): optimises an image whose VGG19 features match the content image\'s',
    'and whose Gram matrices match the style images\'. Flags take "--flag value" or "--flag=value".',
    '',
    'Options:',
    ...rows.map(([a, b]) => a.padEnd(width) + b),
    '',
  ].join('\n');
}
