#!/usr/bin/env node
// Runs every test/**/*.test.ts in one process (one GPU device for all) through uvu's suites, and closes with
// "node: N passed, N failed[, N skipped]". The run exits non-zero on any failed test, any hook that threw (uvu
// itself swallows a throwing `before` and counts its suite as passed), and any suite or file that ran no test.
// Usage: node scripts/run-tests.mjs [substring filter]
//   PAINTERLY_TEST_ROOT=DIR   run DIR/**/*.test.ts instead of test/ (the runner's own tests use it)
//   PAINTERLY_TUNE            kernel variant tuning of the CLI and createPainterly; 'off' (deterministic defaults) unless set
//   PAINTERLY_ALLOW_SKIP=1    tests missing ../shared/ (test/helpers.ts requireShared) are skipped by name, not
//                             failed; never under CI=true
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { register } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

if (process.env.PAINTERLY_TEST_CHILD !== '1') {
  const loader = fileURLToPath(new URL('./register.mjs', import.meta.url));
  const r = spawnSync(process.execPath, ['--enable-source-maps', '--import', loader, fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    { stdio: 'inherit', env: { ...process.env, PAINTERLY_TEST_CHILD: '1', PAINTERLY_TUNE: process.env.PAINTERLY_TUNE ?? 'off' } });
  process.exit(r.status ?? 1);
}

register('./test-hooks.mjs', import.meta.url);
const repo = resolve(fileURLToPath(new URL('..', import.meta.url)));
const root = resolve(process.env.PAINTERLY_TEST_ROOT || join(repo, 'test'));
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

const plain = (s) => String(s).replace(/\x1b\[[0-9;]*m/g, '');
globalThis.UVU_DEFER = 1; // before uvu loads: suites queue themselves in UVU_QUEUE[UVU_INDEX] instead of running
const { record } = await import('./uvu-guard.mjs');
let passed = 0, failed = 0, skipped = 0;
const problems = []; // one line per failed test, thrown hook, empty suite or file
const say = (s) => process.stdout.write(s);
const t0 = performance.now();
for (const [i, file] of files.entries()) {
  const rel = file.slice(root.length + 1);
  globalThis.UVU_INDEX = i;
  const group = (globalThis.UVU_QUEUE[i] = []);
  say(`${i ? '\n' : ''}${rel}\n`);
  try {
    await import(pathToFileURL(file).href);
  } catch (e) {
    failed++;
    problems.push(`${rel}: failed to load: ${plain(e?.message ?? e).split('\n')[0]}`);
    say(`  cannot load ${rel}:\n${e?.stack ?? e}\n`);
    continue;
  }
  if (group.length === 0) { failed++; problems.push(`${rel}: no suite ran (test.run() missing?)`); continue; }
  for (const run of group) {
    const hooksBefore = record.hookErrors.length;
    const skipsBefore = record.skips.length;
    // uvu's runner prints the suite name and a mark per test, and returns [errors or true, passed, skipped, total].
    let errs, ran, skip, total;
    try {
      [errs, ran, skip, total] = await run();
    } catch (e) { // an `after` hook threw (the guard recorded it)
      [errs, ran, skip, total] = [true, 0, 0, 0];
      if (record.hookErrors.length === hooksBefore) record.hookErrors.push({ suite: rel, hook: 'after', error: e });
    }
    const hookErrors = record.hookErrors.slice(hooksBefore);
    const skips = Math.min(ran, record.skips.length - skipsBefore);
    passed += ran - skips;
    skipped += skip + skips;
    if (typeof errs === 'string') {
      say(`\n${errs}\n`);
      const names = [...plain(errs).matchAll(/ FAIL {2}(.*?) {2}"(.*)"\n/g)].map((m) => `${m[1]} > ${m[2]}`);
      problems.push(...(names.length ? names : [`${rel}: ${total - ran} failed`]));
    }
    for (const h of hookErrors) {
      problems.push(`${h.suite}: ${h.hook} hook threw: ${plain(h.error?.message ?? h.error).split('\n')[0]}`);
      say(`\n  ${h.suite}: ${h.hook} hook threw:\n${h.error?.stack ?? h.error}\n`);
    }
    // Tests that neither passed nor failed by themselves (a before hook threw) count as failed, as does an empty suite.
    failed += total - ran + (hookErrors.length && total === ran ? 1 : 0);
    if (total === 0 && skip === 0 && hookErrors.length === 0) { failed++; problems.push(`${rel}: a suite ran no test`); }
    else if (total - ran > 0 && hookErrors.length === 0 && typeof errs !== 'string') problems.push(`${rel}: ${total - ran} tests did not run`);
  }
}
say(`\n  Duration: ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
if (record.skips.length) {
  console.log(`\nskipped (PAINTERLY_ALLOW_SKIP=1):`);
  for (const s of record.skips) console.log(`  ${s}`);
}
if (problems.length) {
  console.log('\nfailed:');
  for (const p of problems) console.log(`  ${p}`);
}
console.log(`node: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
// Leave explicitly so a live GPU device cannot keep the process up.
const { releaseTestGpu } = await import(pathToFileURL(join(repo, 'test', 'helpers.ts')).href);
await releaseTestGpu();
process.exit(failed > 0 || problems.length > 0 ? 1 : 0);
