// Where downloaded weights live between runs. Node uses a directory (cache-node.ts); a browser store (Cache Storage
// or IndexedDB) only has to implement this interface. Entries are named byte strings; names are plain file names.

export interface WeightStore {
  /** Human-readable location of an entry, for messages (a path, or e.g. "IndexedDB painterly/<name>"). */
  where(name: string): string;
  /** The whole entry, or undefined if it does not exist. */
  get(name: string): Promise<Uint8Array | undefined>;
  /** Writes an entry atomically: a reader sees the old entry or the new one, never a part. */
  put(name: string, data: Uint8Array): Promise<void>;
  /** Appends to an entry, creating it if absent (partial downloads grow this way, so a crash keeps what arrived). */
  append(name: string, data: Uint8Array): Promise<void>;
  /** Size in bytes of an entry, or undefined if it does not exist. */
  size(name: string): Promise<number | undefined>;
  /** Removes an entry; no error if absent. */
  delete(name: string): Promise<void>;
}

/** An in-memory store: for tests, and a fallback where nothing persists. */
export class MemoryStore implements WeightStore {
  readonly entries = new Map<string, Uint8Array>();
  where(name: string): string { return `memory:${name}`; }
  async get(name: string): Promise<Uint8Array | undefined> { return this.entries.get(name)?.slice(); }
  async put(name: string, data: Uint8Array): Promise<void> { this.entries.set(name, data.slice()); }
  async append(name: string, data: Uint8Array): Promise<void> {
    const old = this.entries.get(name) ?? new Uint8Array(0);
    const next = new Uint8Array(old.length + data.length);
    next.set(old); next.set(data, old.length);
    this.entries.set(name, next);
  }
  async size(name: string): Promise<number | undefined> { return this.entries.get(name)?.length; }
  async delete(name: string): Promise<void> { this.entries.delete(name); }
}
