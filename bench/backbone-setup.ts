// Shared by bench/backbone-compare.ts and bench/backbones.ts: run bench/torch_backbone.py for a backbone (it writes
// torchvision's network with seeded random weights as safetensors, the images, and prints its results), then build
// Painterly's Gatys objective on the same weights and images, read through --weights' own reader.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Gpu } from '../src/gpu/device.ts';
import { createTensor, uploadTensor, type Tensor } from '../src/gpu/tensor.ts';
import { BACKBONES, type BackboneName } from '../src/nets/backbones.ts';
import { createNetwork, deepest } from '../src/nets/executor.ts';
import { GatysObjective, type LossConfig } from '../src/style/objective.ts';
import { contentTargets, styleTargets } from '../src/style/targets.ts';
import { featureTransformOf } from '../src/style/transform.ts';
import { loadBackboneWeights } from '../src/weights/backbone-weights.ts';

export interface BackboneRun {
  /** What torch_backbone.py printed (its JSON line). */
  torch: Record<string, any>;
  cfg: LossConfig;
  obj: GatysObjective;
  x: Tensor;
  grad: Tensor;
  /** A file torch_backbone.py wrote, as raw bytes. */
  file(name: string): Uint8Array;
  destroy(): void;
}

/** The Gatys loss at `name`'s default layers ('paper' normalisation); `softmax` > 0 turns the transform on. */
export async function backboneRun(
  gpu: Gpu, name: BackboneName, size: number, o: { softmax?: number; time?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<BackboneRun> {
  const bb = BACKBONES[name];
  const { contentLayers, styleLayers } = bb.defaults;
  const work = mkdtempSync(join(tmpdir(), `painterly-${name}-`));
  const r = spawnSync('/usr/bin/python3', ['bench/torch_backbone.py', '--backbone', name, '--size', String(size), '--out', work,
    '--content-layers', contentLayers.join(','), '--style-layers', styleLayers.join(','),
    '--softmax', String(o.softmax ?? 0), '--time', String(o.time ?? 0)], { encoding: 'utf8', env: o.env ?? process.env });
  if (r.status !== 0) throw new Error(`torch_backbone.py failed: ${r.stderr}`);
  const torch = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  const { h, w } = torch;
  const file = (f: string) => new Uint8Array(readFileSync(join(work, f)));
  const net = createNetwork(gpu, bb.desc, await loadBackboneWeights(name, join(work, 'weights.safetensors'), { upTo: deepest(bb.desc, [...contentLayers, ...styleLayers]) }));
  const cfg: LossConfig = {
    contentLayers, styleLayers, styleLayerWeights: styleLayers.map(() => 1 / styleLayers.length),
    contentWeight: 1, styleWeight: 1e3, tvWeight: 1e-3, normalization: 'paper',
    featureTransform: o.softmax ? 'softmax' : 'none', softmaxTemperature: o.softmax || 1,
  };
  const transform = featureTransformOf(cfg);
  const image = (f: string) => uploadTensor(gpu, new Float32Array(file(f).buffer), [3, h, w], f);
  const [content, style, x] = [image('content.f32'), image('style.f32'), image('x.f32')];
  const P = contentTargets(gpu, net, content, contentLayers, 'max', transform);
  const A = await styleTargets(gpu, net, [style], [1], styleLayers, 'max', h, w, transform);
  const obj = new GatysObjective(gpu, net, h, w, 'max', cfg, { content: P, style: A });
  const grad = createTensor(gpu, [3, h, w], 'grad');
  return {
    torch, cfg, obj, x, grad, file,
    destroy: () => {
      obj.destroy();
      net.destroy();
      for (const t of [content, style, x, grad, ...P.values(), ...A.values()]) t.buffer.destroy();
      rmSync(work, { recursive: true, force: true });
    },
  };
}
