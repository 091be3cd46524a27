// The web page's feed-forward pieces in Node: FeedForwardSession (style encoded once; a single level re-decodes a
// new α from cached content features and gives exactly stylizeFeedForward's image) and the browser model loader
// (table model through a WeightStore, a picked folder) on the real wct-16x files.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PainterlyError } from '../../src/gpu/device.ts';
import type { RgbImage } from '../../src/image/image.ts';
import { encodeStyle, FeedForwardModel, stylizeFeedForward } from '../../src/style/feedforward.ts';
import { fetchModelFiles, loadModelFromFiles, modelFromPickedFiles, type PickedFile } from '../../src/style/ff-load-browser.ts';
import { FeedForwardSession } from '../../src/style/ff-session.ts';
import { bytesSource } from '../../src/weights/safetensors.ts';
import { MemoryStore } from '../../src/weights/store.ts';
import { nextSeed, requireShared, rng, testGpu, untilShown } from '../helpers.ts';

import { tinyModel } from './ff-tiny.ts';

const test = suite('feed-forward session');


const randomImage = (w: number, h: number, seed: number): RgbImage => {
  const r = rng(seed);
  return { width: w, height: h, data: Float32Array.from({ length: 3 * w * h }, () => r()) };
};

function assertSame(got: RgbImage, want: RgbImage, what: string): void {
  assert.is(got.width, want.width, `${what}: width`);
  assert.is(got.height, want.height, `${what}: height`);
  let worst = 0;
  for (let i = 0; i < want.data.length; i++) worst = Math.max(worst, Math.abs(got.data[i] - want.data[i]));
  assert.ok(worst <= 1e-6 * (1 + Math.max(...want.data.map(Math.abs))), `${what}: max |diff| ${worst}`);
}

for (const method of ['wct', 'adain'] as const) {
  test(`${method}, one level: a new α re-decodes cached features (no encoding) and equals stylizeFeedForward`, async () => {
    const gpu = await testGpu();
    // Every network drawn must give stylizeFeedForward's images; α must change the image for one of up to 8 (a tiny
    // random network is dead for some draws and images: an all-zero or constant output ignores α, ~2 % of draws).
    await untilShown('α changes the image', async () => {
      const { spec, weights } = tinyModel(nextSeed());
      const model = await FeedForwardModel.load(gpu, spec, async (file) => weights.get(file)!, 'tiny');
      const session = new FeedForwardSession(gpu, model);
      try {
        const content = randomImage(13, 10, nextSeed()); // odd: padded to 14 x 10 and cropped back
        const style = randomImage(9, 11, nextSeed());
        const enc = await session.useStyle('s', method, [style], [1], [2]);
        assert.is(await session.useStyle('s', method, [style], [1], [2]), enc, 'the same key reuses the encoded style');
        const a = await session.stylize(content, 0.8, 'c');
        assert.equal(session.counters, { styleEncodes: 1, contentEncodes: 1, decodes: 1 });
        assert.ok(session.cachedFor('c') && !session.cachedFor('other'));
        const b = await session.stylize(content, 0.3, 'c');
        assert.equal(session.counters, { styleEncodes: 1, contentEncodes: 1, decodes: 2 }, 'the new α encoded nothing');
        const ref = await encodeStyle(gpu, model, method, [style], [1], [2]);
        assertSame(a, await stylizeFeedForward(gpu, model, content, ref, { alpha: 0.8 }), 'α 0.8');
        assertSame(b, await stylizeFeedForward(gpu, model, content, ref, { alpha: 0.3 }), 'α 0.3 from the cache');
        let diff = 0;
        for (let i = 0; i < a.data.length; i++) diff += Math.abs(a.data[i] - b.data[i]);
        // A new content image is encoded once.
        await session.stylize(randomImage(8, 8, nextSeed()), 0.5, 'c2');
        assert.equal(session.counters, { styleEncodes: 1, contentEncodes: 2, decodes: 3 });
        return diff > 0;
      } finally {
        session.destroy();
        model.destroy();
      }
    });
  });
}

test('several levels: a new α re-runs the chain with the same encoded style', async () => {
  const gpu = await testGpu();
  const { spec, weights } = tinyModel(nextSeed());
  const model = await FeedForwardModel.load(gpu, spec, async (file) => weights.get(file)!, 'tiny');
  const session = new FeedForwardSession(gpu, model);
  try {
    const content = randomImage(12, 9, nextSeed());
    const style = randomImage(10, 10, nextSeed());
    await session.useStyle('s', 'wct', [style], [1], [2, 1]);
    await session.stylize(content, 0.6, 'c');
    const b = await session.stylize(content, 0.9, 'c');
    assert.equal(session.counters, { styleEncodes: 1, contentEncodes: 4, decodes: 4 });
    const ref = await encodeStyle(gpu, model, 'wct', [style], [1], [2, 1]);
    assertSame(b, await stylizeFeedForward(gpu, model, content, ref, { alpha: 0.9 }), 'chain');
    await session.useStyle('s', 'adain', [style], [1], [2, 1]);
    assert.is(session.counters.styleEncodes, 2, 'another method encodes again');
    const err = await new FeedForwardSession(gpu, model).stylize(content, 1).then(() => undefined, (e: Error) => e);
    assert.ok(err instanceof PainterlyError && /no style encoded/.test(err.message), `stylize before useStyle: ${err}`);
  } finally {
    session.destroy();
    model.destroy();
  }
});

const list = (dir: string, rel = ''): string[] => readdirSync(join(dir, rel)).flatMap((n) => {
  const r = rel ? `${rel}/${n}` : n;
  return statSync(join(dir, r)).isDirectory() ? list(dir, r) : [r];
});

test('browser loader: the table model through a WeightStore (then offline), and a picked folder, give the same networks', async () => {
  const dir = requireShared('models/wct-16x');
  if (!dir) return;
  const gpu = await testGpu();
  const store = new MemoryStore();
  let requests = 0;
  const fakeFetch = (async (url: string | URL) => {
    requests++;
    const path = new URL(String(url)).pathname.replace(/^\/mirror\//, '');
    const bytes = readFileSync(join(dir, path));
    return new Response(bytes, { status: 200, headers: { 'content-length': String(bytes.length) } });
  }) as typeof fetch;
  const opts = { store, baseUrl: 'http://mirror.test/mirror', fetch: fakeFetch, onMessage: () => {} };
  const fetched = await fetchModelFiles('wct-16x', opts);
  assert.is(requests, 10, 'every file downloaded once');
  assert.ok(store.entries.has('wct-16x/wct_se_16x_new/20191110-133713_E20.pth'), 'stored under <model>/<path>');
  await fetchModelFiles('wct-16x', { ...opts, fetch: (async () => { throw new Error('offline'); }) as typeof fetch });
  assert.is(requests, 10, 'the second load is offline');

  const picked: PickedFile[] = list(dir).map((p) => ({ path: `wct-16x/${p}`, source: bytesSource(p, new Uint8Array(readFileSync(join(dir, p)))) }));
  const found = modelFromPickedFiles(picked);
  assert.is(found.spec.name, 'wct-16x');
  assert.is(found.folder, 'wct-16x');
  const m1 = await loadModelFromFiles(gpu, found.spec, found.files, 'folder', [5]);
  const m2 = await loadModelFromFiles(gpu, found.spec, fetched, 'store', [5]);
  try {
    const content = randomImage(48, 40, nextSeed());
    const style = randomImage(40, 36, nextSeed());
    const run = async (m: FeedForwardModel) => stylizeFeedForward(gpu, m, content, await encodeStyle(gpu, m, 'adain', [style], [1], [5]), { alpha: 1 });
    assertSame(await run(m1), await run(m2), 'folder vs store');
  } finally {
    m1.destroy();
    m2.destroy();
  }
  assert.throws(() => modelFromPickedFiles(picked.filter((p) => !p.path.endsWith('20191111-091942_E20.pth'))),
    (e: Error) => e instanceof PainterlyError && /looks like model wct-16x but wct_se_16x_new_sd\/20191111-091942_E20\.pth is missing/.test(e.message));
  assert.throws(() => modelFromPickedFiles([{ path: 'x/a.txt', source: bytesSource('a', new Uint8Array(1)) }]),
    (e: Error) => e instanceof PainterlyError && /holds no known model.*x\/a\.txt/.test(e.message));
});

test.run();
