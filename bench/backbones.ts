// Seconds per Gatys evaluation (forward, losses, backward to the image) on each backbone with its default layers,
// side by side with PyTorch on the CPU (bench/torch_backbone.py: torchvision's networks, the same random weights,
// which Painterly reads from the safetensors file torch wrote). Painterly's VGG19 runs with max pooling here, as
// torchvision's does. Run it alone.
//   node scripts/run-ts.mjs bench/backbones.ts [--sizes 128,256] [--runs 3] [--backbones vgg19,vgg19_bn,resnet50,densenet121]
//        [--openblas DIR] (torch with that OpenBLAS: LD_LIBRARY_PATH=DIR, OPENBLAS_NUM_THREADS for that process only)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openDawnGpu } from '../src/gpu/dawn.ts';
import { createTensor, uploadTensor } from '../src/gpu/tensor.ts';
import { BACKBONES, type BackboneName } from '../src/nets/backbones.ts';
import { createNetwork, deepest } from '../src/nets/executor.ts';
import { GatysObjective, type LossConfig } from '../src/style/objective.ts';
import { contentTargets, styleTargets } from '../src/style/targets.ts';
import { loadBackboneWeights } from '../src/weights/backbone-weights.ts';

const args = process.argv.slice(2);
const flag = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const sizes = flag('sizes', '256').split(',').map(Number);
const runs = Number(flag('runs', '3'));
const names = flag('backbones', 'vgg19,vgg19_bn,resnet50,densenet121').split(',') as BackboneName[];
const openblas = args.includes('--openblas') ? resolve(flag('openblas', '')) : undefined;
if (openblas && !existsSync(join(openblas, 'libblas.so.3'))) throw new Error(`--openblas ${openblas}: no libblas.so.3 there`);
const env = openblas ? { ...process.env, LD_LIBRARY_PATH: openblas, OPENBLAS_NUM_THREADS: '2' } : process.env;
const gpu = await openDawnGpu();
console.log(`device: ${gpu.describe()}; PyTorch on ${openblas ? `OpenBLAS (${openblas})` : "Debian's default BLAS"}; median of ${runs} after a warm-up\n`);
const rows: string[] = [];

for (const size of sizes) {
  for (const name of names) {
    const bb = BACKBONES[name];
    const { contentLayers, styleLayers } = bb.defaults;
    const work = mkdtempSync(join(tmpdir(), `painterly-${name}-`));
    const r = spawnSync('/usr/bin/python3', ['bench/torch_backbone.py', '--backbone', name, '--size', String(size), '--out', work,
      '--content-layers', contentLayers.join(','), '--style-layers', styleLayers.join(','), '--time', String(runs)], { encoding: 'utf8', env });
    if (r.status !== 0) throw new Error(`torch_backbone.py failed: ${r.stderr}`);
    const torch = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    const { h, w } = torch;
    const raw = (f: string) => new Float32Array(new Uint8Array(readFileSync(join(work, f))).buffer);
    const upTo = deepest(bb.desc, [...contentLayers, ...styleLayers]);
    const net = createNetwork(gpu, bb.desc, await loadBackboneWeights(name, join(work, 'weights.safetensors'), { upTo }));
    const cfg: LossConfig = {
      contentLayers, styleLayers, styleLayerWeights: styleLayers.map(() => 1 / styleLayers.length),
      contentWeight: 1, styleWeight: 1e3, tvWeight: 1e-3, normalization: 'paper',
    };
    const t = (f: string, label: string) => uploadTensor(gpu, raw(f), [3, h, w], label);
    const [content, style, x] = [t('content.f32', 'content'), t('style.f32', 'style'), t('x.f32', 'x')];
    const P = contentTargets(gpu, net, content, contentLayers, 'max');
    const A = await styleTargets(gpu, net, [style], [1], styleLayers, 'max', h, w);
    const obj = new GatysObjective(gpu, net, h, w, 'max', cfg, { content: P, style: A });
    const grad = createTensor(gpu, [3, h, w], 'grad');
    // Pipelines compile at their first dispatch, and lavapipe touches fresh host memory at its first runs: two warm-ups.
    await obj.evaluate(x, grad);
    await obj.evaluate(x, grad);
    const ts: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await obj.evaluate(x, grad);
      ts.push((performance.now() - t0) / 1e3);
    }
    const s = ts.sort((a, b) => a - b)[Math.floor(ts.length / 2)];
    const steps = obj.stages(x, grad).all.length;
    const line = `${`${w}x${h}`.padEnd(9)} ${name.padEnd(12)} painterly ${s.toFixed(3)} s (${steps} dispatches)   torch ${torch.seconds.toFixed(3)} s (${torch.threads} threads)   ratio ${(s / torch.seconds).toFixed(2)}`;
    console.log(line);
    rows.push(line);
    obj.destroy();
    net.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}
