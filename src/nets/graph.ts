// The graph of a description (describe.ts), without the GPU: which layers each layer reads, aliases, output
// shapes, and the smallest image a layer allows. Shared by the executor, the float64 reference and the planners.
import { PainterlyError } from '../gpu/device.ts';
import type { LayerSpec, NetDescription } from './describe.ts';

/** A layer with the names of the layers it reads ([] for the first layer, which reads the image). */
export interface Node {
  spec: LayerSpec;
  name: string;
  inputs: string[];
}

/** The canonical name of a layer (descriptions may give aliases, e.g. ResNet's `layer3.5` for `layer3`). */
export function resolveLayer(desc: NetDescription, name: string): string {
  return desc.aliases?.[name] ?? name;
}

/** The layers from the input up to and including `name` (an alias is resolved), in description order. */
export function layersUpTo(desc: NetDescription, name: string, what = 'layer'): LayerSpec[] {
  const target = resolveLayer(desc, name);
  const i = desc.layers.findIndex((l) => l.name === target);
  if (i < 0) throw new PainterlyError(`unknown ${what} "${name}" for ${desc.name}; valid: ${describeNames(desc)}`);
  return desc.layers.slice(0, i + 1);
}

/** A compact list of a description's layer names for error messages (runs like conv1_1..conv1_2 kept short). */
export function describeNames(desc: NetDescription): string {
  if (desc.layers.length > 60) {
    const named = Object.keys(desc.aliases ?? {});
    const shown = desc.layers.filter((l) => l.op === 'relu' || l.op === 'pool' || l.op === 'concat').map((l) => l.name);
    const all = [...new Set([...shown, ...named])];
    return all.length > 40 ? `${all.slice(0, 40).join(', ')}, ... (${all.length} in all)` : all.join(', ');
  }
  const byOp = new Map<string, string[]>();
  for (const l of desc.layers) byOp.set(l.op, [...(byOp.get(l.op) ?? []), l.name]);
  return [...byOp.entries()].filter(([op]) => op !== 'normalize')
    .map(([, names]) => (names.length > 2 ? `${names[0]}..${names[names.length - 1]}` : names.join(', '))).join(', ');
}

/** The layers up to `upTo` with their inputs resolved; checks that every input exists earlier and arities fit. */
export function graphOf(desc: NetDescription, layers: LayerSpec[] = desc.layers): Node[] {
  const seen = new Set<string>();
  return layers.map((spec, i) => {
    if (seen.has(spec.name)) throw new PainterlyError(`${desc.name}: layer name ${spec.name} is used twice`);
    const inputs = spec.inputs ? spec.inputs.map((n) => resolveLayer(desc, n)) : i > 0 ? [layers[i - 1].name] : [];
    if (i === 0 && spec.inputs?.length) throw new PainterlyError(`${desc.name}: the first layer ${spec.name} reads the image and takes no inputs`);
    for (const n of inputs) if (!seen.has(n)) throw new PainterlyError(`${desc.name}: ${spec.name} reads ${n}, which is not an earlier layer`);
    const arity = spec.op === 'add' ? 2 : spec.op === 'concat' ? -1 : 1;
    if (i > 0 && (arity === -1 ? inputs.length < 2 : inputs.length !== arity)) {
      throw new PainterlyError(`${desc.name}: ${spec.name} (${spec.op}) reads ${inputs.length} layers, expected ${arity === -1 ? 'two or more' : arity}`);
    }
    seen.add(spec.name);
    return { spec, name: spec.name, inputs };
  });
}

/** For each layer, the layers (within `nodes`) that read it. */
export function consumersOf(nodes: Node[]): Map<string, string[]> {
  const c = new Map<string, string[]>(nodes.map((n) => [n.name, []]));
  for (const n of nodes) for (const i of n.inputs) c.get(i)!.push(n.name);
  return c;
}

/** floor((n + 2p − k)/s) + 1, or PyTorch's ceil_mode rule (the last window must start inside the input or left pad). */
export function slidingSize(n: number, k: number, s: number, p: number, ceil = false): number {
  if (!ceil) return Math.floor((n + 2 * p - k) / s) + 1;
  let o = Math.ceil((n + 2 * p - k) / s) + 1;
  if ((o - 1) * s >= n + p) o--;
  return o;
}

/** Stride and zero padding of a conv layer (defaults: 1 and "same", (k−1)/2). */
export function convGeometry(l: LayerSpec & { op: 'conv' }): { stride: number; padding: number } {
  return { stride: l.stride ?? 1, padding: l.padding ?? (l.k - 1) / 2 };
}

/** Kernel, stride and padding of a pool layer (defaults: 2, 2, 0). */
export function poolGeometry(l: LayerSpec & { op: 'pool' }): { kernel: number; stride: number; padding: number; ceil: boolean } {
  return { kernel: l.kernel ?? 2, stride: l.stride ?? 2, padding: l.padding ?? 0, ceil: !!l.ceil };
}

/**
 * [C,H,W] of every layer's output up to `upTo` for an h x w input, or the first layer the size is too small for.
 * `cin`/`cout` give a conv's channel counts when weights are loaded (checked against what reaches it).
 */
export function shapesOf(
  desc: NetDescription, h: number, w: number, upTo: string, convs?: Map<string, { cin: number; cout: number }>,
): { shapes: Map<string, number[]>; tooSmall?: string } {
  const shapes = new Map<string, number[]>();
  for (const n of graphOf(desc, layersUpTo(desc, upTo))) {
    const l = n.spec;
    const ins = n.inputs.map((i) => shapes.get(i)!);
    let [c, H, W] = ins[0] ?? [desc.inputChannels, h, w];
    switch (l.op) {
      case 'conv': {
        const { stride, padding } = convGeometry(l);
        if (l.pad === 'reflect' && Math.min(H, W) <= padding) return { shapes, tooSmall: l.name };
        const cv = convs?.get(l.name);
        if (cv && cv.cin !== c) throw new PainterlyError(`${desc.name}: ${l.name} expects ${cv.cin} input channels, the layer before gives ${c}`);
        [c, H, W] = [cv?.cout ?? l.cout, slidingSize(H, l.k, stride, padding), slidingSize(W, l.k, stride, padding)];
        break;
      }
      case 'pool': {
        const g = poolGeometry(l);
        [H, W] = [slidingSize(H, g.kernel, g.stride, g.padding, g.ceil), slidingSize(W, g.kernel, g.stride, g.padding, g.ceil)];
        break;
      }
      case 'upsample': [H, W] = [2 * H, 2 * W]; break;
      case 'add':
        if (ins[1].some((v, k) => v !== ins[0][k])) throw new PainterlyError(`${desc.name}: ${l.name} adds [${ins[0]}] and [${ins[1]}]`);
        break;
      case 'concat':
        if (ins.some((s) => s[1] !== H || s[2] !== W)) return { shapes, tooSmall: l.name };
        c = ins.reduce((a, s) => a + s[0], 0);
        break;
      default: break;
    }
    if (H < 1 || W < 1) return { shapes, tooSmall: l.name };
    shapes.set(l.name, [c, H, W]);
  }
  return { shapes };
}

/** Smallest square image side that leaves at least one position at `name` (and room for each reflection pad). */
export function minimumSide(desc: NetDescription, name: string): number {
  for (let n = 1; n <= 65536; n = n < 64 ? n + 1 : n + Math.ceil(n / 64)) {
    if (!shapesOf(desc, n, n, name).tooSmall) {
      let lo = Math.max(1, n - Math.ceil(n / 64));
      while (lo < n && shapesOf(desc, lo, lo, name).tooSmall) lo++;
      return lo;
    }
  }
  throw new PainterlyError(`${desc.name}: no image size leaves a position at ${name}`);
}

/** Channels entering and leaving each layer up to `upTo` (the description's own counts). */
function channelsOf(desc: NetDescription, upTo: string): { node: Node; cin: number; cout: number }[] {
  const out = new Map<string, number>();
  return graphOf(desc, layersUpTo(desc, upTo)).map((node) => {
    const cin = node.inputs.length ? out.get(node.inputs[0])! : desc.inputChannels;
    const cout = node.spec.op === 'conv' ? node.spec.cout
      : node.spec.op === 'concat' ? node.inputs.reduce((a, i) => a + out.get(i)!, 0) : cin;
    out.set(node.name, cout);
    return { node, cin, cout };
  });
}

/** Which input channels each conv up to `upTo` receives. */
export function convInputChannels(desc: NetDescription, upTo: string): Map<string, number> {
  return new Map(channelsOf(desc, upTo).filter((l) => l.node.spec.op === 'conv').map((l) => [l.node.name, l.cin]));
}

/** Channels entering each batch-norm layer up to `upTo`. */
export function normChannels(desc: NetDescription, upTo: string): Map<string, number> {
  return new Map(channelsOf(desc, upTo).filter((l) => l.node.spec.op === 'batchnorm').map((l) => [l.node.name, l.cin]));
}
