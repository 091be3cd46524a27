// Weights for any network description: a checkpoint's tensors (safetensors or PyTorch .pth) picked out by the
// network's name table, every shape checked against the description before anything reaches the GPU; or seeded
// random weights for tests.
import { PainterlyError } from '../gpu/device.ts';
import type { ConvParams, NetDescription, NetWeights, NormParams } from '../nets/describe.ts';
import { convInputChannels, layersUpTo, normChannels } from '../nets/graph.ts';
import { heConv, mulberry32 } from './random.ts';

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
 * The convolutions (and batch norms) of `desc` up to `upTo` from a checkpoint. `tensorName(layer)` is the name table
 * (without prefix); the prefix is found from the first convolution. `altName` gives a second spelling of a tensor's
 * base name that older checkpoints use (DenseNet's `norm.1` for `norm1`). Each tensor's shape is checked against
 * the description (input channels from its graph) before it is decoded. `exact`: the checkpoint must hold this
 * network and nothing more under its prefix (a decoder: an extra tensor means another level's or another model's
 * file); without it extra tensors are expected (classifiers, distillation heads, deeper layers) and ignored.
 */
export async function readNetWeights(
  desc: NetDescription, tensorName: (layer: string) => string, table: TensorTable,
  o: { upTo?: string; source: string; altName?: (base: string) => string; exact?: boolean },
): Promise<NetWeights> {
  const upTo = o.upTo ?? desc.layers.at(-1)!.name;
  const layers = layersUpTo(desc, upTo);
  const convLayers = layers.filter((l) => l.op === 'conv');
  if (convLayers.length === 0) return { convs: new Map(), pretrained: true, source: o.source };
  const first = tensorName(convLayers[0].name);
  const prefix = PREFIXES.find((p) => table.shapes.has(`${p}${first}.weight`));
  if (prefix === undefined) {
    const some = [...table.shapes.keys()].slice(0, 4).join(', ') || 'none';
    throw new PainterlyError(`${table.file}: tensor ${first}.weight (${convLayers[0].name} of ${desc.name}) is missing: ` +
      `this is not a ${desc.name} checkpoint (found ${some}${table.shapes.size > 4 ? ', ...' : ''})`);
  }
  const cins = convInputChannels(desc, upTo);
  const normCh = normChannels(desc, upTo);
  const used = new Set<string>();
  const get = async (layer: string, what: string, want: number[]): Promise<Float32Array> => {
    let name = `${prefix}${tensorName(layer)}.${what}`;
    if (!table.shapes.has(name) && o.altName) {
      const alt = `${prefix}${o.altName(tensorName(layer))}.${what}`;
      if (table.shapes.has(alt)) name = alt;
    }
    const shape = table.shapes.get(name);
    if (!shape) throw new PainterlyError(`${table.file}: tensor ${name} (${layer}) is missing: expected shape [${want}]`);
    if (shape.length !== want.length || shape.some((d, i) => d !== want[i])) {
      throw new PainterlyError(`${table.file}: tensor ${name} (${layer}): expected shape [${want}], found [${shape}]`);
    }
    used.add(name);
    const data = await table.read(name);
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) throw new PainterlyError(`${table.file}: tensor ${name} (${layer}): element ${i} is ${data[i]}, expected finite values`);
    }
    return data;
  };
  const convs = new Map<string, ConvParams>();
  const norms = new Map<string, NormParams>();
  for (const l of layers) {
    if (l.op === 'conv') {
      const cin = cins.get(l.name)!;
      const weight = await get(l.name, 'weight', [l.cout, cin, l.k, l.k]);
      const bias = l.bias === false ? new Float32Array(l.cout) : await get(l.name, 'bias', [l.cout]);
      convs.set(l.name, { name: l.name, cin, cout: l.cout, k: l.k, weight, bias });
    } else if (l.op === 'batchnorm') {
      const C = normCh.get(l.name)!;
      const [weight, bias, mean, variance] = [
        await get(l.name, 'weight', [C]), await get(l.name, 'bias', [C]), await get(l.name, 'running_mean', [C]), await get(l.name, 'running_var', [C]),
      ];
      if (variance.some((v) => v < 0)) throw new PainterlyError(`${table.file}: ${tensorName(l.name)}.running_var has negative values`);
      norms.set(l.name, { name: l.name, channels: C, weight, bias, mean, variance, eps: l.eps ?? 1e-5 });
    }
  }
  if (o.exact) {
    const extra = [...table.shapes.keys()].filter((n) => n.startsWith(prefix) && !used.has(n) && !n.endsWith('.num_batches_tracked'));
    if (extra.length) {
      const convNames = convLayers.map((l) => tensorName(l.name));
      throw new PainterlyError(`${table.file}: tensor ${extra[0]}${extra.length > 1 ? ` (and ${extra.length - 1} more)` : ''} is not part of ` +
        `${desc.name}: expected only the weights and biases of ${convNames[0]}..${convNames.at(-1)} (${convNames.length} convolutions); is this the right checkpoint?`);
    }
  }
  return { convs, norms, pretrained: true, source: o.source };
}

/**
 * Seeded He-initialised weights for every convolution of `desc` up to `upTo` (weight ~ N(0, 2/(cin k k)), bias ~
 * N(0, 0.01²), zero for convs without one); batch norms get statistics near identity (γ ≈ 1, β, μ ≈ 0, σ² ≈ 1, each
 * jittered so a dropped term shows in tests). `channels[i]` replaces cout of conv i (tiny chains only; graphs get
 * small widths from their description). Each layer draws from its own stream.
 */
export function randomNetWeights(desc: NetDescription, seed: number, o: { upTo?: string; channels?: number[] } = {}): NetWeights {
  const upTo = o.upTo ?? desc.layers.at(-1)!.name;
  const layers = layersUpTo(desc, upTo);
  const convLayers = layers.filter((l) => l.op === 'conv');
  if (o.channels && o.channels.length < convLayers.length) {
    throw new PainterlyError(`random weights: channels has ${o.channels.length} entries, expected one per conv of ${desc.name} (${convLayers.length})`);
  }
  if (o.channels && layers.some((l) => l.inputs || l.op === 'batchnorm')) {
    throw new PainterlyError(`random weights: channels overrides only chains of convs; ${desc.name} is a graph`);
  }
  const cins = convInputChannels(desc, upTo);
  const normCh = normChannels(desc, upTo);
  const convs = new Map<string, ConvParams>();
  const norms = new Map<string, NormParams>();
  let cin = desc.inputChannels;
  let i = 0;
  for (const l of layers) {
    if (l.op === 'conv') {
      const c = heConv(seed, i, l.name, o.channels ? cin : cins.get(l.name)!, o.channels?.[i] ?? l.cout, l.k);
      if (l.bias === false) c.bias.fill(0);
      convs.set(l.name, c);
      cin = c.cout;
      i++;
    } else if (l.op === 'batchnorm') {
      const C = normCh.get(l.name)!;
      const next = mulberry32(Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(i + 1000003, 0x85ebca77));
      const u = () => next() / 2 ** 32 - 0.5;
      norms.set(l.name, {
        name: l.name, channels: C, eps: l.eps ?? 1e-5,
        weight: Float32Array.from({ length: C }, () => 1 + 0.2 * u()), bias: Float32Array.from({ length: C }, () => 0.2 * u()),
        mean: Float32Array.from({ length: C }, () => 0.2 * u()), variance: Float32Array.from({ length: C }, () => 1 + 0.4 * u()),
      });
      i++;
    }
  }
  return { convs, norms, pretrained: false, source: `random He-initialized ${desc.name} weights (seed ${seed}), NOT pretrained` };
}
