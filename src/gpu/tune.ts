// Per-adapter kernel autotuning, like cuDNN's benchmark mode. A hot kernel declares a few variants (workgroup shape,
// blocking, shared-memory tiling), every one valid for every input the op accepts; the first time a (kernel, shape
// class) is used on an adapter, Painterly times the variants once and keeps the fastest, per adapter and driver, in
// a store (Node: <cache folder>/tuning.json; browsers: IndexedDB), so later runs pick it without measuring.
//
//   ops:      tunedSteps(gpu, tunable, dims, (variant) => steps)    builds with the chosen (or default) variant
//   planners: await settleTuning(gpu)                                measures what was used untuned, rebuilds those
//                                                                    steps in place with the winners, saves
//   CLI:      tuneStandard(gpu, tunables)                            `painterly tune`: measure the standard shapes
//
// Modes: 'off' (the default when nothing configured the Gpu, and under PAINTERLY_TUNE=off): every op uses its
// first variant, deterministic, nothing measured or read; 'cached': choices from the store, nothing measured;
// 'on': cached choices, and settleTuning measures the rest. `fixed` forces a variant per kernel (tests prove every
// variant against the float64 reference this way). Choices are keyed by kernel, shape class and a hash of the
// kernel's source, so an edited shader is measured again rather than trusted.
import { PainterlyError, type Gpu } from './device.ts';
import { submitTimed, type Step } from './kernel.ts';
import type { WeightStore } from '../weights/store.ts';

export type TuneMode = 'off' | 'cached' | 'on';

export interface Variant {
  id: string;
  /** One line for tables: what the variant does (e.g. "8 rows x 64 columns per workgroup of 16, no shared memory"). */
  note: string;
}

export interface Tunable<D> {
  /** Kernel name, e.g. 'matmul'. */
  name: string;
  /** Text of the kernel's sources (and anything else that should invalidate cached choices when it changes). */
  source: string;
  /** The first variant that applies to a shape is its deterministic default (used when tuning is off or a shape was
   * not measured yet). */
  variants: Variant[];
  /** The bucket of dims that share one choice, e.g. "m4096.n128.k128.b36". */
  shapeClass(d: D): string;
  /** Whether a variant may run these dims on this GPU (e.g. workgroup memory limits); all when absent. */
  applies?(gpu: Gpu, d: D, variant: string): boolean;
  /** A self-contained run of one variant at dims d on fresh buffers, for timing. */
  bench(gpu: Gpu, d: D, variant: string): { steps: Step[]; destroy(): void };
  /** Work of one run, for tables: FLOPs counted as the op's full product. */
  flops(d: D): number;
  /** The shapes `painterly tune` measures. */
  standard: { label: string; dims: D }[];
}

export interface TuneRecord {
  variant: string;
  /** Hash of the kernel source the choice was measured with. */
  source: string;
  /** Milliseconds per run of each variant measured (best of the samples). */
  ms: Record<string, number>;
  /** The dims it was measured at (a representative of the shape class). */
  dims: unknown;
  date: string;
}

/** The stored file: adapter key -> "kernel|shape class" -> record. */
export interface TuneFile {
  version: 1;
  adapters: Record<string, { entries: Record<string, TuneRecord> }>;
}

export interface TuneOptions {
  mode?: TuneMode;
  /** Where choices persist (Node: a DirStore on the cache folder; browsers: IdbStore); none: this process only. */
  store?: WeightStore;
  /** Forced variant per kernel name (wins over mode and cache). */
  fixed?: Record<string, string>;
  /** Messages (e.g. "tuning matmul m4096.n64.k64.b36: …"). */
  onMessage?: (m: string) => void;
}

/** The store entry holding the choices. */
export const TUNE_ENTRY = 'tuning.json';

/** A variant must be this much faster than the default to replace it (keeps choices stable under timing noise). */
const MARGIN = 0.05;

interface Pending { tunable: Tunable<unknown>; dims: unknown; rebuild: { steps: WeakRef<Step>[]; build: (v: string) => Step[] }[] }

interface Tuner {
  mode: TuneMode;
  store?: WeightStore;
  fixed: Record<string, string>;
  adapter: string;
  entries: Record<string, TuneRecord>;
  pending: Map<string, Pending>;
  onMessage?: (m: string) => void;
}

const tuners = new WeakMap<Gpu, Tuner>();

/** The adapter and its driver, as the cache key: vendor | architecture | device | description (driver) | backend. */
export function adapterKey(gpu: Gpu): string {
  const i = gpu.info;
  return [i.vendor, i.architecture, i.device, i.description, i.backend].join(' | ');
}

/** FNV-1a of a string, hex (short, stable, no crypto dependency in browsers). */
export function sourceHash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193) >>> 0; }
  return h.toString(16).padStart(8, '0');
}

/** PAINTERLY_TUNE (off | cached | on) where a process environment exists; undefined otherwise. */
export function tuneModeFromEnv(): TuneMode | undefined {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const v = env?.PAINTERLY_TUNE;
  if (v === undefined || v === '') return undefined;
  if (v === 'off' || v === 'cached' || v === 'on') return v;
  throw new PainterlyError(`PAINTERLY_TUNE: expected off, cached or on, got ${JSON.stringify(v)}`);
}

function tunerOf(gpu: Gpu): Tuner {
  let t = tuners.get(gpu);
  if (!t) {
    t = { mode: 'off', fixed: {}, adapter: adapterKey(gpu), entries: {}, pending: new Map() };
    tuners.set(gpu, t);
  }
  return t;
}

export async function readTuneFile(store: WeightStore): Promise<TuneFile> {
  const bytes = await store.get(TUNE_ENTRY);
  if (!bytes) return { version: 1, adapters: {} };
  try {
    const f = JSON.parse(new TextDecoder().decode(bytes)) as TuneFile;
    if (f?.version === 1 && f.adapters && typeof f.adapters === 'object') return f;
  } catch { /* a damaged file is replaced by the next save */ }
  return { version: 1, adapters: {} };
}

/**
 * Sets how `gpu` picks kernel variants and loads this adapter's stored choices. The mode: `opts.mode`, else
 * PAINTERLY_TUNE, else 'on'. Unconfigured Gpus run with tuning off.
 */
export async function configureTuning(gpu: Gpu, opts: TuneOptions = {}): Promise<void> {
  const t = tunerOf(gpu);
  t.mode = opts.mode ?? tuneModeFromEnv() ?? 'on';
  t.store = opts.store;
  t.fixed = { ...(opts.fixed ?? {}) };
  t.onMessage = opts.onMessage;
  t.entries = {};
  if (t.mode !== 'off' && t.store) {
    try {
      t.entries = { ...((await readTuneFile(t.store)).adapters[t.adapter]?.entries ?? {}) };
    } catch (e) {
      t.onMessage?.(`kernel tuning: cannot read ${t.store.where(TUNE_ENTRY)} (${(e as Error).message}); measuring afresh`);
    }
  }
}

/** Forces (or with undefined, releases) a variant of one kernel on this Gpu: for tests and users who know best. */
export function fixVariant(gpu: Gpu, kernel: string, variant: string | undefined): void {
  const t = tunerOf(gpu);
  if (variant === undefined) delete t.fixed[kernel]; else t.fixed[kernel] = variant;
}

export function tuneMode(gpu: Gpu): TuneMode { return tunerOf(gpu).mode; }

const keyOf = (t: Tunable<unknown>, cls: string) => `${t.name}|${cls}`;

function applicable<D>(gpu: Gpu, t: Tunable<D>, d: D): string[] {
  return t.variants.map((v) => v.id).filter((id) => t.applies?.(gpu, d, id) ?? true);
}

/** The variant `gpu` uses for dims `d` now (no measuring). */
export function chooseVariant<D>(gpu: Gpu, t: Tunable<D>, d: D): string {
  const tu = tunerOf(gpu);
  const ok = applicable(gpu, t, d);
  if (ok.length === 0) throw new PainterlyError(`${t.name}: no variant applies to ${t.shapeClass(d)}`);
  const fixed = tu.fixed[t.name];
  if (fixed !== undefined) {
    if (!t.variants.some((v) => v.id === fixed)) {
      throw new PainterlyError(`${t.name}: unknown variant "${fixed}"; expected one of ${t.variants.map((v) => v.id).join(', ')}`);
    }
    if (ok.includes(fixed)) return fixed;
  }
  if (tu.mode === 'off') return ok[0];
  const rec = tu.entries[keyOf(t as Tunable<unknown>, t.shapeClass(d))];
  if (rec && rec.source === sourceHash(t.source) && ok.includes(rec.variant)) return rec.variant;
  return ok[0];
}

/**
 * Builds an op's steps with the variant chosen for `d`. Under mode 'on', a shape class not measured yet is built
 * with the default and remembered: settleTuning measures it and rebuilds these steps in place (same Step objects,
 * so lists that hold them see the winner). `build` must return the same number of steps for every variant, and
 * their uniforms must not be rewritten later with setUniforms (a rebuild starts from `build`'s values).
 */
export function tunedSteps<D>(gpu: Gpu, t: Tunable<D>, d: D, build: (variant: string) => Step[]): Step[] {
  const steps = build(chooseVariant(gpu, t, d));
  const tu = tunerOf(gpu);
  if (tu.mode !== 'on' || tu.fixed[t.name] !== undefined) return steps;
  const key = keyOf(t as Tunable<unknown>, t.shapeClass(d));
  const rec = tu.entries[key];
  if (rec && rec.source === sourceHash(t.source)) return steps;
  let p = tu.pending.get(key);
  if (!p) { p = { tunable: t as Tunable<unknown>, dims: d, rebuild: [] }; tu.pending.set(key, p); }
  p.rebuild.push({ steps: steps.map((s) => new WeakRef(s)), build: build as (v: string) => Step[] });
  return steps;
}

/** The power of two at or above x, capped: how tunables bucket a dimension into shape classes. */
export function shapeBucket(x: number, cap: number): number {
  return Math.min(cap, 2 ** Math.ceil(Math.log2(Math.max(1, x))));
}

export interface Measured { variant: string; ms: number }

/**
 * Times each applicable variant at dims `d`: an untimed warm-up each (pipelines are compiled at first dispatch on
 * some drivers), then `samples` rounds that time every variant once in turn (interleaved, so a burst of other load
 * hits all variants alike), each sample a submit of enough repetitions to last about `sampleSeconds`; the best
 * sample counts. A variant more than 4x slower than the best after its warm-up is not sampled further.
 */
export async function measureVariants<D>(
  gpu: Gpu, t: Tunable<D>, d: D, opts: { samples?: number; sampleSeconds?: number; variants?: string[] } = {},
): Promise<Measured[]> {
  const samples = opts.samples ?? 3;
  const sampleSeconds = opts.sampleSeconds ?? 0.02;
  const runs: { variant: string; steps: Step[]; destroy(): void; best: number; reps: number }[] = [];
  try {
    for (const variant of opts.variants ?? applicable(gpu, t, d)) {
      const b = t.bench(gpu, d, variant);
      runs.push({ variant, ...b, best: Infinity, reps: 1 });
      await submitTimed(gpu, b.steps, 1); // warm-up: compile, first touch
      const once = await submitTimed(gpu, b.steps, 1);
      runs.at(-1)!.best = once;
      runs.at(-1)!.reps = Math.max(1, Math.min(100, Math.ceil(sampleSeconds / Math.max(once, 1e-6))));
    }
    const first = Math.min(...runs.map((r) => r.best));
    for (let i = 0; i < samples; i++) {
      for (const r of runs) {
        if (r.best > 4 * first) continue;
        r.best = Math.min(r.best, (await submitTimed(gpu, r.steps, r.reps)) / r.reps);
      }
    }
  } finally {
    for (const r of runs) r.destroy();
  }
  return runs.map((r) => ({ variant: r.variant, ms: r.best * 1e3 }));
}

/** The winner of a measurement: the default (first) unless another is more than MARGIN faster. */
export function pickWinner(m: Measured[]): string {
  let win = m[0];
  for (const x of m) if (x.ms < win.ms) win = x;
  return win.ms < m[0].ms * (1 - MARGIN) ? win.variant : m[0].variant;
}

function record<D>(t: Tunable<D>, d: D, m: Measured[]): TuneRecord {
  return {
    variant: pickWinner(m), source: sourceHash(t.source), ms: Object.fromEntries(m.map((x) => [x.variant, +x.ms.toFixed(4)])),
    dims: d, date: new Date().toISOString(),
  };
}

/** Merges this adapter's entries into the store (read, merge, atomic put): other adapters' entries are kept. */
async function save(tu: Tuner): Promise<void> {
  if (!tu.store) return;
  try {
    const f = await readTuneFile(tu.store);
    const mine = (f.adapters[tu.adapter] ??= { entries: {} });
    Object.assign(mine.entries, tu.entries);
    await tu.store.put(TUNE_ENTRY, new TextEncoder().encode(JSON.stringify(f, null, 1) + '\n'));
  } catch (e) {
    tu.onMessage?.(`kernel tuning: cannot save ${tu.store.where(TUNE_ENTRY)} (${(e as Error).message}); the choices last for this run`);
  }
}

/**
 * Measures every shape class used untuned since the last call (mode 'on'), stores the winners and rebuilds the
 * steps that were built with the default. Call it after building a plan and before running it, with no other GPU
 * work in flight (the timings would include it). Returns the number of shape classes measured.
 */
export async function settleTuning(gpu: Gpu): Promise<number> {
  const tu = tunerOf(gpu);
  if (tu.mode !== 'on' || tu.pending.size === 0) return 0;
  const pending = [...tu.pending.entries()];
  tu.pending.clear();
  for (const [key, p] of pending) {
    const m = await measureVariants(gpu, p.tunable, p.dims);
    const rec = record(p.tunable, p.dims, m);
    tu.entries[key] = rec;
    tu.onMessage?.(`tuned ${key}: ${rec.variant} (${m.map((x) => `${x.variant} ${x.ms.toFixed(2)} ms`).join(', ')})`);
    const def = applicable(gpu, p.tunable, p.dims)[0];
    if (rec.variant === def) continue;
    for (const r of p.rebuild) {
      const old = r.steps.map((w) => w.deref());
      if (old.some((s) => s === undefined)) continue; // the plan is gone
      const fresh = r.build(rec.variant);
      if (fresh.length !== old.length) throw new PainterlyError(`${p.tunable.name}: variant ${rec.variant} built ${fresh.length} steps, default ${old.length}`);
      fresh.forEach((s, i) => Object.assign(old[i]!, s));
    }
  }
  await save(tu);
  return pending.length;
}

export interface TuneRow { kernel: string; label: string; shapeClass: string; gflops: Record<string, number>; ms: Record<string, number>; winner: string }

/**
 * `painterly tune`: measures every variant of every tunable at its standard shapes (whatever the cache says),
 * stores the winners for this adapter and returns the table.
 */
export async function tuneStandard(gpu: Gpu, tunables: Tunable<unknown>[], opts: { filter?: string; onRow?: (r: TuneRow) => void } = {}): Promise<TuneRow[]> {
  const tu = tunerOf(gpu);
  const rows: TuneRow[] = [];
  for (const t of tunables) {
    if (opts.filter && !t.name.includes(opts.filter)) continue;
    for (const { label, dims } of t.standard) {
      const m = await measureVariants(gpu, t, dims, { samples: 3, sampleSeconds: 0.05 });
      const rec = record(t, dims, m);
      tu.entries[keyOf(t, t.shapeClass(dims))] = rec;
      const row: TuneRow = {
        kernel: t.name, label, shapeClass: t.shapeClass(dims), winner: rec.variant,
        ms: Object.fromEntries(m.map((x) => [x.variant, x.ms])),
        gflops: Object.fromEntries(m.map((x) => [x.variant, t.flops(dims) / (x.ms / 1e3) / 1e9])),
      };
      rows.push(row);
      opts.onRow?.(row);
    }
  }
  await save(tu);
  return rows;
}

/** This adapter's stored choices (for `painterly info`), valid ones only when `tunables` is given. */
export function tuneChoices(gpu: Gpu): Record<string, TuneRecord> {
  return { ...tunerOf(gpu).entries };
}
