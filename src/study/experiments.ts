// The study's experiments: each a sweep of one factor, everything else at the shared base settings. Built-in
// sweeps follow Gatys et al. (2016); a config JSON file may list built-in names and custom sweeps.
import { PainterlyError } from '../gpu/device.ts';
import { resolveStylizeOptions, STYLIZE_OPTION_KEYS, type StylizeInput } from '../style/options.ts';

/** Stylize options a run changes relative to the base (plain JSON data). */
export type Overrides = Partial<Omit<StylizeInput, 'content' | 'style' | 'out' | 'log'>>;

export interface RunSpec {
  /** Folder name inside the experiment's folder: [a-z0-9._-]. */
  id: string;
  /** Shown under the image and in the legend. */
  label: string;
  overrides: Overrides;
}

export interface Experiment {
  /** Folder name: [a-z0-9._-]. */
  name: string;
  title: string;
  /** One or two sentences for the report. */
  about: string;
  runs: RunSpec[];
  /** Also plot loss against wall-clock seconds (always done; this marks experiments where it is the point). */
  timing?: boolean;
}

export const EXPERIMENT_NAMES = ['optimizer', 'ratio', 'pooling', 'init', 'content-layers', 'style-layers', 'backbone'] as const;
export type ExperimentName = (typeof EXPERIMENT_NAMES)[number];

/**
 * The backbone sweep: each network with its own default layers, pooling and loss weights (src/nets/backbones.ts),
 * ResNet-50 with and without Wang et al.'s softmax transform. vgg19-16x always runs its trained wct-16x encoder;
 * the others use the study's weights (pretrained downloads where the network allows, else random:SEED).
 */
export const BACKBONE_RUNS: readonly { id: string; label: string; overrides: Overrides }[] = [
  { id: 'vgg19', label: 'VGG19', overrides: { backbone: 'vgg19' } },
  { id: 'vgg19_bn', label: 'VGG19-BN', overrides: { backbone: 'vgg19_bn' } },
  { id: 'resnet50', label: 'ResNet-50', overrides: { backbone: 'resnet50' } },
  { id: 'resnet50-softmax', label: 'ResNet-50 + softmax', overrides: { backbone: 'resnet50', featureTransform: 'softmax' } },
  { id: 'densenet121', label: 'DenseNet-121', overrides: { backbone: 'densenet121' } },
  { id: 'vgg19-16x', label: 'VGG19-16x (trained)', overrides: { backbone: 'vgg19-16x', weights: 'pretrained' } },
];
export const BACKBONES: readonly string[] = BACKBONE_RUNS.map((r) => r.id);

const CONTENT_LAYERS = ['relu1_2', 'relu2_2', 'relu3_2', 'relu4_2', 'relu5_2'];
const STYLE_LAYERS = ['relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1'];
/** The ratio sweep: alpha/beta at these powers of ten times the base's ratio (the paper's Figure 3 spans 4 decades). */
export const RATIO_DECADES = [2, 1, 0, -1, -2, -3];
const fmtRatio = (r: number) => (r >= 0.01 && r < 1000 ? String(+r.toPrecision(2)) : r.toExponential(1).replace('.0e', 'e').replace('e-', 'e-'));

const idOf = (s: string) => s.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'run';

/**
 * A built-in experiment. `base` is the study's shared settings: the ratio sweep scales the style weight against
 * the base content weight (beta = alpha / ratio).
 */
export function builtinExperiment(name: ExperimentName, base: Overrides = {}): Experiment {
  switch (name) {
    case 'optimizer':
      return {
        name, title: 'Optimiser', timing: true,
        about: 'L-BFGS, Adam and SGD on the same objective from the same start, each with its default step size; loss against iterations and against wall-clock seconds.',
        runs: (['lbfgs', 'adam', 'sgd'] as const).map((o) => ({ id: o, label: { lbfgs: 'L-BFGS', adam: 'Adam', sgd: 'SGD' }[o], overrides: { optimizer: o } })),
      };
    case 'ratio': {
      // The decades around the base ratio (the defaults' depends on the loss normalisation and image size).
      const o = resolveStylizeOptions({ ...base, content: 'content.png', style: 'style.png' });
      const alpha = o.contentWeight > 0 ? o.contentWeight : 1;
      const r0 = o.styleWeight > 0 ? alpha / o.styleWeight : 1e-3;
      // beta0 * 10^-k exactly, so the k = 0 run has the base's own settings (and is shared with other experiments).
      const beta0 = alpha / r0;
      return {
        name, title: 'Content/style ratio alpha/beta',
        about: `The style weight beta is set to alpha/ratio with the content weight alpha = ${alpha}, for ratios a decade apart around the base's ${fmtRatio(r0)}: small ratios favour style, large ones content.`,
        runs: RATIO_DECADES.map((k) => {
          const r = r0 * 10 ** k;
          return { id: `ratio-${r.toExponential(2)}`, label: `a/b=${fmtRatio(r)}`, overrides: { contentWeight: alpha, styleWeight: k >= 0 ? beta0 / 10 ** k : beta0 * 10 ** -k } };
        }),
      };
    }
    case 'pooling':
      return {
        name, title: 'Pooling', about: 'Max pooling (as VGG19 was trained) against average pooling (the paper\'s choice).',
        runs: (['max', 'avg'] as const).map((p) => ({ id: p, label: p === 'max' ? 'max pooling' : 'avg pooling', overrides: { pooling: p } })),
      };
    case 'init':
      return {
        name, title: 'Initialisation', about: 'Starting from white noise, from the content image, or from the style image.',
        runs: (['noise', 'content', 'style'] as const).map((i) => ({ id: i, label: `init ${i}`, overrides: { init: i } })),
      };
    case 'content-layers':
      return {
        name, title: 'Content reconstruction by layer',
        about: 'The content image reconstructed from white noise using one layer\'s activations alone (style weight 0, no TV term), as in the paper\'s Figure 1.',
        runs: CONTENT_LAYERS.map((l) => ({ id: l, label: l, overrides: { contentLayers: [l], styleWeight: 0, tvWeight: 0, init: 'noise' } })),
      };
    case 'style-layers':
      return {
        name, title: 'Style reconstruction by layers',
        about: 'The style reconstructed from white noise from the Gram matrices of relu1_1, then relu1_1 and relu2_1, and so on up to relu5_1 (content weight 0, no TV term).',
        runs: STYLE_LAYERS.map((_, i) => {
          const layers = STYLE_LAYERS.slice(0, i + 1);
          return { id: `upto-${layers[i]}`, label: i === 0 ? layers[0] : `+ ${layers[i]}`, overrides: { styleLayers: layers, contentWeight: 0, tvWeight: 0, init: 'noise' } };
        }),
      };
    case 'backbone':
      return {
        name, title: 'Backbone network', timing: true,
        about: 'The feature network, each with its own default layers, pooling and loss weights: VGG19, VGG19 with batch norm, ResNet-50 ' +
          '(with and without the softmax transform of Wang et al. 2021), DenseNet-121, and the distilled VGG19 of wct-16x (trained weights). ' +
          'Each run\'s weights are named under its image: where they are random, the picture shows what an untrained network matches, not what the backbone can do.',
        runs: BACKBONE_RUNS.map((r) => ({ ...r, overrides: { ...r.overrides, contentLayers: undefined, styleLayers: undefined, styleLayerWeights: undefined, pooling: undefined } })),
      };
  }
}

/** Parses `optimizer,ratio,...` (or `all`). */
export function parseExperimentList(s: string, base: Overrides = {}): Experiment[] {
  const names = s.split(',').map((x) => x.trim()).filter(Boolean);
  if (names.length === 0) throw new PainterlyError(`--experiments: expected a list of ${EXPERIMENT_NAMES.join(', ')} (or all)`);
  if (names.length === 1 && names[0] === 'all') return EXPERIMENT_NAMES.map((n) => builtinExperiment(n, base));
  return names.map((n) => {
    if (!(EXPERIMENT_NAMES as readonly string[]).includes(n)) {
      throw new PainterlyError(`--experiments: unknown experiment "${n}"; expected ${EXPERIMENT_NAMES.join(', ')} or all`);
    }
    return builtinExperiment(n as ExperimentName, base);
  });
}

/**
 * A study config (JSON):
 *   { "base": { ...stylize options... },
 *     "experiments": [ "optimizer",
 *                      { "name": "tv", "title": "TV weight", "option": "tvWeight", "values": [0, 1e-3, 1e-2] },
 *                      { "name": "mix", "runs": [ { "label": "a", "options": { "pooling": "max", "iters": 50 } } ] } ] }
 * Returns the base overrides and the experiments. Errors name the offending entry.
 */
export function parseStudyConfig(json: unknown, where = 'config'): { base: Overrides; experiments: Experiment[] } {
  const fail = (m: string): never => { throw new PainterlyError(`${where}: ${m}`); };
  if (!json || typeof json !== 'object' || Array.isArray(json)) fail('expected a JSON object with "experiments" (and optionally "base")');
  const o = json as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['base', 'experiments'].includes(k)) fail(`unknown key "${k}"; expected base, experiments`);
  const base = checkOverrides(o.base ?? {}, `${where}: base`);
  if (!Array.isArray(o.experiments) || o.experiments.length === 0) fail('"experiments" must be a non-empty list');
  const experiments = (o.experiments as unknown[]).map((e, i): Experiment => {
    const at = `${where}: experiments[${i}]`;
    if (typeof e === 'string') {
      if (!(EXPERIMENT_NAMES as readonly string[]).includes(e)) fail(`experiments[${i}]: unknown experiment "${e}"; expected ${EXPERIMENT_NAMES.join(', ')} or an object`);
      return builtinExperiment(e as ExperimentName, base);
    }
    if (!e || typeof e !== 'object') throw new PainterlyError(`${at}: expected a name or an object`);
    const x = e as Record<string, unknown>;
    if (typeof x.name !== 'string' || !x.name) throw new PainterlyError(`${at}: "name" (a string) is required`);
    const title = typeof x.title === 'string' ? x.title : x.name;
    const about = typeof x.about === 'string' ? x.about : '';
    let runs: RunSpec[];
    if (x.option !== undefined) {
      if (typeof x.option !== 'string' || !(STYLIZE_OPTION_KEYS as readonly string[]).includes(x.option)) {
        throw new PainterlyError(`${at}: "option" must be a stylize option name (${STYLIZE_OPTION_KEYS.join(', ')})`);
      }
      if (!Array.isArray(x.values) || x.values.length === 0) throw new PainterlyError(`${at}: "values" must be a non-empty list`);
      const key = x.option;
      runs = x.values.map((v) => ({ id: idOf(`${key}-${JSON.stringify(v)}`), label: `${key}=${Array.isArray(v) ? v.join(',') : v}`, overrides: checkOverrides({ [key]: v }, at) }));
    } else if (Array.isArray(x.runs) && x.runs.length > 0) {
      runs = x.runs.map((r, j) => {
        const rr = (r ?? {}) as Record<string, unknown>;
        const label = typeof rr.label === 'string' && rr.label ? rr.label : `run ${j + 1}`;
        return { id: idOf(typeof rr.id === 'string' ? rr.id : label), label, overrides: checkOverrides(rr.options ?? {}, `${at}.runs[${j}].options`) };
      });
    } else {
      throw new PainterlyError(`${at}: give "option" and "values", or "runs": [{ "label", "options" }]`);
    }
    return { name: idOf(x.name), title, about, runs: dedupeIds(runs) };
  });
  const seen = new Set<string>();
  for (const e of experiments) {
    if (seen.has(e.name)) fail(`experiment "${e.name}" is listed twice`);
    seen.add(e.name);
  }
  return { base, experiments };
}

function dedupeIds(runs: RunSpec[]): RunSpec[] {
  const used = new Map<string, number>();
  return runs.map((r) => {
    const n = used.get(r.id) ?? 0;
    used.set(r.id, n + 1);
    return n === 0 ? r : { ...r, id: `${r.id}-${n + 1}` };
  });
}

function checkOverrides(v: unknown, at: string): Overrides {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new PainterlyError(`${at}: expected an object of stylize options`);
  for (const k of Object.keys(v)) {
    if (['content', 'style', 'out', 'log'].includes(k)) throw new PainterlyError(`${at}: "${k}" is set by the study, not per run`);
    if (!(STYLIZE_OPTION_KEYS as readonly string[]).includes(k)) throw new PainterlyError(`${at}: unknown stylize option "${k}"`);
  }
  return v as Overrides;
}
