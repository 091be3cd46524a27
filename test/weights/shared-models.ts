// Where the real model files are (../shared/models from the project root) and what its README says about them.
// CI always has them; locally a missing folder fails the tests unless PAINTERLY_ALLOW_SKIP=1.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SHARED_MODELS = resolve(dirname(fileURLToPath(import.meta.url)), '../../../shared/models');
export const WCT_DIR = join(SHARED_MODELS, 'wct-16x');

/** True when the files are there; otherwise throws, or with PAINTERLY_ALLOW_SKIP=1 prints that `what` was skipped. */
export function haveSharedModels(what: string): boolean {
  if (existsSync(WCT_DIR)) return true;
  if (process.env.PAINTERLY_ALLOW_SKIP === '1') {
    console.log(`SKIPPED: ${what}: ${WCT_DIR} is absent (PAINTERLY_ALLOW_SKIP=1)`);
    return false;
  }
  throw new Error(`${WCT_DIR} is absent: the real-model tests need ../shared/models (set PAINTERLY_ALLOW_SKIP=1 to skip them)`);
}

/** sha256 by relative path, from the README's sha256 block. */
export function readmeSha256(): Map<string, string> {
  const text = readFileSync(join(SHARED_MODELS, 'README.md'), 'utf8');
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^([0-9a-f]{64}) {2}(\S+)$/gm)) out.set(m[2], m[1]);
  return out;
}
