// The study's CPU parts: font, raster, plots, contact sheets, loss curves, experiments and argument parsing.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseStudyArgs } from '../../src/cli/study.ts';
import { PainterlyError } from '../../src/gpu/device.ts';
import { decodeImage } from '../../src/image/codec.ts';
import { DEFAULT_LR, resolveStylizeOptions } from '../../src/style/options.ts';
import { createCanvas, drawPolyline, drawText, encodeCanvasPng } from '../../src/study/canvas.ts';
import { builtinExperiment, EXPERIMENT_NAMES, parseExperimentList, parseStudyConfig, RATIO_DECADES } from '../../src/study/experiments.ts';
import { glyphPixel, textWidth } from '../../src/study/font.ts';
import { plotPng, plotSvg } from '../../src/study/plot.ts';
import { lossCurve } from '../../src/study/run.ts';
import { contactSheet, wrapLabel } from '../../src/study/sheet.ts';
import { nextSeed, rng } from '../helpers.ts';

const test = suite('study pictures');

const px = (c: { width: number; data: Uint8ClampedArray }, x: number, y: number) => [...c.data.subarray(4 * (y * c.width + x), 4 * (y * c.width + x) + 3)];

function throwsPainterly(fn: () => unknown, pattern: RegExp) {
  try { fn(); } catch (e) {
    assert.instance(e, PainterlyError, String(e));
    assert.not.match((e as Error).message, /\n/);
    assert.match((e as Error).message, pattern, (e as Error).message);
    return;
  }
  assert.unreachable(`no error matching ${pattern}`);
}

test('font: every printable glyph is distinct and non-empty (except space); unknown characters draw as ?', () => {
  const seen = new Map<string, string>();
  for (let code = 33; code <= 126; code++) {
    const ch = String.fromCharCode(code);
    let bits = '';
    for (let col = 0; col < 5; col++) for (let row = 0; row < 7; row++) bits += glyphPixel(ch, col, row) ? '1' : '0';
    assert.ok(bits.includes('1'), `glyph ${ch} is blank`);
    assert.not.ok(seen.has(bits), `glyphs ${seen.get(bits)} and ${ch} are identical`);
    seen.set(bits, ch);
  }
  for (let col = 0; col < 5; col++) for (let row = 0; row < 7; row++) {
    assert.is(glyphPixel('é', col, row), glyphPixel('?', col, row));
    assert.not.ok(glyphPixel(' ', col, row));
  }
  // 'T': full top row, centre column down; 'L': left column and bottom row.
  for (let col = 0; col < 5; col++) { assert.ok(glyphPixel('T', col, 0)); assert.ok(glyphPixel('L', col, 6)); }
  for (let row = 0; row < 7; row++) { assert.ok(glyphPixel('T', 2, row)); assert.ok(glyphPixel('L', 0, row)); }
});

test('drawText puts ink exactly where the glyphs are, at any scale', () => {
  for (const scale of [1, 3]) {
    const c = createCanvas(60, 30);
    const w = drawText(c, 'Hi', 2, 3, [0, 0, 0], scale);
    assert.is(w, textWidth('Hi', scale));
    assert.is(w, 11 * scale);
    for (let y = 0; y < 30; y++) for (let x = 0; x < 60; x++) {
      const fx = Math.floor((x - 2) / scale), fy = Math.floor((y - 3) / scale);
      const k = Math.floor(fx / 6), col = fx % 6;
      const ink = x >= 2 && y >= 3 && fy < 7 && k >= 0 && k < 2 && col < 5 && glyphPixel('Hi'[k], col, fy);
      assert.equal(px(c, x, y), ink ? [0, 0, 0] : [255, 255, 255], `scale ${scale} pixel ${x},${y}`);
    }
  }
});

test('drawPolyline: covers the segment at its width, nothing far from it; endpoints are round', () => {
  const c = createCanvas(40, 20);
  drawPolyline(c, [[5, 10], [35, 10]], [0, 0, 0], 2);
  for (let x = 6; x < 34; x++) {
    assert.equal(px(c, x, 9), [0, 0, 0], `x=${x} row 9`); // pixel centres 9.5 and 10.5 are within 0.5 of the line
    assert.equal(px(c, x, 10), [0, 0, 0]);
    assert.equal(px(c, x, 12), [255, 255, 255]);
    assert.equal(px(c, x, 7), [255, 255, 255]);
  }
  assert.equal(px(c, 2, 10), [255, 255, 255]);
  assert.equal(px(c, 38, 10), [255, 255, 255]);
  // A diagonal: a pixel centre on the line is full ink, one 3 px away is untouched.
  const d = createCanvas(20, 20);
  drawPolyline(d, [[0, 0], [20, 20]], [0, 0, 0], 2);
  assert.equal(px(d, 10, 10), [0, 0, 0]);
  assert.equal(px(d, 14, 10), [255, 255, 255]);
});

test('wrapLabel: wraps at spaces, cuts long words, marks truncation', () => {
  assert.equal(wrapLabel('init noise', 20), ['init noise']);
  assert.equal(wrapLabel('content reconstruction', 10), ['content', 'reconstru~']);
  assert.equal(wrapLabel('a b c d e f', 3, 2), ['a b', 'c~']);
  assert.equal(wrapLabel('abcdefgh', 3, 3), ['abc', 'def', 'gh']);
});

const svgPolylines = (svg: string) => [...svg.matchAll(/<polyline\b[^>]*points="([^"]*)"/g)].map((m) => m[1].trim() ? m[1].trim().split(/\s+/).length : 0);

test('plots: one polyline per series with its kept points; log axis drops non-positive values; PNG decodes', () => {
  const r = rng(nextSeed());
  const series = Array.from({ length: 4 }, (_, i) => ({
    label: `series ${i}`, points: Array.from({ length: 5 + i }, (_, k) => [k, 10 ** (3 * r()) ] as const),
  }));
  series.push({ label: 'empty', points: [[0, 0], [1, -1], [2, NaN]] as const as unknown as [number, number][] });
  const spec = { title: 'test', xLabel: 'iteration', yLabel: 'loss', series };
  const svg = plotSvg(spec);
  assert.equal(svgPolylines(svg), [5, 6, 7, 8, 0]);
  assert.match(svg, /empty \(no data\)/);
  assert.not.match(svg, /NaN|Infinity/);
  // Every plotted point lies inside the plot area.
  for (const m of svg.matchAll(/points="([^"]+)"/g)) {
    for (const p of m[1].split(' ')) {
      const [x, y] = p.split(',').map(Number);
      assert.ok(x >= 62 && x <= 640 && y >= 30 && y <= 360, `point ${p} outside the plot`);
    }
  }
  const png = decodeImage(plotPng(spec), 'plot.png');
  assert.is(png.width, 640);
  assert.is(png.height, 400);
  // Each series' colour appears in the raster.
  const seen = new Set<string>();
  const n = png.width * png.height;
  for (let i = 0; i < n; i++) seen.add([0, 1, 2].map((c) => Math.round(png.data[c * n + i] * 255)).join(','));
  for (const c of ['31,119,180', '255,127,14', '44,160,44', '214,39,40']) assert.ok(seen.has(c), `colour ${c} not drawn`);
});

test('plots: a diverging curve does not flatten the others; it leaves through the top edge', () => {
  const spec = { title: 't', xLabel: 'x', yLabel: 'y', series: [
    { label: 'ok', points: [[0, 100], [1, 50], [2, 20]] as [number, number][] },
    { label: 'diverges', points: [[0, 100], [1, 1e10], [2, 1e30]] as [number, number][] }] };
  const svg = plotSvg(spec);
  assert.match(svg, />1e5</);
  assert.not.match(svg, />1e6</);
  const ys = [...svg.matchAll(/points="([^"]+)"/g)].map((m) => m[1].split(' ').map((p) => Number(p.split(',')[1])));
  assert.equal(ys[1].slice(1), [30, 30], 'clamped to the top');
  assert.ok(ys[0][2] - ys[0][0] > 40, 'the converging curve keeps its shape');
});

test('contact sheet: cells in a grid, missing images as grey boxes, labels drawn', () => {
  const img = (w: number, h: number, v: number) => ({ width: w, height: h, data: new Float32Array(3 * w * h).fill(v) });
  const cells = [{ label: 'content', image: img(40, 30, 0), reference: true }, { label: 'a', image: img(40, 30, 1) }, { label: 'missing' }];
  const s = decodeImage(contactSheet('Title', cells, { columns: 2 }), 'sheet.png');
  // 2 columns of 64 px cells (the minimum width) and gaps; 2 rows.
  assert.is(s.width, 8 + 2 * (64 + 8));
  const n = s.width * s.height;
  const at = (x: number, y: number) => [0, 1, 2].map((c) => Math.round(s.data[c * n + y * s.width + x] * 255));
  const y0 = 28; // below the title
  assert.equal(at(8 + 12 + 20, y0 + 9 + 15), [0, 0, 0], 'first image (black) centred in its cell');
  assert.equal(at(8 + 72 + 12 + 20, y0 + 9 + 15), [255, 255, 255], 'second image (white)');
  const rowH = 48 + (7 + 3) + 4 + 8;
  assert.equal(at(8 + 5, y0 + rowH + 5), [205, 205, 205], 'the missing run is a grey box');
});

test('lossCurve: first evaluation per iteration; later scales continue both axes', () => {
  const rec = (eval_: number, iter: number, total: number, seconds: number, scale?: number) =>
    ({ eval: eval_, iter, total, seconds, content: 0, style: 0, tv: 0, ...(scale !== undefined ? { scale } : {}) });
  assert.equal(lossCurve([rec(0, 0, 10, 0.1), rec(1, 0, 9, 0.2), rec(2, 1, 8, 0.3), rec(3, 2, 7, 0.4)]),
    [{ iter: 0, seconds: 0.1, total: 10 }, { iter: 1, seconds: 0.3, total: 8 }, { iter: 2, seconds: 0.4, total: 7 }]);
  assert.equal(lossCurve([rec(0, 0, 10, 1, 0), rec(1, 1, 8, 2, 0), rec(2, 0, 20, 0.5, 1), rec(3, 1, 15, 1, 1)]).map((p) => [p.iter, p.seconds, p.total]),
    [[0, 1, 10], [1, 2, 8], [1, 2.5, 20], [2, 3, 15]]);
});

test('built-in experiments: the sweeps the issue lists', () => {
  assert.equal(parseExperimentList('all').map((e) => e.name), [...EXPERIMENT_NAMES]);
  const ratio = builtinExperiment('ratio', { contentWeight: 5, styleWeight: 5e3 });
  const got = ratio.runs.map((r) => r.overrides.contentWeight! / r.overrides.styleWeight!);
  RATIO_DECADES.forEach((k, i) => assert.ok(Math.abs(got[i] / (1e-3 * 10 ** k) - 1) < 1e-12, `ratio ${i}: ${got[i]}`));
  assert.is(ratio.runs[RATIO_DECADES.indexOf(0)].overrides.styleWeight, 5e3, 'the middle run is the base itself');
  const dflt = builtinExperiment('ratio').runs[RATIO_DECADES.indexOf(0)].overrides;
  const o = resolveStylizeOptions({ content: 'c', style: 's' });
  assert.equal([dflt.contentWeight, dflt.styleWeight], [o.contentWeight, o.styleWeight], 'around the defaults');
  assert.ok(ratio.runs.every((r) => r.overrides.contentWeight === 5));
  assert.equal(ratio.runs.map((r) => r.label), ['a/b=0.1', 'a/b=0.01', 'a/b=1e-3', 'a/b=1e-4', 'a/b=1e-5', 'a/b=1e-6']);
  assert.equal(builtinExperiment('optimizer').runs.map((r) => r.overrides.optimizer), ['lbfgs', 'adam', 'sgd']);
  const cl = builtinExperiment('content-layers').runs;
  assert.equal(cl.map((r) => r.overrides.contentLayers), [['relu1_2'], ['relu2_2'], ['relu3_2'], ['relu4_2'], ['relu5_2']]);
  assert.ok(cl.every((r) => r.overrides.styleWeight === 0 && r.overrides.init === 'noise'));
  const sl = builtinExperiment('style-layers').runs;
  assert.equal(sl.map((r) => r.overrides.styleLayers!.length), [1, 2, 3, 4, 5]);
  assert.equal(sl[4].overrides.styleLayers, ['relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1']);
  assert.ok(sl.every((r) => r.overrides.contentWeight === 0));
  const ids = parseExperimentList('all').flatMap((e) => e.runs.map((r) => r.id));
  assert.ok(ids.every((id) => /^[a-z0-9._-]+$/.test(id)), ids.join(' '));
  throwsPainterly(() => parseExperimentList('optimizer,colour'), /unknown experiment "colour"/);
});

test('study config: built-in names, option sweeps and explicit runs; errors name the entry', () => {
  const { base, experiments } = parseStudyConfig({
    base: { size: 64 },
    experiments: ['pooling', { name: 'TV weight', option: 'tvWeight', values: [0, 0.01] }, { name: 'mix', runs: [{ label: 'A b', options: { iters: 3 } }, { label: 'A b' }] }],
  });
  assert.equal(base, { size: 64 });
  assert.equal(experiments.map((e) => e.name), ['pooling', 'tv-weight', 'mix']);
  assert.equal(experiments[1].runs.map((r) => r.overrides), [{ tvWeight: 0 }, { tvWeight: 0.01 }]);
  assert.equal(experiments[2].runs.map((r) => r.id), ['a-b', 'a-b-2'], 'duplicate run folders are numbered');
  throwsPainterly(() => parseStudyConfig({ experiments: [] }), /non-empty/);
  throwsPainterly(() => parseStudyConfig({ experiments: [{ name: 'x', option: 'colour', values: [1] }] }), /experiments\[0\].*stylize option name/);
  throwsPainterly(() => parseStudyConfig({ experiments: [{ name: 'x', runs: [{ options: { out: 'a.png' } }] }] }), /"out" is set by the study/);
  throwsPainterly(() => parseStudyConfig({ experiments: ['pooling', 'pooling'] }), /listed twice/);
});

test('study args: only given options form the base (so each optimiser keeps its own lr); study flags; errors', () => {
  const a = parseStudyArgs(['--content', 'c.png', '--style', 's.png', '--out', 'dir', '--size', '64', '--iters=3', '--weights', 'random:2', '--experiments', 'optimizer,pooling']);
  assert.equal(a.base, { size: 64, iters: 3, weights: 'random:2' });
  assert.equal(a.experiments.map((e) => e.name), ['optimizer', 'pooling']);
  assert.is(a.out, 'dir');
  assert.equal(a.style, ['s.png']);
  assert.not.ok(a.base.lr, 'no lr in the base');
  assert.is(DEFAULT_LR.adam !== DEFAULT_LR.lbfgs, true);
  assert.equal(parseStudyArgs(['--content', 'c', '--style', 's', '--out', 'd']).experiments.length, EXPERIMENT_NAMES.length);
  assert.ok(parseStudyArgs(['--help']).help);
  throwsPainterly(() => parseStudyArgs(['--content', 'c', '--style', 's']), /--out is required/);
  throwsPainterly(() => parseStudyArgs(['--content', 'c', '--style', 's', '--out', 'd', '--log', 'x.jsonl']), /--log does not apply/);
  throwsPainterly(() => parseStudyArgs(['--content', 'c', '--style', 's', '--out', 'd', '--pooling', 'median']), /--pooling: expected max or avg/);
  throwsPainterly(() => parseStudyArgs(['--content', 'c', '--style', 's', '--out', 'd', '--experiments', 'x']), /unknown experiment/);
});

test('canvas PNG round-trips through the codec', () => {
  const c = createCanvas(7, 5, [10, 20, 30]);
  const img = decodeImage(encodeCanvasPng(c), 'c.png');
  assert.is(img.width, 7);
  assert.ok(Math.abs(img.data[0] - 10 / 255) < 1e-6 && Math.abs(img.data[35] - 20 / 255) < 1e-6);
});

test.run();
