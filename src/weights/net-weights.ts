// Weights for any network description: a checkpoint's tensors (safetensors or PyTorch .pth) picked out by the
// network's name table, every shape checked against the description before anything reaches the GPU; or seeded
// random weights for tests.
import { PainterlyError } from '../gpu/device.ts';
import type { ConvParams, NetDescription, NetWeights } from '../nets/describe.ts';
import { layersUpTo } from '../nets/executor.ts';
import { heConv } from './random.ts';

/** A checkpoint's tensors by name, decoded on demand. */
export interface TensorTable {
  /** The file, for messages. */
  file: string;
  shapes: Map<string, number[]>;
  read(name: string): Promise<Float32Array>;
}

/** Prefixes checkpoints put before a network's own tensor names (wrappers, DataParallel, training dicts). */
const PREFIXES = ['', 'model.', 'module.', 'state_dict.', 'model.module.', 'net.', 'params.'];

/**
 * The convolutions of `desc` up to `upTo` from a checkpoint. `tensorName(layer)` is the name table (without prefix);
 * the prefix is found from the first convolution. Channel counts are checked layer by layer against the description.
 */
export async function readNetWeights(
  desc: NetDescription, tensorName: (layer: string) => string, table: TensorTable, o: { upTo?: string; source: string },
): Promise<NetWeights> {
  const layers = o.upTo ? layersUpTo(desc, o.upTo) : desc.layers;
  const convLayers = layers.filter((l) => l.op === 'conv');
  if (convLayers.length === 0) return { convs: new Map(), pretrained: true, source: o.source };
  const first = tensorName(convLayers[0].name);
  const prefix = PREFIXES.find((p) => table.shapes.has(`${p}${first}.weight`));
  if (prefix === undefined) {
    const some = [...table.shapes.keys()].slice(0, 4).join(', ') || 'none';
    throw new PainterlyError(`${table.file}: tensor ${first}.weight (${convLayers[0].name} of ${desc.name}) is missing: ` +
      `this is not a ${desc.name} checkpoint (found ${some}${table.shapes.size > 4 ? ', ...' : ''})`);
  }
  const convs = new Map<string, ConvParams>();
  let c = desc.inputChannels;
  for (const l of layers) {
    if (l.op !== 'conv') continue;
    const base = `${prefix}${tensorName(l.name)}`;
    const want = { weight: [l.cout, c, l.k, l.k], bias: [l.cout] };
    const get = async (what: 'weight' | 'bias') => {
      const name = `${base}.${what}`;
      const shape = table.shapes.get(name);
      if (!shape) throw new PainterlyError(`${table.file}: tensor ${name} (${l.name}) is missing: expected shape [${want[what]}]`);
      if (shape.length !== want[what].length || shape.some((d, i) => d !== want[what][i])) {
        throw new PainterlyError(`${table.file}: tensor ${name} (${l.name}): expected shape [${want[what]}], found [${shape}]`);
      }
      const data = await table.read(name);
      for (let i = 0; i < data.length; i++) {
        if (!Number.isFinite(data[i])) throw new PainterlyError(`${table.file}: tensor ${name} (${l.name}): element ${i} is ${data[i]}, expected finite values`);
      }
      return data;
    };
    convs.set(l.name, { name: l.name, cin: c, cout: l.cout, k: l.k, weight: await get('weight'), bias: await get('bias') });
    c = l.cout;
  }
  return { convs, pretrained: true, source: o.source };
}

/**
 * Seeded He-initialised weights for every convolution of `desc` up to `upTo` (weight ~ N(0, 2/(cin k k)), bias ~
 * N(0, 0.01²)); `channels[i]` replaces cout of conv i (tiny test networks). Each conv draws from its own stream.
 */
export function randomNetWeights(desc: NetDescription, seed: number, o: { upTo?: string; channels?: number[] } = {}): NetWeights {
  const layers = (o.upTo ? layersUpTo(desc, o.upTo) : desc.layers).filter((l) => l.op === 'conv');
  if (o.channels && o.channels.length < layers.length) {
    throw new PainterlyError(`random weights: channels has ${o.channels.length} entries, expected one per conv of ${desc.name} (${layers.length})`);
  }
  const convs = new Map<string, ConvParams>();
  let cin = desc.inputChannels;
  layers.forEach((l, i) => {
    if (l.op !== 'conv') return;
    const c = heConv(seed, i, l.name, cin, o.channels?.[i] ?? l.cout, l.k);
    convs.set(l.name, c);
    cin = c.cout;
  });
  return { convs, pretrained: false, source: `random He-initialized ${desc.name} weights (seed ${seed}), NOT pretrained` };
}
