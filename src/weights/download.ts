// Fetches the VGG19 tensors we need from a remote safetensors file with HTTP range requests and keeps them in a
// WeightStore as a small safetensors file of our own (plus its sha256). Uses only `fetch`, so it also runs in browsers.
//
// Store entries, for base = vgg19-<source>-upto-<layer>.safetensors:
//   <base>            the subset (original dtypes, torchvision names), written atomically
//   <base>.sha256     "<hex>  <base>" (sha256sum format) of the subset; checked on every load
//   <base>.part       the needed byte ranges of the remote file, concatenated, as far as they arrived
//   <base>.part.json  what .part is (url, ETag, size, header hash, ranges): a resume continues only if it still matches
import { PainterlyError } from '../gpu/device.ts';
import { selectTensors, VGG19_CONVS, type VggConv } from './layout.ts';
import { parseHeader, parseHeaderLength, writeSafetensors, oneLine, type RawTensor, type SafetensorsHeader } from './safetensors.ts';
import type { WeightStore } from './store.ts';

/**
 * The commit of the Hub repository timm/vgg19.tv_in1k the default weights are fetched at, so that what arrives cannot
 * change under us as the main branch moves (found in the Hub's commit pages; model.safetensors is unchanged since
 * the repository's "Add model" commit). Refresh with `node scripts/pin-weights.mjs` (see there).
 */
export const VGG19_REVISION = '128d4708565b3a414bcbb9bbad440b2fe37b9f18';
export const VGG19_URL = `https://huggingface.co/timm/vgg19.tv_in1k/resolve/${VGG19_REVISION}/model.safetensors`;
/**
 * sha256 of each downloaded tensor's raw bytes at VGG19_URL (torchvision names), checked before the subset is kept.
 * Not yet established: this repository was built offline. A maintainer fills it with the table that
 * `node scripts/pin-weights.mjs` prints (it downloads the conv tensors at the revision above and hashes them); until
 * then only the subset's own sha256 (computed from what arrived) guards the cache.
 */
export const VGG19_TENSOR_SHA256: Readonly<Record<string, string>> = {};
const VGG19_MB = 548;

export interface Progress { bytes: number; total: number }

export interface FetchOptions {
  url: string;
  /** conv1_1 .. the deepest conv needed. */
  convs: VggConv[];
  store: WeightStore;
  onProgress?: (p: Progress) => void;
  /** Informational messages (a corrupt cache being refetched, a server ignoring Range). */
  onMessage?: (m: string) => void;
  signal?: AbortSignal;
  /** Consecutive failed attempts (without any bytes arriving) before giving up. */
  retries?: number;
  /** Milliseconds before the first retry (doubling). */
  retryDelayMs?: number;
  /** Expected sha256 per tensor name (default: VGG19_TENSOR_SHA256 for VGG19_URL); tensors not listed are not checked. */
  expectedSha256?: Readonly<Record<string, string>>;
}

/** Ranges closer than this are fetched as one (a request costs more than a few skipped bytes). */
const MERGE_GAP = 64 * 1024;
/** Bytes buffered before being appended to the partial entry. */
const FLUSH_BYTES = 4 * 1024 * 1024;

/** A transport failure worth retrying (connection refused or reset, body cut short, 5xx). */
class NetworkError extends Error {}
/** An HTTP status that retrying will not fix. */
class HttpError extends PainterlyError {}

/** Returns the bytes of the cached subset covering `convs`, downloading it first if needed. */
export async function fetchVgg19Subset(opts: FetchOptions): Promise<{ bytes: Uint8Array; name: string; where: string }> {
  const { store, url } = opts;
  const message = opts.onMessage ?? ((m: string) => console.warn(`painterly: ${m}`));
  const source = url === VGG19_URL ? 'tv_in1k' : `url-${(await sha256Hex(new TextEncoder().encode(url))).slice(0, 16)}`;
  const entry = (layer: string) => `vgg19-${source}-upto-${layer}.safetensors`;

  // A cached subset for this layer or a deeper one will do.
  const deepest = opts.convs.length - 1;
  for (const conv of VGG19_CONVS.slice(deepest)) {
    const name = entry(conv.name);
    const bytes = await store.get(name);
    if (!bytes) continue;
    const want = (await store.get(`${name}.sha256`)) ?? new Uint8Array(0);
    const got = await sha256Hex(bytes);
    if (new TextDecoder().decode(want).split(/\s/)[0] === got) return { bytes, name, where: store.where(name) };
    message(`cached weights ${store.where(name)} are corrupt (sha256 ${got} does not match ${store.where(`${name}.sha256`)}); downloading them again`);
    await store.delete(name);
    await store.delete(`${name}.sha256`);
  }

  const name = entry(opts.convs[deepest].name);
  const bytes = await download(opts, name, message);
  return { bytes, name, where: store.where(name) };
}

async function download(opts: FetchOptions, name: string, message: (m: string) => void): Promise<Uint8Array> {
  const { store, url, signal } = opts;
  const part = `${name}.part`;
  const metaName = `${name}.part.json`;
  const ctx: RangeContext = { url, signal, message, warnedNoRange: false };

  // 1. The header: 8 bytes of length, then the JSON.
  let header: SafetensorsHeader;
  let headerHash: string;
  let etag: string | undefined;
  let size: number | undefined;
  try {
    const first = await fetchBytes(ctx, 0, 8);
    ({ etag, size } = first);
    const n = parseHeaderLength(first.bytes, url, size);
    const json = await fetchBytes(ctx, 8, 8 + n);
    header = parseHeader(json.bytes, url, size);
    headerHash = await sha256Hex(json.bytes);
  } catch (e) {
    if ((e instanceof PainterlyError && !(e instanceof HttpError)) || isAbort(e, signal)) throw e;
    throw new PainterlyError(`cannot download VGG19 weights from ${url} (${oneLine(e).replace(`${url}: `, '')}) and there is no cached copy in ` +
      `${store.where('')}; download that file${url === VGG19_URL ? ` (${VGG19_MB} MB, timm/vgg19.tv_in1k on the Hugging Face Hub)` : ''} ` +
      `yourself and point at it with --weights FILE, or use --weights random:SEED for untrained weights`);
  }
  const selected = selectTensors(header, opts.convs);

  // 2. The byte ranges of the needed tensors, sorted and merged.
  const spans = selected.flatMap((s) => [s.weight, s.bias]).map((e) => [e.begin, e.end]).sort((a, b) => a[0] - b[0]);
  const ranges: number[][] = [];
  for (const [b, e] of spans) {
    const last = ranges.at(-1);
    if (last && b - last[1] <= MERGE_GAP) last[1] = Math.max(last[1], e);
    else ranges.push([b, e]);
  }
  const starts: number[] = []; // offset of each range in the concatenation
  let total = 0;
  for (const [b, e] of ranges) { starts.push(total); total += e - b; }

  // 3. Resume a partial download if it is of the same file and the same ranges, else start over.
  const meta = JSON.stringify({ url, etag: etag ?? null, size: size ?? null, headerHash, ranges });
  const oldMeta = await store.get(metaName);
  let have = oldMeta && new TextDecoder().decode(oldMeta) === meta ? (await store.size(part)) ?? 0 : 0;
  if (have > total) have = 0;
  if (have === 0) {
    await store.delete(part);
    await store.put(metaName, new TextEncoder().encode(meta));
  }

  // 4. Fetch what is missing, appending to the partial entry; retry while bytes keep arriving.
  const retries = opts.retries ?? 4;
  let failures = 0;
  while (have < total) {
    const i = lastIndex(starts, (s) => s <= have);
    const begin = ranges[i][0] + (have - starts[i]);
    const end = ranges[i][1];
    const haveAtStart = have;
    let buffered: Uint8Array[] = [];
    let bufferedBytes = 0;
    const flush = async () => {
      if (bufferedBytes === 0) return;
      await store.append(part, concat(buffered, bufferedBytes));
      have += bufferedBytes;
      buffered = []; bufferedBytes = 0;
    };
    try {
      await fetchRange(ctx, begin, end, async (chunk) => {
        buffered.push(chunk); bufferedBytes += chunk.length;
        opts.onProgress?.({ bytes: have + bufferedBytes, total });
        if (bufferedBytes >= FLUSH_BYTES) await flush();
      });
      await flush();
    } catch (e) {
      await flush(); // keep whatever arrived
      if (!(e instanceof NetworkError) || isAbort(e, signal)) throw e;
      failures = have > haveAtStart ? 1 : failures + 1;
      if (failures > retries) {
        throw new PainterlyError(`download of ${url} interrupted after ${mb(have)} of ${mb(total)} MB (${oneLine(e)}); ` +
          `the partial download ${store.where(part)} will be resumed by the next run`);
      }
      await sleep((opts.retryDelayMs ?? 250) * 2 ** (failures - 1), signal);
    }
  }

  // 5. Cut the tensors out of the concatenated ranges and store them as our own small safetensors file.
  const data = await store.get(part);
  if (!data || data.length !== total) {
    throw new PainterlyError(`${store.where(part)}: expected ${total} bytes after the download, found ${data?.length ?? 0}`);
  }
  const tensors: RawTensor[] = [];
  for (const s of selected) {
    for (const [e, tname] of [[s.bias, `features.${s.conv.index}.bias`], [s.weight, `features.${s.conv.index}.weight`]] as const) {
      const r = lastIndex(ranges, ([b]) => b <= e.begin);
      const at = starts[r] + e.begin - ranges[r][0];
      tensors.push({ name: tname, dtype: e.dtype, shape: e.shape, data: data.subarray(at, at + e.end - e.begin) });
    }
  }
  const expected = opts.expectedSha256 ?? (url === VGG19_URL ? VGG19_TENSOR_SHA256 : {});
  for (const t of tensors) {
    const want = expected[t.name];
    if (!want) continue;
    const got = await sha256Hex(t.data);
    if (got !== want) {
      await store.delete(part);
      await store.delete(metaName);
      throw new PainterlyError(`${url}: tensor ${t.name} has sha256 ${got}, expected ${want}; the file is not the pinned one ` +
        '(refresh the pins with scripts/pin-weights.mjs if the change is intended)');
    }
  }
  const bytes = writeSafetensors(tensors, {
    format: 'painterly VGG19 subset', source: url, etag: etag ?? '', upTo: opts.convs.at(-1)!.name,
  });
  const hash = await sha256Hex(bytes);
  await store.put(`${name}.sha256`, new TextEncoder().encode(`${hash}  ${name}\n`));
  await store.put(name, bytes);
  await store.delete(part);
  await store.delete(metaName);
  opts.onProgress?.({ bytes: total, total });
  return bytes;
}

interface RangeContext { url: string; signal?: AbortSignal; message: (m: string) => void; warnedNoRange: boolean }

async function fetchBytes(ctx: RangeContext, begin: number, end: number) {
  const chunks: Uint8Array[] = [];
  let n = 0;
  const info = await fetchRange(ctx, begin, end, (c) => { chunks.push(c); n += c.length; });
  return { ...info, bytes: concat(chunks, n) };
}

/**
 * Streams bytes [begin, end) of the URL to `sink`. A 206 must start at `begin`; a server that ignores Range (200) is
 * still served, by skipping the first `begin` bytes of the whole body. A body cut short throws a NetworkError after
 * the bytes that did arrive were delivered.
 */
async function fetchRange(
  ctx: RangeContext, begin: number, end: number, sink: (chunk: Uint8Array) => void | Promise<void>,
): Promise<{ etag?: string; size?: number }> {
  let res: Response;
  try {
    res = await fetch(ctx.url, {
      headers: { Range: `bytes=${begin}-${end - 1}`, 'Accept-Encoding': 'identity' }, signal: ctx.signal,
    });
  } catch (e) {
    throw isAbort(e, ctx.signal) ? e : new NetworkError(describeFetchError(e));
  }
  const etag = res.headers.get('etag') ?? undefined;
  let skip = 0;
  let size: number | undefined;
  if (res.status === 206) {
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
    if (!m || Number(m[1]) !== begin) {
      await res.body?.cancel();
      throw new PainterlyError(`${ctx.url}: asked for bytes ${begin}-${end - 1}, the server sent Content-Range '${res.headers.get('content-range')}'`);
    }
    if (m[3] !== '*') size = Number(m[3]);
  } else if (res.status === 200) {
    if (!ctx.warnedNoRange) {
      ctx.message(`${ctx.url} ignores range requests; reading through the whole file to get the bytes needed`);
      ctx.warnedNoRange = true;
    }
    skip = begin;
    const len = res.headers.get('content-length');
    if (len !== null) size = Number(len);
  } else {
    await res.body?.cancel();
    const what = `${ctx.url}: HTTP ${res.status} ${res.statusText}`.trim();
    if (res.status >= 500 || res.status === 429) throw new NetworkError(what);
    if (res.status === 416) throw new PainterlyError(`${what}: the file is shorter than its header says (bytes ${begin}-${end - 1} requested)`);
    throw new HttpError(what);
  }
  if (!res.body) throw new NetworkError(`${ctx.url}: empty response`);
  const reader = res.body.getReader();
  let want = end - begin;
  try {
    while (want > 0) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await reader.read();
      } catch (e) {
        throw isAbort(e, ctx.signal) ? e : new NetworkError(describeFetchError(e));
      }
      if (r.done) break;
      let chunk = r.value;
      if (skip > 0) {
        const s = Math.min(skip, chunk.length);
        skip -= s; chunk = chunk.subarray(s);
      }
      if (chunk.length > want) chunk = chunk.subarray(0, want);
      if (chunk.length === 0) continue;
      want -= chunk.length;
      await sink(chunk);
    }
  } finally {
    void reader.cancel().catch(() => {}); // done (or failed): do not read the rest of a 200 body
  }
  if (want > 0) throw new NetworkError(`connection closed ${want} bytes before the end of bytes ${begin}-${end - 1}`);
  return { etag, size };
}

function describeFetchError(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } })?.cause;
  const why = cause ? `: ${cause.code ?? oneLine(cause.message)}` : '';
  return `${oneLine(e)}${why}`;
}

function isAbort(e: unknown, signal?: AbortSignal): boolean {
  return signal?.aborted === true || (e as Error)?.name === 'AbortError';
}

function concat(chunks: Uint8Array[], n: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(n);
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.length; }
  return out;
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return [...d].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function lastIndex<T>(a: T[], pred: (x: T) => boolean): number {
  for (let i = a.length - 1; i >= 0; i--) if (pred(a[i])) return i;
  return -1;
}

const mb = (n: number) => (n / 1e6).toFixed(1);

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(t); reject(signal!.reason); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
