// Fetches the tensors we need from a remote safetensors file with HTTP range requests and keeps them in a WeightStore
// as a small safetensors file of our own (plus its sha256). Uses only `fetch`, so it also runs in browsers.
// fetchTensorSubset is the general case (any tensor names); fetchVgg19Subset (VGG19's convs) and fetchBackboneSubset
// (torchvision's vgg19_bn, resnet50, densenet121 as timm publishes them on the Hub) are thin wrappers over it.
//
// Store entries, for a subset entry <base> (e.g. vgg19-<source>-upto-<layer>.safetensors,
// resnet50-<source>-<hash of the tensor list>.safetensors):
//   <base>            the subset (original dtypes, the names asked for), written atomically
//   <base>.sha256     "<hex>  <base>" (sha256sum format) of the subset; checked on every load
//   <base>.part       the needed byte ranges of the remote file, concatenated, as far as they arrived
//   <base>.part.json  what .part is (url, ETag, size, header hash, ranges): a resume continues only if it still matches
//   <index>           (optional, e.g. resnet50-<source>.index.json) the cached subsets and their tensors, so that a
//                     subset holding every tensor asked for serves a request for fewer
import { PainterlyError } from '../gpu/device.ts';
import { selectTensors, VGG19_CONVS, type VggConv } from './layout.ts';
import { parseHeader, parseHeaderLength, writeSafetensors, oneLine, type RawTensor, type SafetensorsHeader, type TensorEntry } from './safetensors.ts';
import type { WeightStore } from './store.ts';
import { legacyTensorNames, torchvisionShapes } from './torchvision-shapes.ts';
import type { LoadOptions } from './vgg19-weights.ts';

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

/** What the transport and cache options of every fetch share. */
interface CommonFetchOptions {
  url: string;
  store: WeightStore;
  onProgress?: (p: Progress) => void;
  /** Informational messages (a corrupt cache being refetched, a server ignoring Range). */
  onMessage?: (m: string) => void;
  signal?: AbortSignal;
  /** Consecutive failed attempts (without any bytes arriving) before giving up. */
  retries?: number;
  /** Milliseconds before the first retry (doubling). */
  retryDelayMs?: number;
  /** Expected sha256 per tensor name; tensors not listed are not checked. */
  expectedSha256?: Readonly<Record<string, string>>;
}

export interface FetchOptions extends CommonFetchOptions {
  /** conv1_1 .. the deepest conv needed. */
  convs: VggConv[];
  /** Expected sha256 per tensor name (default: VGG19_TENSOR_SHA256 for VGG19_URL); tensors not listed are not checked. */
  expectedSha256?: Readonly<Record<string, string>>;
}

/** A tensor of the remote file picked for the subset: `name` is what the subset calls it. */
export interface SelectedTensor { name: string; entry: TensorEntry }

export interface SubsetOptions extends CommonFetchOptions {
  /** The tensors wanted, by name (F32, F16 or BF16); the subset stores them under these names. */
  tensors: string[];
  /** The store entry of the subset (a plain file name ending in .safetensors). */
  entry: string;
  /** What is downloaded, for messages ("ResNet-50 weights"). */
  what: string;
  /** Size of the whole remote file in MB, and where it lives, for the message saying what to download by hand. */
  sizeMb?: number;
  origin?: string;
  /** Expected shape per tensor name, checked against the remote header before any data is fetched. */
  shapes?: ReadonlyMap<string, readonly number[]>;
  /** Other names a tensor may have in the remote file (older spellings); the subset keeps the name asked for. */
  alternatives?: (name: string) => string[];
  /** Picks the tensors out of the remote header and checks them (replaces the name/shape/dtype lookup above). */
  select?: (header: SafetensorsHeader) => SelectedTensor[];
  /** Other entries that, when cached, hold every wanted tensor (a deeper VGG19 subset); tried after `entry`. */
  supersets?: string[];
  /** An entry listing the cached subsets and their tensors: any of them holding every wanted tensor is used. */
  index?: string;
  /** The subset's __metadata__: format, then source and etag, then these. */
  format?: string;
  metadata?: Record<string, string>;
}

/** Ranges closer than this are fetched as one (a request costs more than a few skipped bytes). */
const MERGE_GAP = 64 * 1024;
/** Bytes buffered before being appended to the partial entry. */
const FLUSH_BYTES = 4 * 1024 * 1024;

/** A transport failure worth retrying (connection refused or reset, body cut short, 5xx). */
class NetworkError extends Error {}
/** An HTTP status that retrying will not fix. */
class HttpError extends PainterlyError {}

export interface Subset { bytes: Uint8Array; name: string; where: string }

/** Returns the bytes of the cached subset covering `convs`, downloading it first if needed. */
export async function fetchVgg19Subset(opts: FetchOptions): Promise<Subset> {
  const { url, convs } = opts;
  const source = url === VGG19_URL ? 'tv_in1k' : `url-${await shortHash(url)}`;
  const entry = (layer: string) => `vgg19-${source}-upto-${layer}.safetensors`;
  const deepest = convs.length - 1;
  return fetchTensorSubset({
    ...opts,
    // conv by conv, bias before weight (the order the subset has always been written in)
    tensors: convs.flatMap((c) => [`features.${c.index}.bias`, `features.${c.index}.weight`]),
    entry: entry(convs[deepest].name),
    supersets: VGG19_CONVS.slice(deepest + 1).map((c) => entry(c.name)), // a subset for a deeper layer will do
    what: 'VGG19 weights',
    ...(url === VGG19_URL ? { sizeMb: VGG19_MB, origin: 'timm/vgg19.tv_in1k on the Hugging Face Hub' } : {}),
    expectedSha256: opts.expectedSha256 ?? (url === VGG19_URL ? VGG19_TENSOR_SHA256 : {}),
    select: (header) => selectTensors(header, convs).flatMap((s) => [
      { name: `features.${s.conv.index}.bias`, entry: s.bias }, { name: `features.${s.conv.index}.weight`, entry: s.weight },
    ]),
    format: 'painterly VGG19 subset',
    metadata: { upTo: convs[deepest].name },
  });
}

/** A pretrained backbone's remote file: timm's safetensors conversion of torchvision's ImageNet weights. */
export interface BackboneModel {
  /** For messages: "ResNet-50". */
  title: string;
  /** Hub repository. */
  repo: string;
  /** The commit the file is fetched at (see BACKBONE_MODELS). */
  revision: string;
  /** Size of model.safetensors in MB (approximate: float32 parameters and batch-norm statistics, classifier included). */
  sizeMb: number;
  /** sha256 per tensor (see VGG19_TENSOR_SHA256): empty until a maintainer pins it. */
  tensorSha256: Readonly<Record<string, string>>;
}

/**
 * The pretrained backbones, fetched as https://huggingface.co/<repo>/resolve/<revision>/model.safetensors.
 * The revisions are the main branch for now: this repository was built offline and the Hub's commit of each could
 * not be looked up, so what arrives may change if timm ever updates a file. A maintainer pins each to a commit
 * (and fills tensorSha256) with `node scripts/pin-weights.mjs --model <backbone>` as was done for VGG19.
 */
export const BACKBONE_MODELS: Readonly<Record<string, BackboneModel>> = {
  vgg19: { title: 'VGG19', repo: 'timm/vgg19.tv_in1k', revision: VGG19_REVISION, sizeMb: VGG19_MB, tensorSha256: VGG19_TENSOR_SHA256 },
  vgg19_bn: { title: 'VGG19-BN', repo: 'timm/vgg19_bn.tv_in1k', revision: 'main', sizeMb: 575, tensorSha256: {} },
  resnet50: { title: 'ResNet-50', repo: 'timm/resnet50.tv_in1k', revision: 'main', sizeMb: 103, tensorSha256: {} },
  densenet121: { title: 'DenseNet-121', repo: 'timm/densenet121.tv_in1k', revision: 'main', sizeMb: 32, tensorSha256: {} },
};

export function backboneUrl(backbone: string): string | undefined {
  const m = BACKBONE_MODELS[backbone];
  return m && `https://huggingface.co/${m.repo}/resolve/${m.revision}/model.safetensors`;
}

/**
 * The tensors `tensors` (torchvision names, no prefix; batch norms' num_batches_tracked is never needed) of a
 * pretrained backbone, from the cache or fetched with range requests from its Hub file (opts.url overrides it) and
 * cached as `<backbone>-<source>-<hash of the sorted names>.safetensors`, source `tv_in1k` for the Hub file and
 * `url-<hash of the URL>` otherwise. Any cached subset of the same file holding every tensor asked for is used instead
 * (`<backbone>-<source>.index.json` lists them; a new subset replaces those it covers). Names and shapes (known for
 * the backbones in BACKBONE_MODELS) and dtypes are checked against the remote header before any data is fetched.
 */
export async function fetchBackboneSubset(backbone: string, tensors: string[], opts: LoadOptions): Promise<Subset> {
  const model = BACKBONE_MODELS[backbone];
  const known = Object.keys(BACKBONE_MODELS).join(', ');
  if (!/^[A-Za-z0-9_.-]+$/.test(backbone)) throw new PainterlyError(`backbone '${backbone}': expected one of ${known}`);
  const defaultUrl = backboneUrl(backbone);
  const url = opts.url ?? defaultUrl;
  if (!url) {
    throw new PainterlyError(`no pretrained weights are known for backbone '${backbone}' (known: ${known}); ` +
      'point --weights FILE at a safetensors or .pth file with its tensors, or use --weights random:SEED');
  }
  const wanted = [...new Set(tensors)];
  if (wanted.length === 0) throw new PainterlyError(`${backbone}: no tensors asked for (expected the names of the tensors needed)`);
  const store = opts.store ?? new (await import('./cache-node.ts')).DirStore(opts.cacheDir ?? (await import('./cache-node.ts')).defaultCacheDir());
  const isDefault = url === defaultUrl;
  const source = isDefault ? 'tv_in1k' : `url-${await shortHash(url)}`;
  const title = model?.title ?? backbone;
  return fetchTensorSubset({
    url, store, tensors: wanted,
    entry: `${backbone}-${source}-${await shortHash([...wanted].sort().join('\n'))}.safetensors`,
    index: `${backbone}-${source}.index.json`,
    what: `${title} weights`,
    ...(isDefault && model ? { sizeMb: model.sizeMb, origin: `${model.repo} on the Hugging Face Hub` } : {}),
    expectedSha256: isDefault && model ? model.tensorSha256 : {},
    shapes: torchvisionShapes(backbone),
    alternatives: (n) => legacyTensorNames(backbone, n),
    format: `painterly ${backbone} subset`,
    onProgress: opts.onProgress, onMessage: opts.onMessage, signal: opts.signal, retries: opts.retries, retryDelayMs: opts.retryDelayMs,
  });
}

/**
 * Returns the bytes of a cached subset holding every tensor in `opts.tensors` (the entry itself, one of
 * `opts.supersets`, or one the index lists), fetching the tensors into `opts.entry` first if none is cached.
 * Every cached subset is checked against its recorded sha256 before it is used; a corrupt one is deleted and fetched
 * again, with a message.
 */
export async function fetchTensorSubset(opts: SubsetOptions): Promise<Subset> {
  const { store } = opts;
  const message = opts.onMessage ?? ((m: string) => console.warn(`painterly: ${m}`));
  const index = opts.index ? await readIndex(store, opts.index) : {};
  const wanted = new Set(opts.tensors);
  const indexed = Object.entries(index)
    .filter(([name, names]) => name !== opts.entry && opts.tensors.every((t) => names.includes(t)))
    .sort((a, b) => a[1].length - b[1].length) // the smallest that will do
    .map(([name]) => name);

  for (const name of [opts.entry, ...(opts.supersets ?? []), ...indexed]) {
    const bytes = await store.get(name);
    if (!bytes) continue;
    const want = (await store.get(`${name}.sha256`)) ?? new Uint8Array(0);
    const got = await sha256Hex(bytes);
    if (new TextDecoder().decode(want).split(/\s/)[0] === got) {
      if (holds(bytes, wanted)) return { bytes, name, where: store.where(name) };
      continue;
    }
    message(`cached weights ${store.where(name)} are corrupt (sha256 ${got} does not match ${store.where(`${name}.sha256`)}); downloading them again`);
    await store.delete(name);
    await store.delete(`${name}.sha256`);
    if (opts.index && name in index) {
      delete index[name];
      await store.put(opts.index, new TextEncoder().encode(JSON.stringify(index)));
    }
  }

  const bytes = await download(opts, opts.entry, message);
  if (opts.index) {
    // The new subset replaces those it covers.
    const latest = await readIndex(store, opts.index);
    for (const [name, names] of Object.entries(latest)) {
      if (name !== opts.entry && names.every((n) => wanted.has(n))) {
        await store.delete(name);
        await store.delete(`${name}.sha256`);
        delete latest[name];
      }
    }
    latest[opts.entry] = [...opts.tensors];
    await store.put(opts.index, new TextEncoder().encode(JSON.stringify(latest)));
  }
  return { bytes, name: opts.entry, where: store.where(opts.entry) };
}

/** The index entry: subset entry name -> its tensor names; an unreadable index counts as empty. */
async function readIndex(store: WeightStore, name: string): Promise<Record<string, string[]>> {
  const raw = await store.get(name);
  if (!raw) return {};
  try {
    const v = JSON.parse(new TextDecoder().decode(raw)) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return {};
    return Object.fromEntries(Object.entries(v as Record<string, unknown>)
      .filter((e): e is [string, string[]] => Array.isArray(e[1]) && e[1].every((n) => typeof n === 'string')));
  } catch {
    return {};
  }
}

/** Whether a subset (already checked against its sha256) has every tensor wanted. */
function holds(bytes: Uint8Array, wanted: Set<string>): boolean {
  try {
    const n = parseHeaderLength(bytes.subarray(0, 8), 'subset', bytes.length);
    const h = parseHeader(bytes.subarray(8, 8 + n), 'subset', bytes.length);
    return [...wanted].every((t) => h.tensors.has(t));
  } catch {
    return false;
  }
}

/** Looks each wanted tensor (or one of its other spellings) up in the header; checks shape and dtype. */
function selectByName(header: SafetensorsHeader, opts: SubsetOptions): SelectedTensor[] {
  const file = header.file;
  return opts.tensors.map((name) => {
    const shape = opts.shapes?.get(name);
    const found = [name, ...(opts.alternatives?.(name) ?? [])].find((n) => header.tensors.has(n));
    if (found === undefined) {
      const some = [...header.tensors.keys()].slice(0, 3).join(', ') || 'none';
      throw new PainterlyError(`${file}: tensor ${name} is missing${shape ? `: expected shape [${shape}]` : ''} ` +
        `(is this the file of ${opts.what}? it has ${some}${header.tensors.size > 3 ? ', ...' : ''})`);
    }
    const e = header.tensors.get(found)!;
    if (shape && (e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i]))) {
      throw new PainterlyError(`${file}: tensor ${found}: expected shape [${shape}], found [${e.shape}]`);
    }
    if (e.dtype !== 'F32' && e.dtype !== 'F16' && e.dtype !== 'BF16') {
      throw new PainterlyError(`${file}: tensor ${found}: dtype ${e.dtype} is not supported, expected F32, F16 or BF16`);
    }
    return { name, entry: e };
  });
}

async function download(opts: SubsetOptions, name: string, message: (m: string) => void): Promise<Uint8Array> {
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
    const about = [opts.sizeMb !== undefined ? `${opts.sizeMb} MB` : '', opts.origin ?? ''].filter(Boolean).join(', ');
    throw new PainterlyError(`cannot download ${opts.what} from ${url} (${oneLine(e).replace(`${url}: `, '')}) and there is no cached copy in ` +
      `${store.where('')}; download that file${about ? ` (${about})` : ''} ` +
      `yourself and point at it with --weights FILE, or use --weights random:SEED for untrained weights`);
  }
  const selected = opts.select ? opts.select(header) : selectByName(header, opts);

  // 2. The byte ranges of the needed tensors, sorted and merged.
  const spans = selected.map((s) => [s.entry.begin, s.entry.end]).sort((a, b) => a[0] - b[0]);
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
  const tensors: RawTensor[] = selected.map(({ name: tname, entry: e }) => {
    const r = lastIndex(ranges, ([b]) => b <= e.begin);
    const at = starts[r] + e.begin - ranges[r][0];
    return { name: tname, dtype: e.dtype, shape: e.shape, data: data.subarray(at, at + e.end - e.begin) };
  });
  const expected = opts.expectedSha256 ?? {};
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
    format: opts.format ?? 'painterly tensor subset', source: url, etag: etag ?? '', ...opts.metadata,
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

/** The first 16 hex digits of the sha256 of a string (entry names). */
async function shortHash(s: string): Promise<string> {
  return (await sha256Hex(new TextEncoder().encode(s))).slice(0, 16);
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
