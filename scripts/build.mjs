#!/usr/bin/env node
// Builds the library bundles and the web page with esbuild, and the libraries' declarations with tsc.
//   node scripts/build.mjs            dist/node/painterly.js, dist/browser/painterly.js, dist/types/, dist/web/
//   node scripts/build.mjs web        only the page (npm run web)
//   node scripts/build.mjs --serve [--port N]   the page, rebuilt on change and served on 127.0.0.1 (npm run serve)
// .wgsl files are bundled as text. The browser bundles must not pull in Node-only modules: cache-node.ts and
// node-io.ts (reached only through dynamic imports on Node-only paths) are replaced by a stub that throws, and so are
// Node's built-in modules (node:fs, node:path: dynamic imports on the Node-only paths of e.g. ff-load.ts).
import { spawn } from 'node:child_process';
import { cp, mkdir, readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const at = (...p) => join(root, ...p);

const NODE_ONLY = /(^|[\\/])(cache-node|node-io)\.ts$|^node:/;
const nodeOnlyStub = {
  name: 'node-only-stub',
  setup(build) {
    build.onResolve({ filter: NODE_ONLY }, (args) => ({ path: args.path, namespace: 'node-only' }));
    build.onLoad({ filter: /.*/, namespace: 'node-only' }, (args) => ({
      loader: 'js',
      contents: `export {}; throw new Error(${JSON.stringify(`painterly: ${args.path} needs Node and is not part of the browser build`)});`,
    }));
  },
};

/**
 * pngjs needs Node's zlib and streams (its browserified build fails on plain Uint8Arrays), so browser bundles get a
 * stub: pages decode and encode PNG with the browser's own codecs (createImageBitmap, canvas.toBlob). JPEG (jpeg-js)
 * is plain JavaScript and is bundled, so JPEG pixels in a page are bit-identical to Node's.
 */
const pngjsStub = {
  name: 'pngjs-stub',
  setup(build) {
    build.onResolve({ filter: /^pngjs$/ }, () => ({ path: 'pngjs', namespace: 'pngjs-stub' }));
    build.onLoad({ filter: /.*/, namespace: 'pngjs-stub' }, () => ({
      loader: 'js',
      contents: `const no = () => { throw new Error('PNG through pngjs is not in the browser build: use createImageBitmap / canvas.toBlob'); };
        export const PNG = { sync: { read: no, write: no } };`,
    }));
  },
};

const common = {
  bundle: true,
  format: 'esm',
  loader: { '.wgsl': 'text' },
  sourcemap: true,
  logLevel: 'warning',
  legalComments: 'none',
};

const browserOptions = {
  ...common,
  platform: 'browser',
  target: ['chrome113', 'safari17', 'firefox121'],
  plugins: [nodeOnlyStub, pngjsStub],
  define: { 'process.env.NODE_ENV': '"production"' },
};

export function webOptions(outdir = at('dist/web')) {
  return { ...browserOptions, entryPoints: { app: at('web/app.ts') }, outdir, minify: true };
}

/** Copies the page's static files (HTML, CSS, example images and their licence table). */
export async function copyStatic(outdir = at('dist/web')) {
  await mkdir(join(outdir, 'examples'), { recursive: true });
  for (const f of await readdir(at('web'))) {
    if (!f.endsWith('.ts')) await cp(at('web', f), join(outdir, f), { recursive: true });
  }
  for (const f of await readdir(at('examples'))) {
    if (/\.(jpe?g|png|md)$/i.test(f)) await cp(at('examples', f), join(outdir, 'examples', f));
  }
}

export async function buildWeb(outdir = at('dist/web')) {
  await rm(outdir, { recursive: true, force: true });
  await esbuild.build(webOptions(outdir));
  await copyStatic(outdir);
}

/**
 * dist/types/: declarations of src/node.ts and src/browser.ts (and what they reach) for the package's `types`
 * (tsconfig.dts.json). TypeScript keeps the sources' `./x.ts` specifiers in them, which TypeScript 5.0+ resolves to
 * the `./x.d.ts` beside them under every moduleResolution (test/package/pack.test.ts checks node16 and bundler).
 */
async function buildTypes() {
  await rm(at('dist/types'), { recursive: true, force: true });
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const code = await new Promise((done, fail) => {
    const p = spawn(process.execPath, [tsc, '-p', at('tsconfig.dts.json')], { cwd: root, stdio: 'inherit' });
    p.on('error', fail);
    p.on('close', done);
  });
  if (code !== 0) throw new Error(`tsc -p tsconfig.dts.json failed (exit ${code})`);
}

async function buildLibraries() {
  await Promise.all([buildTypes(), bundleLibraries()]); // tsc is a child process: it runs beside esbuild
}

async function bundleLibraries() {
  await esbuild.build({
    ...browserOptions, entryPoints: [at('src/browser.ts')], outfile: at('dist/browser/painterly.js'),
  });
  if (existsSync(at('src/node.ts'))) {
    await esbuild.build({
      ...common, platform: 'node', target: 'node20', packages: 'external',
      entryPoints: [at('src/node.ts')], outfile: at('dist/node/painterly.js'),
    });
    // The `painterly` command (bin/painterly.js runs it when built, the sources otherwise).
    await esbuild.build({
      ...common, platform: 'node', target: 'node20', packages: 'external',
      entryPoints: [at('src/cli/main.ts')], outfile: at('dist/node/cli.js'),
    });
  }
}

async function serve(port) {
  const outdir = at('dist/web');
  await rm(outdir, { recursive: true, force: true });
  await copyStatic(outdir);
  const ctx = await esbuild.context({
    ...webOptions(outdir),
    minify: false,
    plugins: [...browserOptions.plugins, { name: 'static', setup: (b) => b.onEnd(() => copyStatic(outdir)) }],
  });
  await ctx.watch();
  const { hosts, port: p } = await ctx.serve({ servedir: outdir, host: '127.0.0.1', port });
  console.log(`painterly web: http://${hosts[0]}:${p}/ (rebuilds on change; Ctrl-C stops)`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const t0 = performance.now();
  try {
    if (args.includes('--serve')) {
      const i = args.indexOf('--port');
      await serve(i >= 0 ? Number(args[i + 1]) : 8000);
    } else {
      const what = args.filter((a) => !a.startsWith('-'));
      if (what.length === 0 || what.includes('lib')) await buildLibraries();
      if (what.length === 0 || what.includes('web')) await buildWeb();
      console.log(`built ${what.length ? what.join(', ') : 'lib, web'} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  } catch (e) {
    if (!e.errors) console.error(e);
    process.exit(1);
  }
}
