// Float32 tensors in GPU storage buffers. Layout is NCHW with N = 1 unless a kernel says otherwise.
import { PainterlyError, type Gpu } from './device.ts';

export interface Tensor {
  buffer: GPUBuffer;
  shape: number[];
  /** Number of float32 elements. */
  size: number;
  label: string;
}


function usage(): number {
  return GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
}

export function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function createTensor(gpu: Gpu, shape: number[], label: string): Tensor {
  const size = numel(shape);
  const bytes = Math.max(16, Math.ceil((size * 4) / 16) * 16);
  if (bytes > gpu.maxBindingBytes) {
    throw new PainterlyError(
      `tensor ${label} [${shape.join('x')}] needs ${(bytes / 2 ** 20).toFixed(1)} MiB, past this adapter's ` +
      `storage binding limit of ${(gpu.maxBindingBytes / 2 ** 20).toFixed(1)} MiB; use a smaller size`);
  }
  const buffer = gpu.device.createBuffer({ label, size: bytes, usage: usage() });
  return { buffer, shape: [...shape], size, label };
}

export function uploadTensor(gpu: Gpu, data: ArrayLike<number>, shape: number[], label: string): Tensor {
  const t = createTensor(gpu, shape, label);
  writeTensor(gpu, t, data);
  return t;
}

export function writeTensor(gpu: Gpu, t: Tensor, data: ArrayLike<number>): void {
  if (data.length !== t.size) throw new PainterlyError(`${t.label}: expected ${t.size} values, got ${data.length}`);
  const f = data instanceof Float32Array ? data : Float32Array.from(data);
  gpu.device.queue.writeBuffer(t.buffer, 0, f.buffer, f.byteOffset, f.byteLength);
}

/** Fills with a value (NaN by default) so that tests catch elements a kernel failed to write. */
export function poison(gpu: Gpu, t: Tensor, value = NaN): void {
  writeTensor(gpu, t, new Float32Array(t.size).fill(value));
}

/** Copies buffers back to the CPU in one submit and one map. */
export async function readBuffers(gpu: Gpu, parts: { buffer: GPUBuffer; offset?: number; bytes: number }[]): Promise<Float32Array[]> {
  const total = parts.reduce((a, p) => a + Math.ceil(p.bytes / 4) * 4, 0);
  const staging = gpu.device.createBuffer({ label: 'readback', size: Math.max(4, total), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = gpu.device.createCommandEncoder({ label: 'readback' });
  let off = 0;
  const offs: number[] = [];
  for (const p of parts) {
    const n = Math.ceil(p.bytes / 4) * 4;
    offs.push(off);
    if (n > 0) enc.copyBufferToBuffer(p.buffer, p.offset ?? 0, staging, off, n);
    off += n;
  }
  gpu.device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  gpu.checkAlive();
  const all = new Float32Array(staging.getMappedRange().slice(0));
  staging.unmap();
  staging.destroy();
  return parts.map((p, i) => all.subarray(offs[i] / 4, offs[i] / 4 + p.bytes / 4));
}

export async function readTensor(gpu: Gpu, t: Tensor): Promise<Float32Array> {
  const [out] = await readBuffers(gpu, [{ buffer: t.buffer, bytes: t.size * 4 }]);
  return out;
}

export function destroyTensors(...ts: (Tensor | undefined)[]): void {
  for (const t of ts) t?.buffer.destroy();
}
