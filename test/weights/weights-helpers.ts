// Shared by the weights tests: error assertions and synthetic VGG19-shaped safetensors files.
import * as assert from 'uvu/assert';
import { PainterlyError } from '../../src/gpu/device.ts';
import { VGG19_CONVS } from '../../src/weights/layout.ts';
import { writeSafetensors, type RawTensor } from '../../src/weights/safetensors.ts';
import { rng } from '../helpers.ts';

/** Awaits a rejection that must be a one-line PainterlyError matching every pattern; returns the message. */
export async function rejects(p: Promise<unknown>, ...patterns: RegExp[]): Promise<string> {
  let err: unknown;
  try { await p; } catch (e) { err = e; }
  if (!(err instanceof PainterlyError)) assert.unreachable(`expected a PainterlyError, got ${err === undefined ? 'success' : String(err)}`);
  const m = (err as Error).message;
  assert.not.ok(m.includes('\n'), `one line: ${m}`);
  for (const re of patterns) assert.ok(re.test(m), `${m}\n  should match ${re}`);
  return m;
}

const BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };

/** Random finite values as raw little-endian bytes of the dtype (bit patterns, so every value is exact). */
export function randomBytes(dtype: string, n: number, seed: number): Uint8Array {
  const r = rng(seed);
  const out = new Uint8Array(n * BYTES[dtype]);
  const dv = new DataView(out.buffer);
  // Random sign and mantissa, exponent within 8 binades below 2 (finite, plausible for weights); one draw each.
  for (let i = 0; i < n; i++) {
    const x = (r() * 4294967296) >>> 0;
    if (dtype === 'F32') dv.setUint32(4 * i, ((x & 0x807fffff) | ((120 + ((x >>> 23) & 7)) << 23)) >>> 0, true);
    else if (dtype === 'F16') dv.setUint16(2 * i, (x & 0x83ff) | ((8 + ((x >>> 10) & 7)) << 10), true);
    else dv.setUint16(2 * i, (x & 0x807f) | ((120 + ((x >>> 7) & 7)) << 7), true);
  }
  return out;
}

export interface VggFileOptions {
  /** Convs (by name) to include with their real shapes; default conv1_1..conv5_1. */
  upTo?: string;
  /** dtype per conv name (default F32). */
  dtype?: (conv: string) => string;
  /** Extra tensors (not needed by the loader). */
  extra?: RawTensor[];
  /** Name prefix (e.g. 'module.'). */
  prefix?: string;
  /** Changes a tensor before writing (wrong shapes, missing tensors...): return undefined to drop it. */
  edit?: (t: RawTensor) => RawTensor | undefined;
}

/** A torchvision-named VGG19 safetensors file with random data, tensors sorted by name as safetensors writers do
 * (so features.10 precedes features.2 and the needed tensors are not one contiguous span). */
export function vggFile(seed: number, o: VggFileOptions = {}): Uint8Array {
  const last = VGG19_CONVS.findIndex((c) => c.name === (o.upTo ?? 'conv5_1'));
  const tensors: RawTensor[] = [];
  let s = seed;
  for (const c of VGG19_CONVS.slice(0, last + 1)) {
    const dtype = o.dtype?.(c.name) ?? 'F32';
    const p = `${o.prefix ?? ''}features.${c.index}`;
    tensors.push({ name: `${p}.weight`, dtype, shape: [c.cout, c.cin, 3, 3], data: randomBytes(dtype, c.cout * c.cin * 9, ++s) });
    tensors.push({ name: `${p}.bias`, dtype, shape: [c.cout], data: randomBytes(dtype, c.cout, ++s) });
  }
  tensors.push(...(o.extra ?? []));
  const edited = tensors.map((t) => (o.edit ? o.edit(t) : t)).filter((t): t is RawTensor => t !== undefined);
  edited.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return writeSafetensors(edited, { format: 'pt' });
}
