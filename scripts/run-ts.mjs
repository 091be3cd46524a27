#!/usr/bin/env node
// Runs a TypeScript entry point with the project's loader: `node scripts/run-ts.mjs bench/kernels.ts [args]`.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
const register = fileURLToPath(new URL('./register.mjs', import.meta.url));
const [file, ...args] = process.argv.slice(2);
const r = spawnSync(process.execPath, ['--enable-source-maps', '--import', register, file, ...args], { stdio: 'inherit' });
process.exit(r.status ?? 1);
