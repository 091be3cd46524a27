// Named downloadable models: per file a path relative to the model's folder (laid out as upstream, so `--model DIR`
// and `--model NAME` reach the same reader), a URL pinned to a commit or a release, sha256, size and licence.
// fetchModelFile downloads one whole file into a WeightStore (Node: <cache>/models/<model>/<path>), resuming an
// interrupted download with HTTP Range, and checks its sha256 on every load.
//
// Trust on first use: a file whose sha256 is undefined (not established when the table was written) is hashed on its
// first complete download and the hash is recorded next to it (<path>.sha256); every later load, and any later
// download, must match that recorded hash.
import { PainterlyError } from '../gpu/device.ts';
import { sha256Hex, type Progress } from './download.ts';
import { oneLine } from './safetensors.ts';
import type { WeightStore } from './store.ts';

export interface ModelFile {
  /** Relative path inside the model folder (upstream's layout). */
  path: string;
  /** Pinned to a commit or a release. */
  url: string;
  /** undefined: trust on first use (see above). */
  sha256?: string;
  /** Bytes; undefined when not known in advance. */
  size?: number;
  license: string;
  /** What the file is. */
  note?: string;
}

export interface ModelSpec {
  name: string;
  description: string;
  /** Upstream repository and version. */
  source: string;
  files: ModelFile[];
}

const CD_COMMIT = '4a269dc90020721ef9b279b2926c62f5bcd6d209';
const CD_RAW = `https://raw.githubusercontent.com/MingSun-Tse/Collaborative-Distillation/${CD_COMMIT}/trained_models`;
const CD_LICENSE = 'MIT, (c) 2020 Huan Wang (github.com/MingSun-Tse/Collaborative-Distillation)';
const wct = (path: string, sha256: string, size: number, note: string): ModelFile =>
  ({ path, url: `${CD_RAW}/${path}`, sha256, size, license: CD_LICENSE, note });

const ADAIN_RELEASE = 'https://github.com/naoto0804/pytorch-AdaIN/releases/download/v0.0.0';
const ADAIN_LICENSE = 'MIT, (c) 2018 Naoto Inoue (github.com/naoto0804/pytorch-AdaIN); weights converted from Huang & Belongie\'s AdaIN release';

export const MODELS: Readonly<Record<string, ModelSpec>> = {
  'wct-16x': {
    name: 'wct-16x',
    description: 'Collaborative Distillation (Wang et al., CVPR 2020): 16x smaller VGG-19 encoders relu1_1..relu5_1 and their decoders (legacy .pth)',
    source: `github.com/MingSun-Tse/Collaborative-Distillation@${CD_COMMIT} trained_models/`,
    files: [
      wct('wct_se_16x_new/20191110-133713_E20.pth', 'f74755a65164a88e0db8cbb7d99d7078b9fa505df0953fac5123bfc7c84e0ea4', 10271, 'encoder level 1 (upstream 1SE.pth)'),
      wct('wct_se_16x_new/20191110-132713_E20.pth', 'cb654af6bae77176f8c7721c965483e865b987f2f1612dda1ba0d0b5c3819a61', 52833, 'encoder level 2 (2SE.pth)'),
      wct('wct_se_16x_new/20191110-132705_E20.pth', '269cdd0e2634e3e1e5d3005b9e7eca0f4cc8077653fee1ac8c0cf1cbe9ab8758', 231124, 'encoder level 3 (3SE.pth)'),
      wct('wct_se_16x_new/20191110-132643_E20.pth', 'd2f059cbcd6669556a43aadef58d20c8b280462c18b60a9e7424a14dd271cd6b', 1235183, 'encoder level 4 (4SE.pth)'),
      wct('wct_se_16x_new/20191109-211322_E20.pth', '9417c34d0d8d621bc6af78be745f1b8d30f5f210efa01e50655c60eb3770816b', 3862288, 'encoder level 5 (5SE.pth)'),
      wct('wct_se_16x_new_sd/20191111-091942_E20.pth', '05f26ad40044c019da0cf731372d5bd2ee4b477825c7f45508da70b1cd5a95fd', 3220, 'decoder level 1 (1SD.pth)'),
      wct('wct_se_16x_new_sd/20191111-091932_E20.pth', '94dd26f0e69857f79bf284a43a3708aa05c09c2593427c7f6e400ad12ce314e6', 30672, 'decoder level 2 (2SD.pth)'),
      wct('wct_se_16x_new_sd/20191111-091929_E20.pth', '005faba27859435762a8a9386116c00629cd8835a01617d0a71defa577c42174', 142014, 'decoder level 3 (3SD.pth)'),
      wct('wct_se_16x_new_sd/20191111-092553_E20.pth', '902f65e2c6033d803d02df552eb898e5985190a7ae67d155e384826eec6f04cb', 881308, 'decoder level 4 (4SD.pth)'),
      wct('wct_se_16x_new_sd/20191110-204615_E20.pth', '17fd0f81622f01366eb21cb4d40140ee38cf988ed6eaf266629709c397a8b485', 3243622, 'decoder level 5 (5SD.pth)'),
    ],
  },
  adain: {
    name: 'adain',
    description: 'AdaIN (Huang & Belongie, ICCV 2017) as ported to PyTorch: the normalised VGG-19 encoder and the trained decoder',
    source: 'github.com/naoto0804/pytorch-AdaIN release v0.0.0',
    files: [
      // sha256 and size could not be established when this table was written: trust on first use.
      { path: 'vgg_normalised.pth', url: `${ADAIN_RELEASE}/vgg_normalised.pth`, sha256: undefined, license: ADAIN_LICENSE, note: 'normalised VGG-19 encoder' },
      { path: 'decoder.pth', url: `${ADAIN_RELEASE}/decoder.pth`, sha256: undefined, license: ADAIN_LICENSE, note: 'AdaIN decoder' },
    ],
  },
};

export function getModel(name: string): ModelSpec {
  const m = MODELS[name];
  if (!m) throw new PainterlyError(`unknown model '${name}': expected one of ${Object.keys(MODELS).join(', ')}, or a folder with --model DIR`);
  return m;
}

export interface ModelFetchOptions {
  /** Node: the cache directory (default $PAINTERLY_CACHE, else $XDG_CACHE_HOME/painterly, else ~/.cache/painterly). */
  cacheDir?: string;
  /** Any other store (a browser's); its entries are named <model>/<path>. Overrides cacheDir. */
  store?: WeightStore;
  /** Default globalThis.fetch. */
  fetch?: typeof fetch;
  signal?: AbortSignal;
  onProgress?: (p: Progress & { file: string }) => void;
  /** Informational messages (a recorded hash, a corrupt cache refetched); default console.warn. */
  onMessage?: (m: string) => void;
  /** Consecutive failed attempts without any bytes arriving before giving up (default 4), first retry delay in ms. */
  retries?: number;
  retryDelayMs?: number;
}

export interface FetchedFile { file: ModelFile; /** Path (Node) or store location. */ where: string; sha256: string; size: number }

/** Bytes buffered before being appended to the partial file. */
const FLUSH_BYTES = 4 * 1024 * 1024;

class NetworkError extends Error {}
class HttpError extends PainterlyError {}

/** Makes one file of a model present and verified in the cache; downloads it (resuming a partial one) if needed. */
export async function fetchModelFile(model: string | ModelSpec, file: string | ModelFile, opts: ModelFetchOptions = {}): Promise<FetchedFile> {
  const spec = typeof model === 'string' ? getModel(model) : model;
  const f = typeof file === 'string' ? spec.files.find((x) => x.path === file) : file;
  if (!f) throw new PainterlyError(`model ${spec.name} has no file ${String(file)}: expected one of ${spec.files.map((x) => x.path).join(', ')}`);
  const { store, name } = await storeFor(spec, f, opts);
  const message = opts.onMessage ?? ((m: string) => console.warn(`painterly: ${m}`));
  const hashName = `${name}.sha256`;
  const recorded = async () => new TextDecoder().decode((await store.get(hashName)) ?? new Uint8Array(0)).split(/\s/)[0] || undefined;

  const cached = await store.get(name);
  if (cached) {
    const got = await sha256Hex(cached);
    const want = f.sha256 ?? (await recorded());
    if (want === undefined) {
      await store.put(hashName, new TextEncoder().encode(`${got}  ${baseName(f.path)}\n`));
      message(`recorded sha256 ${got} of ${store.where(name)} (no pinned hash: trusted on first use)`);
    }
    if (want === undefined || want === got) return { file: f, where: store.where(name), sha256: got, size: cached.length };
    message(`cached ${store.where(name)} is corrupt (sha256 ${got}, expected ${want}); downloading it again`);
    await store.delete(name);
  }

  let bytes: Uint8Array;
  try {
    bytes = await download(spec, f, store, name, message, opts);
  } catch (e) {
    if (e instanceof PainterlyError && !(e instanceof HttpError)) throw e;
    if (opts.signal?.aborted || (e as Error)?.name === 'AbortError') throw e;
    throw new PainterlyError(`cannot download ${f.url} (${oneLine(e).replace(`${f.url}: `, '')}) and there is no cached copy in ${store.where(name)}; ` +
      `download model ${spec.name} yourself (from ${spec.source}) and point at its folder with --model DIR`);
  }
  const got = await sha256Hex(bytes);
  const want = f.sha256 ?? (await recorded());
  if (f.size !== undefined && bytes.length !== f.size || want !== undefined && got !== want) {
    await store.delete(`${name}.part`);
    await store.delete(`${name}.part.json`);
    const how = f.sha256 ? 'pinned in the model table' : `recorded on first download in ${store.where(hashName)} (delete it to trust the new file)`;
    throw new PainterlyError(`${f.url}: the download does not match: ${bytes.length} bytes with sha256 ${got}, expected ` +
      `${f.size ?? '?'} bytes with sha256 ${want ?? '?'} (${how}); it was discarded. Download the file yourself and use --model DIR`);
  }
  if (want === undefined) {
    await store.put(hashName, new TextEncoder().encode(`${got}  ${baseName(f.path)}\n`));
    message(`recorded sha256 ${got} of ${store.where(name)} (no pinned hash: trusted on first use, later loads must match)`);
  }
  await store.put(name, bytes);
  await store.delete(`${name}.part`);
  await store.delete(`${name}.part.json`);
  return { file: f, where: store.where(name), sha256: got, size: bytes.length };
}

/** Node: makes every file of a model present and verified; returns its folder (<cache>/models/<model>), laid out as upstream. */
export async function resolveModelDir(model: string | ModelSpec, opts: Omit<ModelFetchOptions, 'store'> = {}): Promise<string> {
  const spec = typeof model === 'string' ? getModel(model) : model;
  for (const f of spec.files) await fetchModelFile(spec, f, opts);
  return `${await cacheRoot(opts)}/models/${spec.name}`;
}

async function cacheRoot(opts: ModelFetchOptions): Promise<string> {
  return opts.cacheDir ?? (await import('./cache-node.ts')).defaultCacheDir();
}

async function storeFor(spec: ModelSpec, f: ModelFile, opts: ModelFetchOptions): Promise<{ store: WeightStore; name: string }> {
  if (f.path.split('/').some((s) => s === '' || s === '.' || s === '..')) throw new PainterlyError(`model ${spec.name}: bad file path ${f.path}`);
  if (opts.store) return { store: opts.store, name: `${spec.name}/${f.path}` };
  const { DirStore } = await import('./cache-node.ts');
  const i = f.path.lastIndexOf('/');
  const dir = `${await cacheRoot(opts)}/models/${spec.name}${i < 0 ? '' : `/${f.path.slice(0, i)}`}`;
  return { store: new DirStore(dir), name: f.path.slice(i + 1) };
}

const baseName = (p: string) => p.slice(p.lastIndexOf('/') + 1);

/** Downloads the whole file into <name>.part (appending, so an interruption keeps what arrived) and returns it. */
async function download(spec: ModelSpec, f: ModelFile, store: WeightStore, name: string, message: (m: string) => void, opts: ModelFetchOptions): Promise<Uint8Array> {
  const part = `${name}.part`;
  const metaName = `${name}.part.json`;
  const doFetch = opts.fetch ?? fetch;
  const url = f.url;
  let meta: { url?: string; etag?: string | null } = {};
  try { meta = JSON.parse(new TextDecoder().decode((await store.get(metaName)) ?? new Uint8Array(0))); } catch { meta = {}; }
  let have = meta.url === url ? (await store.size(part)) ?? 0 : 0;
  if (have === 0) { await store.delete(part); await store.delete(metaName); meta = {}; }
  if (have > 0) message(`resuming the download of ${url} at ${mb(have)} MB`);
  let total = f.size;
  const retries = opts.retries ?? 4;
  let failures = 0;
  for (;;) {
    if (total !== undefined && have >= total) break;
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
      const headers: Record<string, string> = { 'Accept-Encoding': 'identity' };
      if (have > 0) {
        headers.Range = `bytes=${have}-`;
        if (meta.etag) headers['If-Range'] = meta.etag;
      }
      let res: Response;
      try {
        res = await doFetch(url, { headers, signal: opts.signal });
      } catch (e) {
        throw opts.signal?.aborted ? e : new NetworkError(describeFetchError(e));
      }
      if (res.status === 206) {
        const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
        if (!m || Number(m[1]) !== have) {
          await res.body?.cancel();
          throw new PainterlyError(`${url}: asked for bytes ${have}-, the server sent Content-Range '${res.headers.get('content-range')}'`);
        }
        if (m[3] !== '*') total = Number(m[3]);
      } else if (res.status === 200) {
        if (have > 0) {
          message(`${url} did not resume (the file changed, or the server ignores ranges); starting over`);
          await store.delete(part);
          have = 0;
        }
        const len = res.headers.get('content-length');
        if (len !== null) total = Number(len);
      } else if (res.status === 416 && have > 0) {
        await res.body?.cancel(); // the partial file is already complete, or is not this file: start over
        await store.delete(part);
        have = 0;
        continue;
      } else {
        await res.body?.cancel();
        const what = `${url}: HTTP ${res.status} ${res.statusText}`.trim();
        if (res.status >= 500 || res.status === 429) throw new NetworkError(what);
        throw new HttpError(what);
      }
      if (have === 0) await store.put(metaName, new TextEncoder().encode(JSON.stringify({ url, etag: res.headers.get('etag') })));
      meta.etag = res.headers.get('etag');
      if (!res.body) throw new NetworkError(`${url}: empty response`);
      const reader = res.body.getReader();
      for (;;) {
        let r: ReadableStreamReadResult<Uint8Array>;
        try {
          r = await reader.read();
        } catch (e) {
          throw opts.signal?.aborted ? e : new NetworkError(describeFetchError(e));
        }
        if (r.done) break;
        buffered.push(r.value); bufferedBytes += r.value.length;
        opts.onProgress?.({ file: f.path, bytes: have + bufferedBytes, total: total ?? 0 });
        if (bufferedBytes >= FLUSH_BYTES) await flush();
      }
      await flush();
      if (total === undefined) break; // no length given: the end of the body is the end of the file
      if (have < total) throw new NetworkError(`connection closed ${total - have} bytes before the end`);
    } catch (e) {
      await flush(); // keep whatever arrived
      if (!(e instanceof NetworkError)) throw e;
      failures = have > haveAtStart ? 1 : failures + 1;
      if (failures > retries) {
        if (have === 0) throw e; // nothing ever arrived: the caller says how to do without the network
        throw new PainterlyError(`download of ${url} interrupted after ${mb(have)} of ${total === undefined ? '?' : mb(total)} MB (${oneLine(e)}); ` +
          `the partial download ${store.where(part)} will be resumed by the next run, or use --model DIR with model ${spec.name} downloaded by hand`);
      }
      await sleep((opts.retryDelayMs ?? 250) * 2 ** (failures - 1), opts.signal);
    }
  }
  const data = (await store.get(part)) ?? new Uint8Array(0);
  opts.onProgress?.({ file: f.path, bytes: data.length, total: data.length });
  return data;
}

function describeFetchError(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } })?.cause;
  return `${oneLine(e)}${cause ? `: ${cause.code ?? oneLine(cause.message)}` : ''}`;
}

function concat(chunks: Uint8Array[], n: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(n);
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.length; }
  return out;
}

const mb = (n: number) => (n / 1e6).toFixed(1);

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(t); reject(signal!.reason); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
