#!/usr/bin/env node
// Runs every test/**/*.test.ts in one process (one GPU device for all) through uvu, which prints its summary.
// Usage: node scripts/run-tests.mjs [substring filter]
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

if (process.env.PAINTERLY_TEST_CHILD !== '1') {
  const register = fileURLToPath(new URL('./register.mjs', import.meta.url));
  const r = spawnSync(process.execPath, ['--enable-source-maps', '--import', register, fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    { stdio: 'inherit', env: { ...process.env, PAINTERLY_TEST_CHILD: '1' } });
  process.exit(r.status ?? 1);
}

const root = resolve(fileURLToPath(new URL('..', import.meta.url)), 'test');
const filter = process.argv[2] ?? '';
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.ts') && p.includes(filter)) files.push(p);
  }
})(root);
if (files.length === 0) { console.error(`no test files match "${filter}"`); process.exit(1); }

globalThis.UVU_DEFER = 1;
const uvu = await import('uvu');
let idx = 0;
for (const file of files) {
  globalThis.UVU_INDEX = idx++;
  globalThis.UVU_QUEUE.push([file.slice(root.length + 1)]);
  await import(pathToFileURL(file).href);
}
// uvu prints "Total: N" and "Passed: N"; read them on the way out for a plain closing line CI can parse.
const write = process.stdout.write.bind(process.stdout);
let printed = '';
process.stdout.write = (chunk, ...rest) => { printed += String(chunk); return write(chunk, ...rest); };
await uvu.exec(false);
process.stdout.write = write;
const plain = printed.replace(/\x1b\[[0-9;]*m/g, '');
const total = Number(/Total:\s+(\d+)/.exec(plain)?.[1] ?? 0);
const passed = Number(/Passed:\s+(\d+)/.exec(plain)?.[1] ?? 0);
const skipped = Number(/Skipped:\s+(\d+)/.exec(plain)?.[1] ?? 0);
console.log(`node: ${passed} passed, ${total - passed - skipped} failed${skipped ? `, ${skipped} skipped` : ''}`);
// uvu sets process.exitCode; leave explicitly so a live GPU device cannot keep the process up.
const { releaseTestGpu } = await import(pathToFileURL(join(root, 'helpers.ts')).href);
await releaseTestGpu();
process.exit(process.exitCode ?? 0);
