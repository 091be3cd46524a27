#!/usr/bin/env node
// The `painterly` command. In a development checkout (sources and esbuild present) it runs the TypeScript sources
// through the project's loader, so it never runs a stale build; an installed package runs the built bundle.
import { existsSync } from 'node:fs';
import { register } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const at = (p) => fileURLToPath(new URL(p, import.meta.url));
const dev = existsSync(at('../src/cli/main.ts')) && existsSync(at('../node_modules/esbuild/package.json'));
let main;
if (dev || process.env.PAINTERLY_FROM_SOURCE === '1') {
  register('../scripts/loader-hooks.mjs', import.meta.url);
  ({ main } = await import('../src/cli/main.ts'));
} else {
  ({ main } = await import(pathToFileURL(at('../dist/node/cli.js')).href));
}
process.exitCode = await main(process.argv.slice(2));
// Dawn can keep the event loop alive after the device is gone.
setTimeout(() => process.exit(process.exitCode), 50).unref();
