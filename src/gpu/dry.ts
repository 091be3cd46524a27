// A stand-in device that allocates nothing and runs nothing. Planners run their real code against it, so the Gpu's
// buffer counter (device.ts) reports exactly the buffers a run would create, at any size, without touching the GPU
// (painterly info --size, --max-memory). Readbacks return zeros; limits are the real adapter's.
import { Gpu } from './device.ts';

function dryBuffer(d: GPUBufferDescriptor): GPUBuffer {
  const size = Number(d.size);
  return {
    size, usage: d.usage, label: d.label ?? '', mapState: 'unmapped',
    destroy() { /* nothing allocated */ },
    mapAsync: async () => undefined,
    getMappedRange: (offset = 0, bytes?: number) => new ArrayBuffer(bytes ?? size - offset),
    unmap() { /* nothing mapped */ },
  } as unknown as GPUBuffer;
}

const noop = () => undefined;

function dryDevice(real: Gpu): GPUDevice {
  const pass = { setPipeline: noop, setBindGroup: noop, dispatchWorkgroups: noop, end: noop };
  const device = {
    label: 'painterly (dry run)',
    limits: real.limits,
    features: new Set(real.features),
    adapterInfo: undefined,
    lost: new Promise<never>(noop),
    queue: { writeBuffer: noop, submit: noop, onSubmittedWorkDone: async () => undefined },
    createBuffer: dryBuffer,
    createBindGroup: (d: GPUBindGroupDescriptor) => ({ label: d.label ?? '' }),
    createBindGroupLayout: () => ({}),
    createPipelineLayout: () => ({}),
    createShaderModule: () => ({}),
    createComputePipeline: () => ({}),
    createCommandEncoder: () => ({
      beginComputePass: () => pass, copyBufferToBuffer: noop, clearBuffer: noop, finish: () => ({}),
    }),
    pushErrorScope: noop,
    popErrorScope: async () => null,
    addEventListener: noop,
    destroy: noop,
  };
  return device as unknown as GPUDevice;
}

/** A Gpu with `real`'s limits whose device only counts buffers (liveBytes, peakBytes): for planning. */
export function dryRunGpu(real: Gpu): Gpu {
  return new Gpu(dryDevice(real), real.info, undefined, false, { maxStorageBindingBytes: real.maxBindingBytes, onError: noop });
}
