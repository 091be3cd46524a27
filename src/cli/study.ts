// `painterly study`: the project's experiments (optimiser, alpha/beta, pooling, init, layers, backbone) rerun on
// your images, written as a folder with pictures, loss plots and an index.html. Study flags are taken here; every
// other flag is a stylize option shared by all runs (parsed and checked by parseStylizeArgs).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PainterlyError } from '../gpu/device.ts';
import { createPainterly } from '../node.ts';
import type { Painterly } from '../painterly.ts';
import { STYLIZE_OPTION_KEYS, type StylizeOptions } from '../style/options.ts';
import { EXPERIMENT_NAMES, parseExperimentList, parseStudyConfig, type Experiment, type Overrides } from '../study/experiments.ts';
import { runStudy, type StudyProgress } from '../study/run.ts';
import { parseStylizeArgs, STYLIZE_FLAGS, stylizeHelp } from './args.ts';
import { formatProgress } from './progress.ts';

export interface StudyArgs {
  help: boolean;
  content: string;
  style: string[];
  out: string;
  base: Overrides;
  experiments: Experiment[];
  force: boolean;
  printEvery: number;
}

const STUDY_ONLY = ['--out', '--experiments', '--config', '--force'];

export function studyHelp(): string {
  return [
    'Usage: painterly study --content FILE --style FILE --out DIR [--experiments LIST] [--config FILE.json] [--force] [stylize options]',
    '',
    'Runs the experiments (each a sweep of one factor, everything else at the base settings) and writes DIR/index.html',
    'with contact sheets, loss plots (SVG and PNG), settings, weights, adapter and timings. Rerunning skips finished runs.',
    '',
    `  --experiments LIST  comma-separated: ${EXPERIMENT_NAMES.join(', ')}, or all (default: all)`,
    '  --config FILE.json  { "base": {options}, "experiments": ["optimizer", {"name", "option", "values"}, {"name", "runs": [{"label", "options"}]}] }',
    '  --out DIR           output folder (created if missing)',
    '  --force             rerun finished runs too',
    '',
    'Any stylize option sets the base for every run, e.g. --size 256 --iters 300 --weights pretrained --seed 0.',
    'Stylize options (--out, --log and --save-every do not apply):',
    ...stylizeHelp().split('\n').slice(6).filter((l) => !/^\s+--(out|log|save-every|help) /.test(l)),
  ].join('\n');
}

/** Parses `painterly study` arguments. */
export function parseStudyArgs(argv: readonly string[]): StudyArgs {
  const rest: string[] = [];
  const study: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf('=');
    const name = eq < 0 ? a : a.slice(0, eq);
    if (!STUDY_ONLY.includes(name)) { rest.push(a); continue; }
    if (name in study) throw new PainterlyError(`${name} given twice`);
    if (name === '--force') { study[name] = 'true'; continue; }
    const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
    if (v === undefined || v === '' || (eq < 0 && /^--[a-z]/i.test(v))) throw new PainterlyError(`${name}: missing value`);
    study[name] = v;
  }
  if (rest.includes('--help') || rest.includes('-h')) return { help: true } as StudyArgs;
  for (const f of ['--log', '--save-every']) {
    if (rest.some((a) => a === f || a.startsWith(`${f}=`))) throw new PainterlyError(`${f} does not apply to a study (each run writes its own log.jsonl)`);
  }
  if (!study['--out']) throw new PainterlyError('--out is required (the study folder); see --help');
  // parseStylizeArgs checks every shared option (it needs an output name; the study's runs are named by the study).
  const parsed = parseStylizeArgs([...rest, '--out', 'study.png']);
  const o = parsed.options!;
  // Only options given on the command line go into the base, so each run still gets its own defaults (e.g. lr per optimiser).
  const given = new Set(rest.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0]));
  const base: Overrides = {};
  for (const f of STYLIZE_FLAGS) {
    const key = f.key as keyof StylizeOptions;
    if (!given.has(f.flag) || ['content', 'style', 'out', 'log', 'help', 'verbose', 'printEvery', 'saveEvery'].includes(f.key)) continue;
    if ((STYLIZE_OPTION_KEYS as readonly string[]).includes(key)) (base as Record<string, unknown>)[key] = o[key];
  }
  let experiments: Experiment[];
  if (study['--config']) {
    if (study['--experiments']) throw new PainterlyError('give --experiments or --config, not both');
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(study['--config'], 'utf8'));
    } catch (e) {
      throw new PainterlyError(`--config: cannot read "${study['--config']}": ${String((e as Error).message).split('\n')[0]}`);
    }
    const cfg = parseStudyConfig(json, `--config ${study['--config']}`);
    // Command-line options win over the config's base.
    Object.assign(cfg.base, base);
    Object.assign(base, cfg.base);
    experiments = cfg.experiments;
  } else {
    experiments = parseExperimentList(study['--experiments'] ?? 'all', base);
  }
  return {
    help: false, content: o.content as string, style: o.style as string[], out: study['--out'], base, experiments,
    force: study['--force'] === 'true', printEvery: o.printEvery,
  };
}

export function progressText(p: StudyProgress): string {
  const head = `[${p.index}/${p.total}] ${p.experiment}/${p.run}`;
  if (p.state === 'skipped') return `${head}: finished earlier, skipped`;
  if (p.state === 'shared') return `${head}: same settings as an earlier run, copied`;
  if (p.state === 'start') return `${head}: starting`;
  if (p.state === 'done') return `${head}: done`;
  const q = p.progress!;
  return `${head}: iter ${q.iter}/${q.iters}  loss ${formatProgress.num(q.terms.total)}  ${q.itPerSec.toFixed(2)} it/s  ETA ${formatProgress.duration(q.etaSeconds)}`;
}

export async function studyMain(argv: string[]): Promise<number> {
  const args = parseStudyArgs(argv);
  if (args.help) { console.log(studyHelp()); return 0; }
  for (const f of [args.content, ...args.style]) if (!existsSync(f)) throw new PainterlyError(`cannot read image "${f}": no such file`);
  const tty = !!process.stderr.isTTY && process.env.CI !== 'true';
  let drawn = false;
  const line = (s: string, transient: boolean) => {
    if (tty) { process.stderr.write(`\r\x1b[K${s.slice(0, (process.stderr.columns || 160) - 1)}${transient ? '' : '\n'}`); drawn = transient; }
    else process.stderr.write(`${s}\n`);
  };
  const controller = new AbortController();
  const onSigint = () => { process.stderr.write('\npainterly: interrupted; finished runs are kept, rerun to resume\n'); controller.abort(); };
  process.on('SIGINT', onSigint);
  let painterly: Painterly | undefined;
  try {
    painterly = await createPainterly({ weights: { onMessage: (m) => line(`painterly: ${m}`, false) } });
    line(`painterly: study of ${args.experiments.map((e) => e.name).join(', ')} on ${painterly.gpu.describe()}`, false);
    const s = await runStudy(painterly, { content: args.content, style: args.style, out: args.out, base: args.base, experiments: args.experiments, force: args.force }, {
      onProgress: (p) => {
        if (p.state === 'progress' && !tty && (args.printEvery === 0 || (p.progress!.iter % args.printEvery !== 0 && p.progress!.iter !== p.progress!.iters))) return;
        line(progressText(p), p.state === 'progress' || p.state === 'start');
      },
      onMessage: (m) => line(`painterly: ${m}`, false),
      signal: controller.signal,
    });
    if (drawn) process.stderr.write('\n');
    console.error(`painterly: ${s.ran} run${s.ran === 1 ? '' : 's'} done, ${s.shared} shared, ${s.skipped} skipped, ${s.seconds.toFixed(1)} s; report: ${join(args.out, 'index.html')} (weights: ${s.weights.join(', ')})`);
    return controller.signal.aborted ? 130 : 0;
  } finally {
    process.off('SIGINT', onSigint);
    painterly?.destroy();
  }
}
