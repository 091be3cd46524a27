// Every kernel with tuned variants (src/gpu/tune.ts), for `painterly tune`, `painterly info` and the benchmarks.
import type { Tunable } from '../gpu/tune.ts';
import { convDirectTunable } from './conv2d.ts';
import { gramTunable } from './gram.ts';
import { matmulTunable } from './matmul.ts';

export const TUNABLES: Tunable<unknown>[] = [
  matmulTunable as Tunable<unknown>, gramTunable as Tunable<unknown>, convDirectTunable as Tunable<unknown>,
];
