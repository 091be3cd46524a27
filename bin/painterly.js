#!/usr/bin/env node
// The `painterly` command. Runs the built bundle when present (installed package), else the TypeScript sources
// through the project's loader (a development checkout).
import { existsSync } from 'node:fs';
import { register } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const built = fileURLToPath(new URL('../dist/node/cli.js', import.meta.url));
let main;
if (existsSync(built) && process.env.PAINTERLY_FROM_SOURCE !== '1') {
  ({ main } = await import(pathToFileURL(built).href));
} else {
  register('../scripts/loader-hooks.mjs', import.meta.url);
  ({ main } = await import('../src/cli/main.ts'));
}
process.exitCode = await main(process.argv.slice(2));
// Dawn can keep the event loop alive after the device is gone.
setTimeout(() => process.exit(process.exitCode), 50).unref();
