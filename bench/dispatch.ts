// What one dispatch costs on this adapter regardless of its work: passes of k dispatches of a kernel touching 64
// floats, timed for several k; the slope is the per-dispatch floor that bounds small images (an evaluation at 64 px
// is ~130 dispatches). Run it alone: node scripts/run-ts.mjs bench/dispatch.ts
import { openDawnGpu } from '../src/gpu/dawn.ts';
import { createTensor } from '../src/gpu/tensor.ts';
import { vecFill } from '../src/ops/vector.ts';
import { timeSteps } from './harness.ts';

const gpu = await openDawnGpu();
const t = createTensor(gpu, [64], 't');
const ks = [1, 33, 66, 132, 264];
const times: number[] = [];
for (const k of ks) {
  const steps = Array.from({ length: k }, (_, i) => vecFill(gpu, t, i));
  const r = await timeSteps(gpu, steps, { runs: 7 });
  times.push(r.median);
  console.log(`${String(k).padStart(4)} dispatches: ${(r.median * 1e3).toFixed(2)} ms`);
}
// Least-squares slope over k.
const mk = ks.reduce((a, b) => a + b, 0) / ks.length;
const mt = times.reduce((a, b) => a + b, 0) / ks.length;
const slope = ks.reduce((a, k, i) => a + (k - mk) * (times[i] - mt), 0) / ks.reduce((a, k) => a + (k - mk) ** 2, 0);
console.log(`per dispatch: ${(slope * 1e6).toFixed(0)} µs; per submit (intercept): ${((mt - slope * mk) * 1e3).toFixed(2)} ms (${gpu.describe()})`);
process.exit(0);
