// scripts/run-tests.mjs on fixture test files (PAINTERLY_TEST_ROOT): failures, a throwing before hook, an empty
// suite and a file without a suite fail the run; tests missing ../shared are skipped by name only when allowed.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('test runner');
const runner = fileURLToPath(new URL('../../scripts/run-tests.mjs', import.meta.url));
const helpers = pathToFileURL(fileURLToPath(new URL('../helpers.ts', import.meta.url))).href;
const dir = mkdtempSync(join(tmpdir(), 'painterly-runner-'));

/** Writes fixture test files into a fresh root. */
function fixtures(name: string, files: Record<string, string>): string {
  const root = join(dir, name);
  for (const [f, body] of Object.entries(files)) {
    mkdirSync(join(root, f, '..'), { recursive: true });
    writeFileSync(join(root, f), `import { suite } from 'uvu';\n${body}\n`);
  }
  return root;
}

function runTests(root: string, env: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
  const base: Record<string, string | undefined> = { ...process.env, PAINTERLY_TEST_ROOT: root, ...env };
  for (const k of ['PAINTERLY_TEST_CHILD', ...['CI', 'PAINTERLY_ALLOW_SKIP', 'PAINTERLY_SHARED_DIR'].filter((k) => !(k in env))]) delete base[k];
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [runner], { env: base, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    p.on('error', reject);
    // Indented in failure messages, so a CI log's grep for a closing "node: N passed" line never sees the fixtures'.
    p.on('close', (code) => resolve({ code, out: out.replace(/\x1b\[[0-9;]*m/g, '').replace(/^(?=.)/gm, '  | ') }));
  });
}

const lastLine = (out: string) => out.trim().split('\n').at(-1)!.replace(/^\s*\| /, '');

const mixed = fixtures('mixed', {
  'a/pass.test.ts': `const t = suite('fine'); t('one', () => {}); t('two', async () => {}); t.run();`,
  'b/fail.test.ts': `const t = suite('broken'); t('passes', () => {}); t('fails', () => { throw new Error('boom'); }); t.run();`,
  'c/hook.test.ts': `const t = suite('hooked'); t.before(() => { throw new Error('no images here'); }); t('x', () => {}); t('y', () => {}); t.run();`,
  'd/empty.test.ts': `const t = suite('empty'); t.run();`,
  'e/nosuite.test.ts': `export {};`,
});

const shared = (present: boolean) => fixtures(`shared-${present}`, {
  'needs.test.ts': `import { requireShared } from ${JSON.stringify(helpers)};
const t = suite('needs shared');
t('uses a model', () => { const d = requireShared('models/some-model'); if (!d) return; });
t('plain', () => {});
t.run();`,
});
const sharedDir = join(dir, 'shared');
mkdirSync(join(sharedDir, 'models', 'some-model'), { recursive: true });

test('failures, a throwing before hook, an empty suite and a file without a suite each fail the run', async () => {
  const r = await runTests(mixed);
  assert.is(r.code, 1, r.out);
  assert.is(lastLine(r.out), 'node: 3 passed, 5 failed', r.out);
  assert.match(r.out, /broken > fails/);
  assert.match(r.out, /hooked: before hook threw: no images here/);
  assert.match(r.out, /empty\.test\.ts: a suite ran no test/);
  assert.match(r.out, /nosuite\.test\.ts: no suite ran/);
});

test('all passing exits 0; ../shared present runs the test that needs it', async () => {
  const r = await runTests(shared(true), { PAINTERLY_SHARED_DIR: sharedDir });
  assert.is(r.code, 0, r.out);
  assert.is(lastLine(r.out), 'node: 2 passed, 0 failed', r.out);
});

test('../shared missing: fails by default and under CI even when skipping is allowed; skipped by name with PAINTERLY_ALLOW_SKIP=1', async () => {
  const root = shared(false);
  const missing = { PAINTERLY_SHARED_DIR: join(dir, 'nowhere') };
  const [plain, ci, allowed] = await Promise.all([
    runTests(root, missing),
    runTests(root, { ...missing, CI: 'true', PAINTERLY_ALLOW_SKIP: '1' }),
    runTests(root, { ...missing, PAINTERLY_ALLOW_SKIP: '1' }),
  ]);
  assert.is(plain.code, 1, plain.out);
  assert.is(lastLine(plain.out), 'node: 1 passed, 1 failed', plain.out);
  assert.match(plain.out, /needs shared > uses a model: needs .*nowhere\/models\/some-model, which is missing/);
  assert.is(ci.code, 1, ci.out);
  assert.match(ci.out, /CI must provide/);
  assert.is(allowed.code, 0, allowed.out);
  assert.is(lastLine(allowed.out), 'node: 1 passed, 0 failed, 1 skipped', allowed.out);
  assert.match(allowed.out, /skipped \(PAINTERLY_ALLOW_SKIP=1\):\n {2}\| {3}needs shared > uses a model: needs /);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
