// Node entry: the library with Dawn as the WebGPU implementation and file paths accepted for images.
import { openDawnGpu } from './gpu/dawn.ts';
import type { OpenOptions } from './gpu/device.ts';
import { readImage } from './image/node-io.ts';
import { Painterly, type CreateOptions } from './painterly.ts';
import { configureTuning, type TuneMode } from './gpu/tune.ts';
import { DirStore, defaultCacheDir } from './weights/cache-node.ts';

export * from './index.ts';
export { readImage, writeImage } from './image/node-io.ts';
export { openDawnGpu } from './gpu/dawn.ts';

/**
 * A Painterly on Dawn (or on `device` if given). Keep it until done, then call destroy(). Kernel variants are tuned
 * per adapter (`tune`: 'on' by default, or PAINTERLY_TUNE) and the choices kept in the cache folder's tuning.json.
 */
export async function createPainterly(opts: OpenOptions & Omit<CreateOptions, 'gpu'> & { tune?: TuneMode } = {}): Promise<Painterly> {
  const { weights, readImage: read, tune, ...gpuOpts } = opts;
  const gpu = await openDawnGpu(gpuOpts);
  await configureTuning(gpu, { mode: tune, store: new DirStore(weights?.cacheDir ?? defaultCacheDir()), onMessage: weights?.onMessage });
  return new Painterly(gpu, { weights, readImage: read ?? readImage });
}
