// Every variant of every tuned kernel at its standard shapes, side by side in one run (npm run bench:variants
// [-- FILTER]): the table `painterly tune` prints, without touching the tuning cache. GFLOP/s count the op's full
// product (the Gram: 2 N² M, although only its upper triangle is computed).
import { openDawnGpu } from '../src/gpu/dawn.ts';
import { tuneStandard } from '../src/gpu/tune.ts';
import { TUNABLES } from '../src/ops/tunables.ts';
import { formatTuneRows } from '../src/cli/tune.ts';

const filter = process.argv.slice(2).find((a) => !a.startsWith('-'));
const gpu = await openDawnGpu();
console.log(`device: ${gpu.describe()}`);
const rows = await tuneStandard(gpu, TUNABLES, { filter, onRow: (r) => console.log(formatTuneRows([r], 24).split("\n")[1]) });
console.log(`\n${formatTuneRows(rows)}`);
gpu.destroy();
process.exit(0);
