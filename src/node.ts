// Node entry: the library with Dawn as the WebGPU implementation and file paths accepted for images.
import { openDawnGpu } from './gpu/dawn.ts';
import type { OpenOptions } from './gpu/device.ts';
import { readImage } from './image/node-io.ts';
import { Painterly, type CreateOptions } from './painterly.ts';

export * from './index.ts';
export { readImage, writeImage } from './image/node-io.ts';
export { openDawnGpu } from './gpu/dawn.ts';

/** A Painterly on Dawn (or on `device` if given). Keep it until done, then call destroy(). */
export async function createPainterly(opts: OpenOptions & Omit<CreateOptions, 'gpu'> = {}): Promise<Painterly> {
  const { weights, readImage: read, ...gpuOpts } = opts;
  const gpu = await openDawnGpu(gpuOpts);
  return new Painterly(gpu, { weights, readImage: read ?? readImage });
}
