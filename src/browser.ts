// Browser entry (bundled to dist/browser/painterly.js): the environment-neutral library plus what only a browser has:
// navigator.gpu, an IndexedDB weight cache, and Blob-backed weight files. Nothing here may import Node modules.
import { Gpu, PainterlyError, type OpenOptions } from './gpu/device.ts';
import { Painterly, type CreateOptions } from './painterly.ts';
import { configureTuning, type TuneMode } from './gpu/tune.ts';
import { IdbStore } from './weights/store-browser.ts';
import { MemoryStore } from './weights/store.ts';

export * from './index.ts';
export {
  checkImage, createImage, matchColorHistogram, transferLuminance, MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE, readImageHeader, sniffFormat,
} from './image/index.ts';
export { VGG19_URL, type LoadOptions, type WeightStore } from './weights/vgg19-weights.ts';
export { IdbStore, blobSource } from './weights/store-browser.ts';
export { MemoryStore };
export { bytesSource, type ByteSource } from './weights/safetensors.ts';
// Feed-forward methods in a page: models from the table cached in a WeightStore, or a picked folder; a session
// that encodes a style once and re-decodes a new α (web/app.ts uses these).
export { FeedForwardSession, type SessionCounters } from './style/ff-session.ts';
export {
  fetchModelFiles, loadModelFromFiles, mirroredModel, modelFromPickedFiles, sourcesLoadNet, type BrowserModelFetchOptions,
  type ModelFiles, type PickedFile,
} from './style/ff-load-browser.ts';
export { FF_MODELS, type FeedForwardModelSpec } from './style/ff-models.ts';
export { FeedForwardModel, encodeStyle, stylizeFeedForward, type EncodedStyle, type FeedForwardMethod } from './style/feedforward.ts';
export { MODELS, type ModelSpec } from './weights/models.ts';

/** Where WebGPU is available, for messages. */
export const WEBGPU_HELP =
  'WebGPU is available in Chrome and Edge 113+ (Windows, macOS, ChromeOS, Android; on Linux enable ' +
  'chrome://flags/#enable-unsafe-webgpu and #enable-vulkan), Safari 26+ (macOS, iOS), and Firefox 141+ on Windows ' +
  '(elsewhere Firefox Nightly with dom.webgpu.enabled in about:config)';

/**
 * Why WebGPU cannot be used here, in one sentence, or undefined if navigator.gpu exists. Pages call this before
 * anything else to show a plain message instead of a stack trace.
 */
export function webgpuUnavailableReason(): string | undefined {
  if (typeof navigator === 'undefined') return 'not running in a browser (no navigator)';
  if (!('gpu' in navigator) || !navigator.gpu) {
    if (typeof isSecureContext !== 'undefined' && !isSecureContext) {
      return `this page is not a secure context (WebGPU needs https:// or http://localhost / 127.0.0.1); ${WEBGPU_HELP}`;
    }
    return `this browser does not have WebGPU (navigator.gpu is missing). ${WEBGPU_HELP}`;
  }
  return undefined;
}

export interface BrowserCreateOptions extends Omit<CreateOptions, 'gpu' | 'readImage'>, OpenOptions {
  /** Kernel variant tuning per adapter ('on' by default; choices kept in IndexedDB when available). */
  tune?: TuneMode;
}

/**
 * Opens navigator.gpu and returns a Painterly whose pretrained weights are cached in IndexedDB (unless
 * `weights.store` says otherwise). Throws a one-line PainterlyError when WebGPU or an adapter is missing.
 */
export async function createPainterly(opts: BrowserCreateOptions = {}): Promise<Painterly> {
  const why = webgpuUnavailableReason();
  if (why && !opts.device) throw new PainterlyError(why);
  let gpu: Gpu;
  try {
    gpu = await Gpu.open(navigator.gpu, undefined, opts);
  } catch (e) {
    if (e instanceof PainterlyError && /no WebGPU adapter/.test(e.message)) {
      throw new PainterlyError(`WebGPU is present but no adapter was granted (GPU blocklisted or disabled?). ${WEBGPU_HELP}`);
    }
    throw e;
  }
  // Without IndexedDB (some private windows) a download lasts as long as the page.
  const store = opts.weights?.store ?? (IdbStore.available() ? new IdbStore() : new MemoryStore());
  await configureTuning(gpu, { mode: opts.tune, store: IdbStore.available() ? new IdbStore('painterly-tuning') : undefined });
  return new Painterly(gpu, { weights: { ...opts.weights, store } });
}
