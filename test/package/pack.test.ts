// The package as a user gets it: `npm pack` (which builds dist/ on prepack), `npm install <tarball>` into an empty
// project, then `import { createPainterly } from 'painterly'` and `npx painterly`. Dependencies come from npm's
// cache when it has them (--prefer-offline), else from the registry. About 10 s with a warm cache. A TypeScript file
// in that project is then typechecked against the shipped declarations with the repo's own tsc (skipLibCheck off, so
// our .d.ts are checked too): the Node entry under moduleResolution node16, the browser entry under bundler with the
// "browser" condition.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('npm package');
const repo = fileURLToPath(new URL('../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'painterly-pack-'));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';

function sh(cmd: string, args: string[], cwd: string, timeoutMs = 120_000): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    // A clean environment for npm: no settings inherited from an `npm test` that runs this.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
    const p = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

test('npm pack, npm install of the tarball: the import, the GPU and `npx painterly` work', async () => {
  const t0 = performance.now();
  const pack = await sh(npm, ['pack', '--pack-destination', dir, '--json'], repo);
  assert.is(pack.code, 0, pack.err);
  const [info] = JSON.parse(pack.out.slice(pack.out.indexOf('[')));
  const shipped = (info.files as { path: string }[]).map((f) => f.path).sort();
  for (const f of ['LICENSE', 'README.md', 'bin/painterly.js', 'dist/node/painterly.js', 'dist/node/cli.js', 'dist/browser/painterly.js',
    'dist/types/node.d.ts', 'dist/types/browser.d.ts', 'package.json']) {
    assert.ok(shipped.includes(f), `${f} ships (${shipped.join(', ')})`);
  }
  assert.not.ok(shipped.some((f) => f.startsWith('src/') || f.startsWith('test/') || f.startsWith('node_modules/')), shipped.join(', '));
  const tgz = join(dir, info.filename);
  const tPack = performance.now();

  const app = join(dir, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }));
  const install = await sh(npm, ['install', '--prefer-offline', '--no-audit', '--no-fund', tgz], app);
  assert.is(install.code, 0, install.err);
  assert.ok(readdirSync(join(app, 'node_modules')).includes('painterly'));
  const tInstall = performance.now();

  writeFileSync(join(app, 'use.mjs'), `import { createPainterly } from 'painterly';
const p = await createPainterly();
console.log('gpu:', p.gpu.describe() ? 'ok' : 'none');
p.destroy();
setTimeout(() => process.exit(0), 50);
`);
  const use = await sh(process.execPath, ['use.mjs'], app);
  assert.is(use.code, 0, use.err);
  assert.match(use.out, /gpu: ok/);

  const help = await sh(npx, ['--no-install', 'painterly', '--help'], app);
  assert.is(help.code, 0, help.err);
  assert.match(help.out, /usage: painterly <command>/);
  const stylizeHelp = await sh(npx, ['--no-install', 'painterly', 'stylize', '--help'], app);
  assert.is(stylizeHelp.code, 0, stylizeHelp.err);
  assert.match(stylizeHelp.out, /--content FILE/);
  const info2 = await sh(npx, ['--no-install', 'painterly', 'info'], app);
  assert.is(info2.code, 0, info2.err);
  assert.match(info2.out, /adapter: /);
  assert.not.match(info2.err, /artificially reduced/);
  const tRun = performance.now();

  // TypeScript users: the types of what they import, for Node and for pages. The @ts-expect-error lines fail the check
  // if the import were untyped (any) or resolved to the other entry. lib DOM in every config: @webgpu/types (which
  // our declarations reference, and so does the `webgpu` package's) is written against DOM's types. No @types/node:
  // the Node entry's declarations need none. skipDefaultLibCheck: TypeScript's own lib files go unchecked (half the
  // time), ours and @webgpu/types' are checked.
  writeFileSync(join(app, 'node.ts'), `import { createPainterly, readImage, type Painterly, type PainterlyResult, type StylizeInput } from 'painterly';
const input: StylizeInput = { content: 'c.jpg', style: ['s.jpg'], size: 64, iters: 2 };
const p: Painterly = await createPainterly({ tune: 'off' });
const r: PainterlyResult = await p.stylize({ ...input, onProgress: (i) => console.log(i.iter) });
const w: number = r.width + (await readImage('c.jpg')).width;
// @ts-expect-error not a tuning mode
await createPainterly({ tune: 'sometimes' });
// @ts-expect-error the browser entry's export, not Node's
import type { BrowserCreateOptions } from 'painterly';
p.destroy();
export { w };
`);
  writeFileSync(join(app, 'browser.ts'), `import { createPainterly, webgpuUnavailableReason, FeedForwardSession, type BrowserCreateOptions } from 'painterly';
const o: BrowserCreateOptions = { tune: 'off' };
const why: string | undefined = webgpuUnavailableReason();
const p = await createPainterly(o);
const s: typeof FeedForwardSession = FeedForwardSession;
// @ts-expect-error Node's export, not the browser entry's
import { readImage } from 'painterly';
p.destroy();
export { why, s };
`);
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const base = { target: 'ES2022', lib: ['ES2022', 'DOM'], types: [], strict: true, noEmit: true, skipLibCheck: false, skipDefaultLibCheck: true };
  const checks = await Promise.all(([
    ['node16', 'node.ts', { module: 'node16', moduleResolution: 'node16' }],
    ['browser', 'browser.ts', { module: 'ESNext', moduleResolution: 'bundler', customConditions: ['browser'] }],
  ] as const).map(([name, file, options]) => {
    writeFileSync(join(app, `tsconfig.${name}.json`), JSON.stringify({ compilerOptions: { ...base, ...options }, files: [file] }));
    return sh(process.execPath, [tsc, '-p', `tsconfig.${name}.json`], app).then((r) => ({ name, ...r }));
  }));
  for (const { name, code, out, err } of checks) assert.is(code, 0, `tsc (${name}):\n${out}${err}`);
  const tTypes = performance.now();
  console.log(`  (pack ${((tPack - t0) / 1000).toFixed(1)} s, install ${((tInstall - tPack) / 1000).toFixed(1)} s, use ${((tRun - tInstall) / 1000).toFixed(1)} s, ` +
    `tsc ${((tTypes - tRun) / 1000).toFixed(1)} s)`);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
