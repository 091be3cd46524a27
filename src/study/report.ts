// index.html for a study: settings, weights, adapter and timings, then per experiment its contact sheet, loss plots
// and a table of runs. Static, relative links only, no scripts or network: it opens offline from the folder.
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Experiment, Overrides } from './experiments.ts';
import { EXPERIMENT_FILES, RUN_DONE, RUN_IMAGE, RUN_LOG, type RunRecord } from './run.ts';

export interface ReportData {
  experiments: Experiment[];
  records: Map<string, (RunRecord | undefined)[]>;
  adapter: string;
  weights: string[];
  /** Options given for every run, and the full resolved base settings. */
  base: Overrides;
  baseSettings: Record<string, unknown>;
  styleCount: number;
  /** Wall time of this invocation (skipped runs cost nothing). */
  seconds: number;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (v: unknown): string => {
  if (typeof v === 'number') return Number.isInteger(v) || (Math.abs(v) >= 1e-3 && Math.abs(v) < 1e5) ? String(+v.toPrecision(6)) : v.toExponential(3);
  if (Array.isArray(v)) return v.map(fmt).join(', ');
  return String(v);
};
const secs = (s: number) => (s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`);
const href = (...parts: string[]) => parts.map(encodeURIComponent).join('/');

/** The page's HTML. */
export function reportHtml(d: ReportData): string {
  const all = [...d.records.values()].flat().filter((r): r is RunRecord => !!r);
  const totalRuns = d.experiments.reduce((n, e) => n + e.runs.length, 0);
  const runSeconds = all.filter((r) => !r.sameAs).reduce((s, r) => s + r.wallSeconds, 0);
  const adapters = [...new Set(all.map((r) => r.adapter))];
  const pretrained = d.weights.every((w) => !/random|NOT pretrained/i.test(w));
  const o: string[] = [];
  o.push('<!doctype html>', '<html lang="en"><head><meta charset="utf-8">', '<title>Painterly study</title>',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<style>
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}
h1{margin-bottom:.2em} h2{margin-top:2em;border-bottom:1px solid #ddd} img{max-width:100%;height:auto}
table{border-collapse:collapse;font-size:13px;margin:.5em 0} td,th{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f5f5f5} .warn{background:#fff4d6;border:1px solid #e6c35c;padding:.6em 1em} .refs img{height:160px;margin-right:8px}
.plots{display:flex;flex-wrap:wrap;gap:8px} .plots img{width:540px} code{font-size:13px} .muted{color:#777}
</style></head><body>`);
  o.push('<h1>Painterly study</h1>');
  o.push(`<p>${all.length} of ${totalRuns} runs finished, ${d.experiments.length} experiment${d.experiments.length === 1 ? '' : 's'}. ` +
    `Each experiment sweeps one factor; every other setting is the base below.</p>`);
  if (!pretrained) {
    o.push(`<p class="warn"><b>Not pretrained weights:</b> ${esc(d.weights.join(', '))}. The pictures show the machinery, not what the method does; ` +
      'rerun with <code>--weights pretrained</code> for meaningful results.</p>');
  }
  o.push('<table>');
  o.push(`<tr><th>adapter</th><td>${esc(adapters.length ? adapters.join('; ') : d.adapter)}</td></tr>`);
  o.push(`<tr><th>weights</th><td>${esc(d.weights.join(', ') || '(no run finished)')}</td></tr>`);
  o.push(`<tr><th>time</th><td>${secs(runSeconds)} in runs (wall time per run summed over finished runs); this invocation took ${secs(d.seconds)}</td></tr>`);
  o.push(`<tr><th>determinism</th><td>runs with the same settings and seed give the same image on the same adapter</td></tr>`);
  o.push('</table>');
  o.push('<div class="refs"><img src="inputs/content.png" alt="content">' +
    Array.from({ length: d.styleCount }, (_, i) => `<img src="inputs/style-${i + 1}.png" alt="style ${i + 1}">`).join('') + '</div>');
  o.push('<h2>Base settings</h2><table>');
  for (const [k, v] of Object.entries(d.baseSettings)) {
    const given = Object.prototype.hasOwnProperty.call(d.base, k);
    o.push(`<tr><th>${esc(k)}</th><td>${esc(fmt(v))}${given ? '' : ' <span class="muted">(default)</span>'}</td></tr>`);
  }
  o.push('</table>');

  for (const e of d.experiments) {
    const recs = d.records.get(e.name) ?? [];
    o.push(`<h2 id="${esc(e.name)}">${esc(e.title)}</h2>`);
    if (e.about) o.push(`<p>${esc(e.about)}</p>`);
    o.push(`<p><img src="${href(e.name, EXPERIMENT_FILES.sheet)}" alt="${esc(e.title)}: contact sheet"></p>`);
    o.push('<div class="plots">' +
      `<img src="${href(e.name, EXPERIMENT_FILES.iterSvg)}" alt="${esc(e.title)}: loss against iterations">` +
      `<img src="${href(e.name, EXPERIMENT_FILES.timeSvg)}" alt="${esc(e.title)}: loss against seconds"></div>`);
    o.push('<table><tr><th>run</th><th>image</th><th>changed settings</th><th>content</th><th>style</th><th>tv</th><th>total</th>' +
      '<th>iterations</th><th>stopped</th><th>optimising</th><th>wall</th><th>files</th></tr>');
    e.runs.forEach((run, i) => {
      const r = recs[i];
      const changes = Object.entries(run.overrides).map(([k, v]) => `${k}=${fmt(v)}`).join('; ') || '(base)';
      const img = href(e.name, run.id, RUN_IMAGE);
      if (!r) {
        o.push(`<tr><td>${esc(run.label)}</td><td class="muted">not run</td><td>${esc(changes)}</td><td colspan="9"></td></tr>`);
        return;
      }
      const t = r.terms;
      o.push(`<tr><td>${esc(run.label)}</td><td><a href="${img}"><img src="${img}" alt="${esc(run.label)}" style="width:96px"></a></td>` +
        `<td>${esc(changes)}</td><td>${t ? fmt(t.content) : ''}</td><td>${t ? fmt(t.style) : ''}</td><td>${t ? fmt(t.tv) : ''}</td><td>${t ? fmt(t.total) : ''}</td>` +
        `<td>${r.iterations}</td><td>${esc(r.stopped)}${r.message ? `: ${esc(r.message)}` : ''}${r.sameAs ? ` (same settings as ${esc(r.sameAs)}: copied)` : ''}</td><td>${secs(r.seconds)}</td><td>${secs(r.wallSeconds)}</td>` +
        `<td><a href="${href(e.name, run.id, RUN_LOG)}">log</a> <a href="${href(e.name, run.id, RUN_DONE)}">settings</a></td></tr>`);
    });
    o.push('</table>');
    o.push(`<p class="muted">Loss plots also as PNG: <a href="${href(e.name, EXPERIMENT_FILES.iterPng)}">iterations</a>, ` +
      `<a href="${href(e.name, EXPERIMENT_FILES.timePng)}">seconds</a>.</p>`);
  }
  o.push(`<p class="muted">Written by <code>painterly study</code> at ${new Date().toISOString()}.</p>`, '</body></html>');
  return o.join('\n') + '\n';
}

/** Writes index.html (atomically) into the study folder. */
export function writeReport(out: string, d: ReportData): void {
  const tmp = join(out, `.index.html.${process.pid}.tmp`);
  writeFileSync(tmp, reportHtml(d));
  renameSync(tmp, join(out, 'index.html'));
}
