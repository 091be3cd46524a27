// Loss curves as a line chart with a log10 y axis, drawn twice from one layout: as SVG (for the page) and as a PNG
// raster (for READMEs and anywhere a picture is embedded). One <polyline> per series in the SVG, nothing else uses
// polylines, so a reader (or a test) can count the curves.
import { createCanvas, drawPolyline, drawText, drawTextUp, encodeCanvasPng, fillRect, type Rgb } from './canvas.ts';
import { textWidth } from './font.ts';

export interface Series {
  label: string;
  /** (x, y) points; y <= 0 and non-finite points are dropped (log axis). */
  points: readonly (readonly [number, number])[];
}

export interface PlotSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  width?: number;
  height?: number;
}

/** Tableau 10: distinct on white, readable by most colour-blind viewers. */
export const PALETTE: readonly Rgb[] = [
  [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
  [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207],
];

const hex = (c: Rgb) => `#${c.map((v) => Math.round(v).toString(16).padStart(2, '0')).join('')}`;

interface Layout {
  W: number; H: number;
  left: number; right: number; top: number; bottom: number;
  /** Plot-area pixel coordinates of each series' kept points. */
  paths: [number, number][][];
  xTicks: { px: number; label: string }[];
  yTicks: { py: number; label: string }[];
  legend: string[];
}

/** 1, 2 or 5 times a power of ten, about `n` steps over [0, max]. */
function niceStep(max: number, n: number): number {
  const raw = max / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

function fmtX(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toPrecision(3).replace(/\.?0+$/, '');
}

function layout(spec: PlotSpec): Layout {
  const W = spec.width ?? 640, H = spec.height ?? 400;
  const legend = spec.series.map((s) => s.label);
  const legendW = Math.min(220, Math.max(60, ...legend.map((l) => textWidth(l) + 30)));
  const left = 62, right = W - legendW - 12, top = 30, bottom = H - 40;
  const kept = spec.series.map((s) => s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && y > 0));
  const all = kept.flat();
  const xMax = all.length ? Math.max(...all.map((p) => p[0])) : 1;
  const xMin = all.length ? Math.min(0, ...all.map((p) => p[0])) : 0;
  const xSpan = xMax > xMin ? xMax - xMin : 1;
  let lo = all.length ? Math.floor(Math.log10(Math.min(...all.map((p) => p[1])))) : 0;
  let hi = all.length ? Math.ceil(Math.log10(Math.max(...all.map((p) => p[1])))) : 1;
  // A diverging run (SGD with too large a step) would flatten the others: the axis stops 3 decades above the
  // highest starting loss and such curves leave through the top edge.
  const starts = kept.filter((p) => p.length).map((p) => p[0][1]);
  if (starts.length) hi = Math.min(hi, Math.ceil(Math.log10(Math.max(...starts))) + 3);
  if (hi <= lo) hi = lo + 1;
  const X = (x: number) => left + ((x - xMin) / xSpan) * (right - left);
  const Y = (y: number) => bottom - ((Math.log10(y) - lo) / (hi - lo)) * (bottom - top);
  const xStep = niceStep(xSpan, 6);
  const xTicks = [];
  for (let v = Math.ceil(xMin / xStep) * xStep; v <= xMax + 1e-9 * xSpan; v += xStep) xTicks.push({ px: X(v), label: fmtX(+v.toPrecision(12)) });
  const every = Math.ceil((hi - lo) / 8);
  const yTicks = [];
  for (let e = lo; e <= hi; e += every) yTicks.push({ py: Y(10 ** e), label: `1e${e}` });
  const paths = kept.map((pts) => pts.map(([x, y]) => [X(x), Math.max(top, Y(y))] as [number, number]));
  return { W, H, left, right, top, bottom, paths, xTicks, yTicks, legend };
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const r1 = (v: number) => Math.round(v * 10) / 10;

/** The chart as a standalone SVG document. */
export function plotSvg(spec: PlotSpec): string {
  const L = layout(spec);
  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${L.W}" height="${L.H}" viewBox="0 0 ${L.W} ${L.H}" font-family="sans-serif" font-size="11">`);
  o.push(`<rect width="${L.W}" height="${L.H}" fill="#fff"/>`);
  o.push(`<text x="${L.W / 2}" y="18" text-anchor="middle" font-size="13">${esc(spec.title)}</text>`);
  for (const t of L.yTicks) {
    o.push(`<line x1="${L.left}" x2="${L.right}" y1="${r1(t.py)}" y2="${r1(t.py)}" stroke="#e4e4e4"/>`);
    o.push(`<text x="${L.left - 5}" y="${r1(t.py + 4)}" text-anchor="end">${t.label}</text>`);
  }
  for (const t of L.xTicks) {
    o.push(`<line x1="${r1(t.px)}" x2="${r1(t.px)}" y1="${L.bottom}" y2="${L.bottom + 4}" stroke="#444"/>`);
    o.push(`<text x="${r1(t.px)}" y="${L.bottom + 16}" text-anchor="middle">${t.label}</text>`);
  }
  o.push(`<rect x="${L.left}" y="${L.top}" width="${L.right - L.left}" height="${L.bottom - L.top}" fill="none" stroke="#444"/>`);
  o.push(`<text x="${(L.left + L.right) / 2}" y="${L.H - 6}" text-anchor="middle">${esc(spec.xLabel)}</text>`);
  o.push(`<text transform="translate(14 ${(L.top + L.bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(spec.yLabel)}</text>`);
  L.paths.forEach((p, i) => {
    const c = hex(PALETTE[i % PALETTE.length]);
    o.push(`<polyline fill="none" stroke="${c}" stroke-width="2" stroke-linejoin="round" points="${p.map(([x, y]) => `${r1(x)},${r1(y)}`).join(' ')}"><title>${esc(L.legend[i])}</title></polyline>`);
    const ly = L.top + 8 + 16 * i;
    o.push(`<line x1="${L.right + 12}" x2="${L.right + 30}" y1="${ly}" y2="${ly}" stroke="${c}" stroke-width="3"/>`);
    o.push(`<text x="${L.right + 35}" y="${ly + 4}">${esc(L.legend[i])}${p.length ? '' : ' (no data)'}</text>`);
  });
  o.push('</svg>');
  return o.join('\n') + '\n';
}

/** The same chart rasterised: PNG bytes. */
export function plotPng(spec: PlotSpec): Uint8Array {
  const L = layout(spec);
  const c = createCanvas(L.W, L.H);
  const ink: Rgb = [40, 40, 40], grid: Rgb = [228, 228, 228];
  drawText(c, spec.title, (L.W - textWidth(spec.title)) / 2, 8, ink);
  for (const t of L.yTicks) {
    fillRect(c, L.left, Math.round(t.py), L.right - L.left, 1, grid);
    drawText(c, t.label, L.left - 5 - textWidth(t.label), Math.round(t.py) - 3, ink);
  }
  for (const t of L.xTicks) {
    fillRect(c, Math.round(t.px), L.bottom, 1, 4, ink);
    drawText(c, t.label, Math.round(t.px) - textWidth(t.label) / 2, L.bottom + 8, ink);
  }
  fillRect(c, L.left, L.top, L.right - L.left + 1, 1, ink);
  fillRect(c, L.left, L.bottom, L.right - L.left + 1, 1, ink);
  fillRect(c, L.left, L.top, 1, L.bottom - L.top, ink);
  fillRect(c, L.right, L.top, 1, L.bottom - L.top, ink);
  drawText(c, spec.xLabel, (L.left + L.right - textWidth(spec.xLabel)) / 2, L.H - 14, ink);
  drawTextUp(c, spec.yLabel, 8, (L.top + L.bottom + textWidth(spec.yLabel)) / 2, ink);
  L.paths.forEach((p, i) => {
    const col = PALETTE[i % PALETTE.length];
    drawPolyline(c, p, col, 2);
    const ly = L.top + 8 + 16 * i;
    fillRect(c, L.right + 12, ly - 1, 18, 3, col);
    drawText(c, L.legend[i] + (p.length ? '' : ' (no data)'), L.right + 35, ly - 3, ink);
  });
  return encodeCanvasPng(c);
}
