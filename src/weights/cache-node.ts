// The Node side of weight loading: the cache directory as a WeightStore, and local files as ByteSources.
// Kept apart from the rest of src/weights so that browser bundles need not touch node:fs.
import { mkdir, open, readFile, rename, rm, stat, appendFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { PainterlyError } from '../gpu/device.ts';
import type { ByteSource } from './safetensors.ts';
import type { WeightStore } from './store.ts';

/** $PAINTERLY_CACHE, else $XDG_CACHE_HOME/painterly, else ~/.cache/painterly. */
export function defaultCacheDir(env: Record<string, string | undefined> = process.env): string {
  if (env.PAINTERLY_CACHE) return env.PAINTERLY_CACHE;
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, 'painterly');
  return join(homedir(), '.cache', 'painterly');
}

/** Re-exported for modules that must not import node: themselves (they are part of browser bundles). */
export { existsSync, join };

const isMissing = (e: unknown) => (e as NodeJS.ErrnoException)?.code === 'ENOENT';

/** A directory of entries; writes go to a temporary file that is then renamed over the entry. */
export class DirStore implements WeightStore {
  constructor(readonly dir: string) {}

  where(name: string): string { return join(this.dir, name); }

  async get(name: string): Promise<Uint8Array | undefined> {
    try {
      const b = await readFile(this.where(name));
      return new Uint8Array(b.buffer, b.byteOffset, b.length);
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw e;
    }
  }

  async put(name: string, data: Uint8Array): Promise<void> {
    await this.mkdir();
    const tmp = `${this.where(name)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    try {
      await writeFile(tmp, data);
      await rename(tmp, this.where(name));
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }

  async append(name: string, data: Uint8Array): Promise<void> {
    await this.mkdir();
    await appendFile(this.where(name), data);
  }

  async size(name: string): Promise<number | undefined> {
    try {
      return (await stat(this.where(name))).size;
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw e;
    }
  }

  async delete(name: string): Promise<void> { await rm(this.where(name), { force: true }); }

  private async mkdir(): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true });
    } catch (e) {
      throw new PainterlyError(`cannot create the weights cache directory ${this.dir}: ${(e as Error).message} ` +
        `(set PAINTERLY_CACHE to a writable directory)`);
    }
  }
}

/** A local file as a ByteSource; reads only the byte ranges asked for (a 548 MB file is not read whole). */
export async function openFileSource(path: string): Promise<ByteSource & { close(): Promise<void> }> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    const why = isMissing(e) ? 'no such file' : (e as Error).message;
    throw new PainterlyError(`${path}: cannot open weights file (${why}); expected a VGG19 .safetensors file`);
  }
  const size = (await fh.stat()).size;
  const handle = fh;
  return {
    name: path,
    size,
    async read(begin: number, end: number): Promise<Uint8Array> {
      const out = new Uint8Array(Math.max(0, Math.min(end, size) - begin));
      let done = 0;
      while (done < out.length) {
        const { bytesRead } = await handle.read(out, done, out.length - done, begin + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return out.subarray(0, done);
    },
    close: () => handle.close(),
  };
}
