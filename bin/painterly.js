#!/usr/bin/env node
// The `painterly` command. In a development checkout (sources and esbuild present) it runs the TypeScript sources
// through the project's loader, so it never runs a stale build; an installed package runs the built bundle.
//
// Dawn prints two "maxDynamic...BuffersPerPipelineLayout artificially reduced" warnings straight to file
// descriptor 2 when it enumerates adapters whose Vulkan driver reports huge dynamic-buffer counts (lavapipe:
// 1,000,000). No Dawn option or requested limit avoids them and Node cannot redirect its own descriptor 2, so the
// commands that open the GPU run in a child process whose stderr is passed through here without those lines
// (--verbose shows everything). The child has its own session, so a terminal's Ctrl-C reaches it once, forwarded.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { register } from 'node:module';
import { constants } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';

const at = (p) => fileURLToPath(new URL(p, import.meta.url));
const argv = process.argv.slice(2);
const usesGpu = ['stylize', 'info', 'study'].includes(argv[0]) && !argv.some((a) => ['--verbose', '--help', '-h'].includes(a));

if (usesGpu && process.env.PAINTERLY_STDERR_FILTERED !== '1') {
  const tty = !!process.stderr.isTTY;
  const child = spawn(process.execPath, [...process.execArgv, at('painterly.js'), ...argv], {
    stdio: ['ignore', 'inherit', 'pipe'],
    detached: true,
    env: {
      ...process.env, PAINTERLY_STDERR_FILTERED: '1',
      ...(tty ? { PAINTERLY_STDERR_TTY: '1', PAINTERLY_STDERR_COLUMNS: String(process.stderr.columns || 0) } : {}),
    },
  });
  const DAWN_WARNING = /^Warning: maxDynamic(Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.\r?$/;
  const PREFIX = 'Warning: maxDynamic';
  let pending = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    const lines = (pending + chunk).split('\n');
    const last = lines.pop();
    let out = lines.filter((l) => !DAWN_WARNING.test(l)).map((l) => `${l}\n`).join('');
    // An unfinished line waits only if it may become a warning (progress bars redraw without newlines).
    if (PREFIX.startsWith(last) || last.startsWith(PREFIX)) pending = last;
    else { out += last; pending = ''; }
    if (out) process.stderr.write(out);
  });
  const forward = (sig) => () => { try { child.kill(sig); } catch { /* already gone */ } };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, forward(sig));
  child.on('error', (e) => { process.stderr.write(`painterly: cannot start ${process.execPath}: ${e.message}\n`); process.exit(1); });
  child.on('close', (code, signal) => {
    if (pending && !DAWN_WARNING.test(pending)) process.stderr.write(pending);
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
      setTimeout(() => process.exit(128 + (constants.signals[signal] ?? 0)), 100).unref();
    } else {
      process.exit(code ?? 1);
    }
  });
} else {
  if (process.env.PAINTERLY_STDERR_TTY === '1') {
    // Our stderr is the parent's pipe to a terminal: draw progress as on the terminal.
    Object.defineProperty(process.stderr, 'isTTY', { value: true });
    process.stderr.columns = Number(process.env.PAINTERLY_STDERR_COLUMNS) || 160;
  }
  const dev = existsSync(at('../src/cli/main.ts')) && existsSync(at('../node_modules/esbuild/package.json'));
  let main;
  if (dev || process.env.PAINTERLY_FROM_SOURCE === '1') {
    register('../scripts/loader-hooks.mjs', import.meta.url);
    ({ main } = await import('../src/cli/main.ts'));
  } else {
    ({ main } = await import(pathToFileURL(at('../dist/node/cli.js')).href));
  }
  process.exitCode = await main(argv);
  // Dawn can keep the event loop alive after the device is gone.
  setTimeout(() => process.exit(process.exitCode), 50).unref();
}
