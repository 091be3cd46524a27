// Measures tiled feed-forward transfer on a big image (issue 10, "Big images"): wall time and peak host memory.
//   node --import ./scripts/register.mjs bench/ff-tiled-measure.ts [--method wct|adain] [--width 4096]
//     [--height 4096] [--levels 5,4,3,2,1] [--tile N] [--compare] [--out file.png] [--model DIR]
// The content is examples/tubingen.jpg resized to exactly width x height; the style examples/starry_night.jpg at
// 512 px. --compare also runs untiled (only where it fits) and prints the largest difference. Peak memory: the
// process's RSS sampled every 100 ms (run under /usr/bin/time -v for the kernel's maximum resident set).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { openDawnGpu } from '../src/gpu/dawn.ts';
import { decodeImage, fitLongestSide, resize } from '../src/image/index.ts';
import { writeImage } from '../src/image/node-io.ts';
import { encodeStyle, stylizeFeedForward, type FeedForwardMethod } from '../src/style/feedforward.ts';
import { loadFeedForwardModel } from '../src/style/ff-load.ts';

const { values: a } = parseArgs({
  options: {
    method: { type: 'string', default: 'wct' }, width: { type: 'string', default: '4096' }, height: { type: 'string', default: '4096' },
    levels: { type: 'string', default: '5,4,3,2,1' }, tile: { type: 'string' }, compare: { type: 'boolean', default: false },
    out: { type: 'string' }, model: { type: 'string', default: '../shared/models/wct-16x' },
  },
});
let peak = 0;
const sample = () => { peak = Math.max(peak, process.memoryUsage().rss); };
const timer = setInterval(sample, 100);
const gb = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
const t0 = performance.now();
const secs = () => ((performance.now() - t0) / 1000).toFixed(1);

const gpu = await openDawnGpu({});
console.log(`adapter: ${gpu.info.description}; storage binding limit ${(gpu.maxBindingBytes / 2 ** 20).toFixed(0)} MiB`);
const model = await loadFeedForwardModel(gpu, a.model!);
const method = a.method as FeedForwardMethod;
const levels = a.levels!.split(',').map(Number);
const content = resize(decodeImage(readFileSync('examples/tubingen.jpg'), 'tubingen.jpg'), Number(a.width), Number(a.height));
const style = fitLongestSide(decodeImage(readFileSync('examples/starry_night.jpg'), 'starry_night.jpg'), 512);
const enc = await encodeStyle(gpu, model, method, [style], [1], levels);
console.log(`[${secs()} s] content ${content.width}x${content.height}, style encoded; rss ${gb(process.memoryUsage().rss)}`);
const t1 = performance.now();
const out = await stylizeFeedForward(gpu, model, content, enc, {
  alpha: 1, tileSize: a.tile ? Number(a.tile) : undefined,
  onMessage: (m) => console.log(`[${secs()} s] ${m}`),
  onLevel: (k) => console.log(`[${secs()} s] level ${k}; rss ${gb(process.memoryUsage().rss)}`),
});
const stylise = (performance.now() - t1) / 1000;
sample();
console.log(`stylised ${out.width}x${out.height} in ${stylise.toFixed(1)} s; peak rss (sampled) ${gb(peak)}`);
if (a.out) await writeImage(a.out, out);
if (a.compare) {
  const t2 = performance.now();
  const ref = await stylizeFeedForward(gpu, model, content, enc, { alpha: 1, maxBytes: Infinity });
  let err = 0, max = 0;
  for (let i = 0; i < ref.data.length; i++) { err = Math.max(err, Math.abs(ref.data[i] - out.data[i])); max = Math.max(max, Math.abs(ref.data[i])); }
  console.log(`untiled in ${((performance.now() - t2) / 1000).toFixed(1)} s; max |tiled − untiled| ${err.toExponential(2)} (max |untiled| ${max.toFixed(3)})`);
  // Where the differences are: per pixel (max over channels), mean and 99.9th percentile, and rows/columns of the top 10.
  const n = ref.width * ref.height;
  const e = new Float64Array(n);
  for (let c = 0; c < 3; c++) for (let i = 0; i < n; i++) e[i] = Math.max(e[i], Math.abs(ref.data[c * n + i] - out.data[c * n + i]));
  const order = Array.from(e.keys()).sort((p, q) => e[q] - e[p]);
  console.log(`per-pixel error: mean ${(e.reduce((s, v) => s + v, 0) / n).toExponential(2)}, 99.9% ${e[order[Math.floor(n / 1000)]].toExponential(2)}; top at ` +
    order.slice(0, 10).map((i) => `(${i % ref.width},${Math.floor(i / ref.width)})`).join(' '));
  if (a.out) await writeImage(a.out.replace(/(\.\w+)$/, '-untiled$1'), ref);
}
clearInterval(timer);
model.destroy();
gpu.destroy();
