// Runs a study: every run of every experiment into its own folder (image.png, log.jsonl, done.json), then per
// experiment a contact sheet and loss plots, and an index.html over everything. Resumable: a run whose image and
// done.json exist with the same settings is skipped. One Painterly for the whole study (weights load once).
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { PainterlyError } from '../gpu/device.ts';
import { decodeImage } from '../image/codec.ts';
import type { RgbImage } from '../image/image.ts';
import { readImage, writeImage } from '../image/node-io.ts';
import { fitLongestSide } from '../image/resize.ts';
import type { Painterly } from '../painterly.ts';
import type { EvaluationRecord, ProgressInfo } from '../style/engine.ts';
import type { LossTerms } from '../style/objective.ts';
import { resolveStylizeOptions, type StylizeOptions } from '../style/options.ts';
import type { Experiment, Overrides, RunSpec } from './experiments.ts';
import { plotPng, plotSvg, type Series } from './plot.ts';
import { writeReport } from './report.ts';
import { contactSheet } from './sheet.ts';

export interface StudyInput {
  /** Content and style images: file paths (recorded in the report) or images. */
  content: string | RgbImage;
  style: (string | RgbImage)[];
  /** Output folder (created if missing). */
  out: string;
  /** Stylize options shared by every run (only those set; the rest take the library defaults per run). */
  base: Overrides;
  experiments: Experiment[];
  /** Rerun finished runs too. */
  force?: boolean;
}

/** Where the study is: which run of how many, and the run's own progress (absent when a run starts or is skipped). */
export interface StudyProgress {
  index: number;
  total: number;
  experiment: string;
  run: string;
  label: string;
  /** skipped: finished earlier; shared: the same settings already ran in this study (its files are copied). */
  state: 'start' | 'progress' | 'skipped' | 'shared' | 'done';
  progress?: ProgressInfo;
}

export interface StudyHooks {
  onProgress?: (p: StudyProgress) => void;
  onMessage?: (m: string) => void;
  signal?: AbortSignal;
}

/** done.json: what a finished run used and produced. */
export interface RunRecord {
  experiment: string;
  id: string;
  label: string;
  overrides: Overrides;
  /** The resolved settings (images replaced by their descriptions). */
  settings: Record<string, unknown>;
  /** Equal keys mean equal settings and inputs, so a finished run can be skipped. */
  key: string;
  weights: string;
  adapter: string;
  width: number;
  height: number;
  iterations: number;
  stopped: string;
  message?: string;
  terms?: LossTerms;
  /** Optimisation time as the engine measured it, and the wall time of the whole run (targets, readbacks). */
  seconds: number;
  wallSeconds: number;
  finishedAt: string;
  /** "experiment/run" whose result this is, when the settings were identical (e.g. every sweep's default). */
  sameAs?: string;
}

export interface StudySummary {
  out: string;
  /** Per experiment, its runs' records (undefined where a run did not finish). */
  records: Map<string, (RunRecord | undefined)[]>;
  ran: number;
  skipped: number;
  /** Runs whose settings equalled an earlier run's in this study: copied, not run. */
  shared: number;
  seconds: number;
  adapter: string;
  weights: string[];
}

export const RUN_IMAGE = 'image.png';
export const RUN_LOG = 'log.jsonl';
export const RUN_DONE = 'done.json';

/** FNV-1a over an image's bytes: identifies the inputs in run keys without trusting file names. */
function imageHash(img: RgbImage): string {
  const b = new Uint8Array(img.data.buffer, img.data.byteOffset, img.data.byteLength);
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i], 0x01000193);
  return `${img.width}x${img.height}:${(h >>> 0).toString(16).padStart(8, '0')}`;
}

function writeAtomic(path: string, text: string | Uint8Array): void {
  const tmp = join(join(path, '..'), `.${basename(path)}.${process.pid}.tmp`);
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

function readRecord(dir: string): RunRecord | undefined {
  if (!existsSync(join(dir, RUN_IMAGE)) || !existsSync(join(dir, RUN_DONE))) return undefined;
  try {
    return JSON.parse(readFileSync(join(dir, RUN_DONE), 'utf8')) as RunRecord;
  } catch {
    return undefined;
  }
}

export function readLog(dir: string): EvaluationRecord[] {
  const p = join(dir, RUN_LOG);
  if (!existsSync(p)) return [];
  return readFileSync(p, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as EvaluationRecord);
}

/**
 * Loss after each iteration: the first evaluation logged at each iteration count is the loss at that iterate
 * (Adam, SGD and L-BFGS without line search evaluate the current point first; with a line search it is the first
 * trial). Later scales of a multi-scale run continue the iteration and time axes.
 */
export function lossCurve(log: readonly EvaluationRecord[]): { iter: number; seconds: number; total: number }[] {
  const out: { iter: number; seconds: number; total: number }[] = [];
  let scale = -1, iterBase = 0, timeBase = 0, lastIter = 0, lastSec = 0, seen = new Set<number>();
  for (const r of log) {
    const s = r.scale ?? 0;
    if (s !== scale) {
      if (scale >= 0) { iterBase += lastIter; timeBase += lastSec; }
      scale = s;
      seen = new Set();
    }
    lastIter = r.iter; lastSec = r.seconds;
    if (seen.has(r.iter)) continue;
    seen.add(r.iter);
    out.push({ iter: iterBase + r.iter, seconds: timeBase + r.seconds, total: r.total });
  }
  return out;
}

function describeSettings(o: StylizeOptions, content: string, style: string[]): Record<string, unknown> {
  const { content: _c, style: _s, out: _o, log: _l, printEvery: _p, verbose: _v, saveEvery: _e, ...rest } = o;
  return { content, style, ...rest, init: typeof o.init === 'string' ? o.init : '(image)' };
}

/** Runs (or resumes) the study and writes its report. The caller owns `painterly`. */
export async function runStudy(painterly: Painterly, input: StudyInput, hooks: StudyHooks = {}): Promise<StudySummary> {
  const t0 = performance.now();
  const { out, experiments } = input;
  // The same notice (e.g. about random weights) once per study, not once per run.
  const said = new Set<string>();
  const say = hooks.onMessage;
  hooks = { ...hooks, onMessage: (m) => { const k = m.replace(/^[^:]*: /, ''); if (!said.has(k)) { said.add(k); say?.(m); } } };
  if (experiments.length === 0) throw new PainterlyError('study: no experiments given');
  mkdirSync(join(out, 'inputs'), { recursive: true });
  const load = async (s: string | RgbImage, what: string) => (typeof s === 'string' ? readImage(s) : painterly.image(s, what));
  const content = await load(input.content, 'content');
  const styles = await Promise.all(input.style.map((s, i) => load(s, `style ${i + 1}`)));
  const name = (s: string | RgbImage, what: string) => (typeof s === 'string' ? s : `(${what} ${s.width}x${s.height})`);
  const contentName = name(input.content, 'image');
  const styleNames = input.style.map((s) => name(s, 'image'));
  const ids = { content: imageHash(content), style: styles.map(imageHash) };
  const adapter = painterly.gpu.describe() || '(unknown adapter)';

  // Base settings resolved once, to check them before any work and to size the reference thumbnails.
  const baseResolved = resolveStylizeOptions({ ...input.base, content, style: styles });
  const thumb = (img: RgbImage) => fitLongestSide(img, baseResolved.size);
  const refs = { content: thumb(content), styles: styles.map(thumb) };
  await writeImage(join(out, 'inputs', 'content.png'), refs.content);
  for (let i = 0; i < styles.length; i++) await writeImage(join(out, 'inputs', `style-${i + 1}.png`), refs.styles[i]);

  const total = experiments.reduce((n, e) => n + e.runs.length, 0);
  const records = new Map<string, (RunRecord | undefined)[]>();
  let index = 0, ran = 0, skipped = 0, shared = 0;
  const finished = new Map<string, { dir: string; rec: RunRecord }>();
  const weightsUsed = new Set<string>();
  const writeAll = () => writeReport(out, {
    experiments, records, adapter, weights: [...weightsUsed], base: input.base,
    baseSettings: describeSettings(baseResolved, contentName, styleNames), styleCount: styles.length,
    seconds: (performance.now() - t0) / 1000,
  });

  for (const exp of experiments) {
    const recs: (RunRecord | undefined)[] = [];
    records.set(exp.name, recs);
    for (const run of exp.runs) {
      index++;
      const dir = join(out, exp.name, run.id);
      mkdirSync(dir, { recursive: true });
      const o = resolveStylizeOptions({ ...input.base, ...run.overrides, content, style: styles });
      const settings = describeSettings(o, contentName, styleNames);
      const key = JSON.stringify({ ...settings, content: ids.content, style: ids.style });
      const ev = { index, total, experiment: exp.name, run: run.id, label: run.label };
      const prev = input.force ? undefined : readRecord(dir);
      if (prev && prev.key === key) {
        recs.push(prev);
        weightsUsed.add(prev.weights);
        finished.set(key, { dir, rec: prev });
        skipped++;
        hooks.onProgress?.({ ...ev, state: 'skipped' });
        continue;
      }
      const same = finished.get(key);
      if (same) {
        // Deterministic on one adapter, so an identical run would give identical files: copy them.
        for (const f of [RUN_IMAGE, RUN_LOG]) copyFileSync(join(same.dir, f), join(dir, f));
        const rec: RunRecord = { ...same.rec, experiment: exp.name, id: run.id, label: run.label, overrides: run.overrides, sameAs: `${same.rec.experiment}/${same.rec.id}` };
        writeAtomic(join(dir, RUN_DONE), JSON.stringify(rec, null, 2) + '\n');
        recs.push(rec);
        shared++;
        hooks.onProgress?.({ ...ev, state: 'shared' });
        continue;
      }
      if (prev) hooks.onMessage?.(`${exp.name}/${run.id}: settings changed since it last ran; running it again`);
      const rec = await runOne(painterly, dir, exp, run, o, settings, key, adapter, hooks, ev);
      recs.push(rec);
      if (!rec) break;
      finished.set(key, { dir, rec });
      weightsUsed.add(rec.weights);
      ran++;
    }
    writeExperimentPictures(out, exp, recs, refs, styles.length);
    writeAll();
    if (hooks.signal?.aborted) break;
  }
  return { out, records, ran, skipped, shared, seconds: (performance.now() - t0) / 1000, adapter, weights: [...weightsUsed] };
}

async function runOne(
  painterly: Painterly, dir: string, exp: Experiment, run: RunSpec, o: StylizeOptions, settings: Record<string, unknown>,
  key: string, adapter: string, hooks: StudyHooks, ev: Omit<StudyProgress, 'state'>,
): Promise<RunRecord | undefined> {
  hooks.onProgress?.({ ...ev, state: 'start' });
  const lines: string[] = [];
  const w0 = performance.now();
  const r = await painterly.stylizeResolved({ ...o, out: undefined, log: undefined, saveEvery: 0 }, {
    onEvaluation: (e) => lines.push(JSON.stringify(e)),
    onProgress: (p) => hooks.onProgress?.({ ...ev, state: 'progress', progress: p }),
    onMessage: (m) => hooks.onMessage?.(`${exp.name}/${run.id}: ${m}`),
    signal: hooks.signal,
  });
  if (r.stopped === 'aborted') return undefined;
  await writeImage(join(dir, RUN_IMAGE), r.image);
  writeAtomic(join(dir, RUN_LOG), lines.join('\n') + '\n');
  const rec: RunRecord = {
    experiment: exp.name, id: run.id, label: run.label, overrides: run.overrides, settings, key, weights: r.weights, adapter,
    width: r.width, height: r.height, iterations: r.iterations, stopped: r.stopped, ...(r.message ? { message: r.message } : {}),
    terms: r.terms, seconds: r.seconds, wallSeconds: (performance.now() - w0) / 1000, finishedAt: new Date().toISOString(),
  };
  // Written last: its presence (with the image) is what marks the run finished.
  writeAtomic(join(dir, RUN_DONE), JSON.stringify(rec, null, 2) + '\n');
  hooks.onProgress?.({ ...ev, state: 'done' });
  return rec;
}

/** File names of an experiment's pictures, inside its folder. */
export const EXPERIMENT_FILES = { sheet: 'contact.png', iterSvg: 'loss-iterations.svg', iterPng: 'loss-iterations.png', timeSvg: 'loss-seconds.svg', timePng: 'loss-seconds.png' };

function writeExperimentPictures(
  out: string, exp: Experiment, recs: (RunRecord | undefined)[], refs: { content: RgbImage; styles: RgbImage[] }, nStyles: number,
): void {
  const dir = join(out, exp.name);
  mkdirSync(dir, { recursive: true });
  const decoded = exp.runs.map((run, i) => {
    const p = join(dir, run.id, RUN_IMAGE);
    return recs[i] && existsSync(p) ? decodeImage(readFileSync(p), p) : undefined;
  });
  const cells = [
    { label: 'content', image: refs.content, reference: true },
    ...refs.styles.map((s, i) => ({ label: nStyles > 1 ? `style ${i + 1}` : 'style', image: s, reference: true })),
    ...exp.runs.map((run, i) => ({ label: run.label, image: decoded[i] })),
  ];
  writeAtomic(join(dir, EXPERIMENT_FILES.sheet), contactSheet(exp.title, cells));
  const curves = exp.runs.map((run, i) => (recs[i] ? lossCurve(readLog(join(dir, run.id))) : []));
  const series = (x: 'iter' | 'seconds'): Series[] => exp.runs.map((run, i) => ({ label: run.label, points: curves[i].map((c) => [c[x], c.total] as const) }));
  const iterSpec = { title: `${exp.title}: loss against iterations`, xLabel: 'iteration', yLabel: 'total loss (log)', series: series('iter') };
  const timeSpec = { title: `${exp.title}: loss against time`, xLabel: 'seconds', yLabel: 'total loss (log)', series: series('seconds') };
  writeAtomic(join(dir, EXPERIMENT_FILES.iterSvg), plotSvg(iterSpec));
  writeAtomic(join(dir, EXPERIMENT_FILES.iterPng), plotPng(iterSpec));
  writeAtomic(join(dir, EXPERIMENT_FILES.timeSvg), plotSvg(timeSpec));
  writeAtomic(join(dir, EXPERIMENT_FILES.timePng), plotPng(timeSpec));
}
