// Compute kernels: a typed descriptor per WGSL entry point, checked against the shader by reflection when its
// pipeline is first built, so a mismatch between the TypeScript side and the .wgsl file is a clear error at load
// time rather than a validation message at dispatch.
import { WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';
import { PainterlyError, type Gpu } from './device.ts';

export type Access = 'uniform' | 'read' | 'read_write';
export type Scalar = 'u32' | 'i32' | 'f32';

export interface KernelSpec {
  /** Path of the .wgsl file, for messages. */
  file: string;
  source: string;
  entry: string;
  /** Bindings of group 0 in binding order; the names must be the WGSL variable names. */
  bindings: Record<string, Access>;
  /** Fields of the struct bound as the `uniform` binding, in declaration order (all 4-byte scalars). */
  uniforms?: Record<string, Scalar>;
  /** Values for `override` constants (pipeline variants, e.g. tile sizes). */
  constants?: Record<string, number>;
}

export interface Kernel {
  spec: KernelSpec;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  workgroupSize: [number, number, number];
  /** Binding names in binding order. */
  names: string[];
  uniformName?: string;
}

const reflections = new Map<string, WgslReflect>();

function reflect(spec: KernelSpec): WgslReflect {
  let r = reflections.get(spec.source);
  if (!r) {
    try {
      r = new WgslReflect(spec.source);
    } catch (e) {
      throw new PainterlyError(`${spec.file}: cannot parse WGSL: ${(e as Error).message}`);
    }
    reflections.set(spec.source, r);
  }
  return r;
}

/** Checks `spec` against the shader's reflection; returns the entry's workgroup size. */
export function checkKernelSpec(spec: KernelSpec): [number, number, number] {
  const where = `${spec.file}:${spec.entry}`;
  const r = reflect(spec);
  const entry = r.entry.compute.find((e) => e.name === spec.entry);
  if (!entry) throw new PainterlyError(`${where}: no @compute entry point named "${spec.entry}"`);
  const used = [...entry.resources].sort((a, b) => a.binding - b.binding);
  const declared = Object.entries(spec.bindings);
  const fail = (msg: string): never => {
    throw new PainterlyError(`${where}: binding layout mismatch: ${msg}`);
  };
  if (used.length !== declared.length) {
    fail(`shader uses [${used.map((u) => u.name).join(', ')}], TypeScript declares [${declared.map((d) => d[0]).join(', ')}]`);
  }
  used.forEach((res, i) => {
    const [name, access] = declared[i];
    if (res.group !== 0) fail(`${res.name} is in group ${res.group}, expected 0`);
    if (res.binding !== i) fail(`${res.name} has binding ${res.binding}, expected ${i} (bindings must be dense 0..n-1)`);
    if (res.name !== name) fail(`binding ${i} is "${res.name}" in WGSL but "${name}" in TypeScript`);
    const wgslAccess: Access = res.resourceType === 0 ? 'uniform' : res.access === 'read_write' ? 'read_write' : 'read';
    if (res.resourceType !== 0 && res.resourceType !== 1) fail(`${name} is not a buffer`);
    if (wgslAccess !== access) fail(`${name} is ${wgslAccess} in WGSL but ${access} in TypeScript`);
    if (access === 'uniform') {
      const members = res.members ?? [];
      const want = Object.entries(spec.uniforms ?? {});
      const got = members.map((m) => `${m.name}:${m.type.getTypeName()}`).join(', ');
      const exp = want.map(([n, t]) => `${n}:${t}`).join(', ');
      if (got !== exp) fail(`uniform ${name} has fields {${got}} in WGSL but {${exp}} in TypeScript`);
    }
  });
  const ws = entry.workgroupSize ?? [1, 1, 1];
  const wg: [number, number, number] = [Number(ws[0] ?? 1), Number(ws[1] ?? 1), Number(ws[2] ?? 1)];
  // Override-sized workgroups reflect their default; use the pipeline constant when given.
  for (const o of entry.overrides ?? []) {
    if (spec.constants && o.name in spec.constants) {
      const attr = (entry.attributes ?? []).find((a) => a.name === 'workgroup_size');
      const vals = attr ? (Array.isArray(attr.value) ? attr.value : [attr.value]) : [];
      vals.forEach((v, i) => { if (v === o.name) wg[i] = spec.constants![o.name]; });
    }
  }
  return wg;
}

export function getKernel(gpu: Gpu, spec: KernelSpec): Kernel {
  const key = `${spec.file}:${spec.entry}:${JSON.stringify(spec.constants ?? {})}`;
  const cache = gpu.pipelines as unknown as Map<string, Kernel>;
  const hit = cache.get(key);
  if (hit) return hit;
  const workgroupSize = checkKernelSpec(spec);
  const names = Object.keys(spec.bindings);
  const layout = gpu.device.createBindGroupLayout({
    label: key,
    entries: names.map((name, binding) => ({
      binding,
      visibility: GPUShaderStage.COMPUTE,
      buffer: {
        type: spec.bindings[name] === 'uniform' ? 'uniform' : spec.bindings[name] === 'read' ? 'read-only-storage' : 'storage',
      },
    })),
  });
  const module = gpu.device.createShaderModule({ label: spec.file, code: spec.source });
  const pipeline = gpu.device.createComputePipeline({
    label: key,
    layout: gpu.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
    compute: { module, entryPoint: spec.entry, constants: spec.constants },
  });
  const k: Kernel = {
    spec, pipeline, layout, workgroupSize, names,
    uniformName: names.find((n) => spec.bindings[n] === 'uniform'),
  };
  cache.set(key, k);
  return k;
}

/** A buffer, or a range of one, bound to a kernel's storage binding. */
export type BufferRef = GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number };

/** One dispatch with everything bound: encode it as often as needed (e.g. once per optimiser iteration). */
export interface Step {
  kernel: Kernel;
  bindGroup: GPUBindGroup;
  groups: [number, number, number];
  label: string;
  /** Uniform buffer of this step, for values that change between submits (see setUniforms). */
  uniformBuffer?: GPUBuffer;
}

export function packUniforms(spec: KernelSpec, values: Record<string, number>): ArrayBuffer {
  const fields = Object.entries(spec.uniforms ?? {});
  const bytes = Math.max(16, Math.ceil((fields.length * 4) / 16) * 16);
  const buf = new ArrayBuffer(bytes);
  const dv = new DataView(buf);
  fields.forEach(([name, type], i) => {
    const v = values[name];
    if (v === undefined || Number.isNaN(v) && type !== 'f32') {
      throw new PainterlyError(`${spec.file}:${spec.entry}: uniform "${name}" not given`);
    }
    if (type === 'f32') dv.setFloat32(i * 4, v, true);
    else if (type === 'u32') dv.setUint32(i * 4, v, true);
    else dv.setInt32(i * 4, v, true);
  });
  for (const k of Object.keys(values)) {
    if (!(k in (spec.uniforms ?? {}))) throw new PainterlyError(`${spec.file}:${spec.entry}: unknown uniform "${k}"`);
  }
  return buf;
}

/** Binds buffers and uniform values to a kernel; `groups` is the workgroup grid (fold large grids with fold()). */
export function bind(
  gpu: Gpu, spec: KernelSpec, buffers: Record<string, BufferRef>, uniforms: Record<string, number>,
  groups: [number, number, number] | number, label = spec.entry,
): Step {
  const kernel = getKernel(gpu, spec);
  let uniformBuffer: GPUBuffer | undefined;
  const entries: GPUBindGroupEntry[] = kernel.names.map((name, binding) => {
    if (name === kernel.uniformName) {
      const data = packUniforms(spec, uniforms);
      uniformBuffer = gpu.device.createBuffer({
        label: `${label}.${name}`, size: data.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      });
      gpu.device.queue.writeBuffer(uniformBuffer, 0, data);
      return { binding, resource: { buffer: uniformBuffer } };
    }
    const ref = buffers[name];
    if (!ref) throw new PainterlyError(`${spec.file}:${spec.entry}: buffer "${name}" not given`);
    const r = 'usage' in ref ? { buffer: ref, offset: 0, size: undefined } : ref;
    return { binding, resource: { buffer: r.buffer, offset: r.offset ?? 0, size: r.size } };
  });
  for (const k of Object.keys(buffers)) {
    if (!kernel.names.includes(k)) throw new PainterlyError(`${spec.file}:${spec.entry}: unknown binding "${k}"`);
  }
  const bindGroup = gpu.device.createBindGroup({ label, layout: kernel.layout, entries });
  const g = typeof groups === 'number' ? fold(groups) : groups;
  if (g.some((v) => v > 65535)) {
    throw new PainterlyError(`${label}: dispatch [${g.join(', ')}] exceeds 65535 workgroups in a dimension; fold it`);
  }
  return { kernel, bindGroup, groups: g, label, uniformBuffer };
}

/** Rewrites a step's uniforms (takes effect for command buffers submitted after this call). */
export function setUniforms(gpu: Gpu, step: Step, values: Record<string, number>): void {
  if (!step.uniformBuffer) throw new PainterlyError(`${step.label}: has no uniforms`);
  gpu.device.queue.writeBuffer(step.uniformBuffer, 0, packUniforms(step.kernel.spec, values));
}

/**
 * Folds a 1-D count of workgroups into a grid within the 65,535-per-dimension limit. Kernels recover the linear
 * index as `wid.x + wid.y * nwg.x` (see `linear_id` in the shaders) and return when it is past their count.
 */
export function fold(workgroups: number): [number, number, number] {
  if (workgroups <= 65535) return [Math.max(1, workgroups), 1, 1];
  const y = Math.ceil(workgroups / 65535);
  return [Math.ceil(workgroups / y), y, 1];
}

/** Encodes steps into one compute pass (WebGPU orders their storage accesses). */
export function encodeSteps(pass: GPUComputePassEncoder, steps: Step[]): void {
  for (const s of steps) {
    pass.setPipeline(s.kernel.pipeline);
    pass.setBindGroup(0, s.bindGroup);
    pass.dispatchWorkgroups(s.groups[0], s.groups[1], s.groups[2]);
  }
}

/**
 * Seconds from submit to completion of `reps` back-to-back executions of `steps` in one pass (the autotuner's and
 * the benchmarks' one timing primitive).
 */
export async function submitTimed(gpu: Gpu, steps: Step[], reps: number, label = 'timed'): Promise<number> {
  const enc = gpu.device.createCommandEncoder({ label });
  const pass = enc.beginComputePass({ label });
  for (let r = 0; r < reps; r++) encodeSteps(pass, steps);
  pass.end();
  const cb = enc.finish();
  const t0 = performance.now();
  gpu.device.queue.submit([cb]);
  await gpu.device.queue.onSubmittedWorkDone();
  gpu.checkAlive();
  return (performance.now() - t0) / 1000;
}

/** Encodes and submits steps as one command buffer. */
export function run(gpu: Gpu, steps: Step[], label = 'run'): void {
  const enc = gpu.device.createCommandEncoder({ label });
  const pass = enc.beginComputePass({ label });
  encodeSteps(pass, steps);
  pass.end();
  gpu.device.queue.submit([enc.finish()]);
}
