// Benchmark helpers: time bound Steps on the GPU (submit + onSubmittedWorkDone, median of several runs after an
// untimed warm-up that also compiles the pipelines), and format tables.
import type { Gpu } from '../src/gpu/device.ts';
import { submitTimed, type Step } from '../src/gpu/kernel.ts';

export interface Timing {
  /** Median seconds per execution of the steps. */
  median: number;
  min: number;
  runs: number;
  /** Executions of the steps per timed submit (short kernels are repeated to dwarf the submit overhead). */
  reps: number;
}


/**
 * Times `steps`: one untimed warm-up, then `runs` timed submits; kernels under `minSeconds` per execution are
 * repeated inside one submit so that each sample lasts at least about that long.
 */
export async function timeSteps(gpu: Gpu, steps: Step[], opts: { runs?: number; minSeconds?: number } = {}): Promise<Timing> {
  const runs = opts.runs ?? 5;
  const minSeconds = opts.minSeconds ?? 0.05;
  const first = await submitTimed(gpu, steps, 1); // warm-up (pipeline compilation, first touch of buffers)
  const again = await submitTimed(gpu, steps, 1);
  const reps = Math.max(1, Math.min(50, Math.ceil(minSeconds / Math.max(Math.min(first, again), 1e-6))));
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) samples.push((await submitTimed(gpu, steps, reps)) / reps);
  samples.sort((a, b) => a - b);
  return { median: samples[Math.floor(samples.length / 2)], min: samples[0], runs, reps };
}

/** Deterministic data in [-0.5, 0.5) for benchmark inputs (the values do not matter, only that they are fixed). */
export function rand(n: number): Float32Array {
  const a = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) { s = (Math.imul(s, 1103515245) + 12345) >>> 0; a[i] = (s / 2 ** 32) - 0.5; }
  return a;
}

export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map((r) => line(r.map(String)))].join('\n');
}
