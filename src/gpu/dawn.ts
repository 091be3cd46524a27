// Node entry to WebGPU through Dawn (the npm package `webgpu`).
import { Gpu, type OpenOptions } from './device.ts';

let throttled = false;

/**
 * dawn.node polls for GPU completion by re-arming `setImmediate` from native code while a promise is pending,
 * which spins one CPU core (measured: 35-50 % of lavapipe's throughput on 2 cores). It looks the global up on
 * every tick, so we hand its native callbacks a 1 ms timer instead; JavaScript callers keep the real one.
 */
function throttleDawnPolling(): void {
  if (throttled) return;
  throttled = true;
  const real = globalThis.setImmediate;
  const fnToString = Function.prototype.toString;
  const patched = function (this: unknown, cb: (...a: unknown[]) => void, ...args: unknown[]) {
    if (typeof cb === 'function' && cb.name === '' && fnToString.call(cb).includes('[native code]')) {
      return setTimeout(cb, 1, ...args) as unknown as NodeJS.Immediate;
    }
    return real(cb, ...args);
  };
  globalThis.setImmediate = Object.assign(patched, real) as typeof setImmediate;
}

export async function openDawnGpu(opts: OpenOptions = {}): Promise<Gpu> {
  if (opts.device) return Gpu.open(undefined, undefined, opts);
  let mod: typeof import('webgpu');
  try {
    mod = await import('webgpu');
  } catch (e) {
    throw new Error(`cannot load Dawn (npm package "webgpu"): ${(e as Error).message}`);
  }
  Object.assign(globalThis, mod.globals);
  if (process.env.PAINTERLY_BUSY_POLL !== '1') throttleDawnPolling();
  const instance = mod.create([]);
  return Gpu.open(instance, instance, opts);
}
