// Node-side checks of the browser build: the bundle contains no Node-only code, and weights given as a ByteSource
// (a file chosen in a page) load exactly like the same file from disk. The page itself is tested in Chromium by
// test/browser/web-page.ts (npm run test:browser).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { bytesSource } from '../../src/weights/safetensors.ts';
import { loadVgg19Weights } from '../../src/weights/vgg19-weights.ts';
import { nextSeed } from '../helpers.ts';
import { vggFile } from '../weights/weights-helpers.ts';

const test = suite('browser build');
const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'painterly-web-'));

test('the browser bundle builds without Node modules; Node-only modules become a throwing stub', async () => {
  // @ts-expect-error: a plain .mjs module without type declarations
  const { webOptions } = await import('../../scripts/build.mjs');
  for (const entry of [{ app: join(root, 'web/app.ts') }, { lib: join(root, 'src/browser.ts') }]) {
    const r = await esbuild.build({ ...webOptions(dir), entryPoints: entry, write: false, sourcemap: false, minify: false, logLevel: 'silent' });
    const js = r.outputFiles!.find((f) => f.path.endsWith('.js'))!.text;
    assert.not.match(js, /from\s*["']node:|require\(["']node:|["']node:fs/, 'no node: imports');
    assert.not.match(js, /readFile\(|appendFile\(/, 'no fs calls');
    assert.match(js, /needs Node and is not part of the browser build/, 'stub present for the dynamic Node-only imports');
    assert.match(js, /@compute/, 'WGSL bundled as text');
  }
});

test('weights from a ByteSource in LoadOptions.files equal the same file read from disk', async () => {
  const bytes = vggFile(nextSeed(), { upTo: 'conv2_1', dtype: (c) => (c === 'conv1_2' ? 'BF16' : 'F32') });
  const path = join(dir, 'vgg.safetensors');
  writeFileSync(path, bytes);
  const fromDisk = await loadVgg19Weights(path, { upTo: 'conv2_1' });
  let reads = 0;
  const src = bytesSource('chosen.safetensors', bytes);
  const counted = { ...src, read: (b: number, e: number) => { reads++; return src.read(b, e); } };
  const given = await loadVgg19Weights('my file', { upTo: 'conv2_1', files: new Map([['my file', counted]]) });
  assert.ok(reads > 0, 'read through the ByteSource');
  assert.ok(given.pretrained);
  assert.match(given.source, /chosen\.safetensors up to conv2_1/);
  assert.is(given.convs.length, fromDisk.convs.length);
  given.convs.forEach((c, i) => {
    assert.is(c.name, fromDisk.convs[i].name);
    assert.equal(c.weight, fromDisk.convs[i].weight, `${c.name} weight`);
    assert.equal(c.bias, fromDisk.convs[i].bias, `${c.name} bias`);
  });
  // A spec not in the map still goes to the file system.
  assert.is((await loadVgg19Weights(path, { upTo: 'conv1_1', files: new Map() })).convs.length, 1);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
