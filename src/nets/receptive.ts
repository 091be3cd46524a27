// Receptive fields of a layer chain, from its description alone (for spatial tiling).
//
// Per axis, in units of the chain's input positions (pixels for a network that reads an image). A position j of a
// layer at scale s covers the input interval [j·s, (j+1)·s), its "footprint"; s doubles at each pooling and halves
// at each nearest upsampling. Its value depends only on input positions within `radius` of its footprint:
//   conv k x k (stride 1, "same")  radius += (k−1)/2 · s       (zero or reflection padding alike; see below)
//   pool 2x2 stride 2              s *= 2                      (the window is the new footprint; ceil_mode is the
//                                                               same as floor when 2 divides the size)
//   upsample x2 (nearest)          s /= 2, radius += s         (a child reads its parent, whose footprint reaches
//                                                               up to one child footprint (new s) beyond its own)
//   relu, normalize                nothing
// Tiling argument: a position computed inside a tile equals the untiled one when the part of its cone inside the
// image lies inside the tile and the tile's edges that cut the cone are real image edges (padding, zero or
// reflection, then sees the same values as in the whole image), provided tile and image share the pooling grid
// (tiles start at multiples of the largest scale).
import { PainterlyError } from '../gpu/device.ts';
import type { NetDescription } from './describe.ts';

export interface Field {
  /** Input positions per position of this layer (2^poolings / 2^upsamplings). */
  scale: number;
  /** How far beyond its footprint (input positions) a position's value can depend on the input. */
  radius: number;
}

/**
 * Scale and radius of every layer of `desc` up to `upTo` (default: all), starting from `from` (default: the input
 * itself, {scale: 1, radius: 0}); pass a previous chain's last field to compose chains (encoder, then decoder).
 */
export function receptiveFields(desc: NetDescription, upTo?: string, from: Field = { scale: 1, radius: 0 }): Map<string, Field> {
  const end = upTo === undefined ? desc.layers.length - 1 : desc.layers.findIndex((l) => l.name === upTo);
  if (end < 0) throw new PainterlyError(`receptiveFields: ${desc.name} has no layer "${upTo}"`);
  let { scale, radius } = from;
  const out = new Map<string, Field>();
  for (const l of desc.layers.slice(0, end + 1)) {
    // Tiling is derived for chains of stride-1 "same" convs and 2x2 poolings; anything else is refused plainly.
    const plain = !l.inputs && (l.op !== 'conv' || ((l.stride ?? 1) === 1 && (l.padding ?? (l.k - 1) / 2) === (l.k - 1) / 2)) &&
      (l.op !== 'pool' || ((l.kernel ?? 2) === 2 && (l.stride ?? 2) === 2 && !l.padding)) && l.op !== 'add' && l.op !== 'concat';
    if (!plain) throw new PainterlyError(`${desc.name} cannot run in tiles (its ${l.name} is a ${l.op} layer tiling does not handle); use a smaller --size or a larger --max-memory`);
    if (l.op === 'conv') radius += ((l.k - 1) / 2) * scale;
    else if (l.op === 'pool') scale *= 2;
    else if (l.op === 'upsample') { scale /= 2; radius += scale; }
    out.set(l.name, { scale, radius });
  }
  return out;
}

/** The field of a chain's last layer (`upTo`, default the last of the description). */
export function receptiveField(desc: NetDescription, upTo?: string, from?: Field): Field {
  const f = receptiveFields(desc, upTo, from);
  return [...f.values()].at(-1) ?? from ?? { scale: 1, radius: 0 };
}

/**
 * The input positions whose values a position `j` of a layer with field `f` can depend on, [lo, hi) clipped to
 * [0, n): the input positions whose footprint [i, i+1) meets [j·s − r, (j+1)·s + r).
 */
export function dependencySpan(f: Field, j: number, n: number): [number, number] {
  return [Math.max(0, Math.floor(j * f.scale - f.radius)), Math.min(n, Math.ceil((j + 1) * f.scale + f.radius))];
}
