// `painterly tune` and the tuning part of `painterly info`: tables of the autotuner's measurements and choices.
import type { TuneRecord, TuneRow } from '../gpu/tune.ts';

/** Rows as a table: kernel, shape, class, GFLOP/s of each variant (the chosen one starred). Fixed widths when given. */
export function formatTuneRows(rows: TuneRow[], width?: number): string {
  const lines = [['kernel', 'shape', 'shape class', 'GFLOP/s per variant (* = chosen)']];
  for (const r of rows) {
    const v = Object.entries(r.gflops).map(([id, g]) => `${id} ${g.toFixed(1)}${id === r.winner ? '*' : ''}`).join('  ');
    lines.push([r.kernel, r.label, r.shapeClass, v]);
  }
  const w = [0, 1, 2].map((i) => Math.max(width === undefined ? 0 : [6, width, 22][i], ...lines.map((l) => l[i].length)));
  return lines.map((l) => l.map((c, i) => (i < 3 ? c.padEnd(w[i]) : c)).join('  ')).join('\n');
}

/** Stored choices (kernel|class -> record) as lines for `painterly info`. */
export function formatChoices(entries: Record<string, TuneRecord>): string[] {
  const keys = Object.keys(entries).sort();
  if (keys.length === 0) return ['  (none yet: measured at first use, or run `painterly tune`)'];
  const w = Math.max(...keys.map((k) => k.length));
  return keys.map((k) => {
    const r = entries[k];
    const ms = Object.entries(r.ms).map(([id, t]) => `${id} ${t.toFixed(2)}`).join(', ');
    return `  ${k.padEnd(w)}  ${r.variant.padEnd(12)} (ms: ${ms}; ${r.date.slice(0, 10)})`;
  });
}
