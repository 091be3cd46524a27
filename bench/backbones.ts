// Seconds per Gatys evaluation (forward, losses, backward to the image) on each backbone with its default layers,
// side by side with PyTorch on the CPU (bench/torch_backbone.py: torchvision's networks, the same random weights,
// which Painterly reads from the safetensors file torch wrote). Painterly's VGG19 runs with max pooling here, as
// torchvision's does. Run it alone.
//   node scripts/run-ts.mjs bench/backbones.ts [--sizes 128,256] [--runs 3] [--backbones vgg19,vgg19_bn,resnet50,densenet121]
//        [--openblas DIR] (torch with that OpenBLAS: LD_LIBRARY_PATH=DIR, OPENBLAS_NUM_THREADS for that process only)
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { openDawnGpu } from '../src/gpu/dawn.ts';
import type { BackboneName } from '../src/nets/backbones.ts';
import { backboneRun } from './backbone-setup.ts';

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
    const { torch, obj, x, grad, destroy } = await backboneRun(gpu, name, size, { time: runs, env });
    const { h, w } = torch;
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
    destroy();
  }
}
