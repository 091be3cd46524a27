// Where the real model files are (../shared/models from the project root, or $PAINTERLY_SHARED_DIR/models) and what
// its README says about them. CI always has them; locally a missing folder fails the tests unless
// PAINTERLY_ALLOW_SKIP=1 (then each is listed as skipped by name; see test/helpers.ts requireShared).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireShared, SHARED_DIR } from '../helpers.ts';

export const SHARED_MODELS = join(SHARED_DIR, 'models');
export const WCT_DIR = join(SHARED_MODELS, 'wct-16x');

/** True when the wct-16x files are there; otherwise fails the running test, or records it as skipped (requireShared). */
export function haveSharedModels(): boolean {
  return requireShared('models/wct-16x') !== undefined;
}

/** sha256 by relative path, from the README's sha256 block. */
export function readmeSha256(): Map<string, string> {
  const text = readFileSync(join(SHARED_MODELS, 'README.md'), 'utf8');
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^([0-9a-f]{64}) {2}(\S+)$/gm)) out.set(m[2], m[1]);
  return out;
}
