// A WeightStore in the browser's IndexedDB, so downloaded VGG19 weights survive reloads and work offline.
// Entries are kept as lists of chunks: `append` (a download growing 4 MB at a time) adds one chunk record instead of
// rewriting the whole entry, and every write is one IndexedDB transaction, hence atomic.
//   object store 'entries': name -> { size, chunks }      object store 'chunks': [name, i] -> Uint8Array
import { PainterlyError } from '../gpu/device.ts';
import type { WeightStore } from './store.ts';

interface EntryMeta { size: number; chunks: number }

const DB_VERSION = 1;

function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
  });
}

export class IdbStore implements WeightStore {
  private db: Promise<IDBDatabase> | undefined;

  /** `dbName`: the IndexedDB database (one per origin and name). */
  constructor(readonly dbName = 'painterly-weights') {}

  /** Whether this environment has IndexedDB at all (private windows of some browsers do not). */
  static available(): boolean {
    return typeof indexedDB !== 'undefined';
  }

  where(name: string): string { return `IndexedDB ${this.dbName}/${name}`; }

  private open(): Promise<IDBDatabase> {
    this.db ??= new Promise<IDBDatabase>((resolve, reject) => {
      if (!IdbStore.available()) {
        reject(new PainterlyError('this browser has no IndexedDB (a private window?): downloaded weights cannot be cached'));
        return;
      }
      const r = indexedDB.open(this.dbName, DB_VERSION);
      r.onupgradeneeded = () => {
        r.result.createObjectStore('entries');
        r.result.createObjectStore('chunks');
      };
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(new PainterlyError(`cannot open ${this.where('')}: ${r.error?.message ?? 'unknown error'}`));
      r.onblocked = () => reject(new PainterlyError(`${this.where('')} is blocked by another tab; close it and retry`));
    });
    this.db.catch(() => { this.db = undefined; });
    return this.db;
  }

  private async tx(mode: IDBTransactionMode): Promise<{ t: IDBTransaction; entries: IDBObjectStore; chunks: IDBObjectStore }> {
    const t = (await this.open()).transaction(['entries', 'chunks'], mode);
    return { t, entries: t.objectStore('entries'), chunks: t.objectStore('chunks') };
  }

  async get(name: string): Promise<Uint8Array | undefined> {
    const { t, entries, chunks } = await this.tx('readonly');
    const meta = (await req(entries.get(name))) as EntryMeta | undefined;
    if (!meta) return undefined;
    const parts = (await req(chunks.getAll(IDBKeyRange.bound([name, 0], [name, meta.chunks - 1])))) as Uint8Array[];
    await done(t);
    if (parts.length !== meta.chunks) throw new PainterlyError(`${this.where(name)}: expected ${meta.chunks} chunks, found ${parts.length}`);
    if (parts.length === 1) return parts[0];
    const out = new Uint8Array(meta.size);
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }

  async put(name: string, data: Uint8Array): Promise<void> {
    const { t, entries, chunks } = await this.tx('readwrite');
    chunks.delete(IDBKeyRange.bound([name, 0], [name, Infinity]));
    chunks.put(data.slice(), [name, 0]);
    entries.put({ size: data.length, chunks: 1 } satisfies EntryMeta, name);
    await done(t);
  }

  async append(name: string, data: Uint8Array): Promise<void> {
    const { t, entries, chunks } = await this.tx('readwrite');
    const meta = ((await req(entries.get(name))) as EntryMeta | undefined) ?? { size: 0, chunks: 0 };
    chunks.put(data.slice(), [name, meta.chunks]);
    entries.put({ size: meta.size + data.length, chunks: meta.chunks + 1 } satisfies EntryMeta, name);
    await done(t);
  }

  async size(name: string): Promise<number | undefined> {
    const { t, entries } = await this.tx('readonly');
    const meta = (await req(entries.get(name))) as EntryMeta | undefined;
    await done(t);
    return meta?.size;
  }

  async delete(name: string): Promise<void> {
    const { t, entries, chunks } = await this.tx('readwrite');
    chunks.delete(IDBKeyRange.bound([name, 0], [name, Infinity]));
    entries.delete(name);
    await done(t);
  }

  /** Names and sizes of all entries (for a "cached weights" line in the page). */
  async list(): Promise<{ name: string; size: number }[]> {
    const { t, entries } = await this.tx('readonly');
    const keys = (await req(entries.getAllKeys())) as string[];
    const metas = (await req(entries.getAll())) as EntryMeta[];
    await done(t);
    return keys.map((name, i) => ({ name, size: metas[i].size }));
  }
}

/** A Blob (a file the user chose) as a ByteSource: only the byte ranges asked for are read. */
export function blobSource(blob: Blob, name: string): { name: string; size: number; read(begin: number, end: number): Promise<Uint8Array> } {
  return {
    name, size: blob.size,
    read: async (begin, end) => new Uint8Array(await blob.slice(begin, end).arrayBuffer()),
  };
}
