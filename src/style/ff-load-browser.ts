// Feed-forward models where there is no file system (browsers): a model from the table (src/weights/models.ts)
// downloaded once into a WeightStore (IndexedDB in a page, so a second visit works offline) with its sha256 checked
// on every load, or a folder the user picked (<input type=file webkitdirectory>) laid out like upstream's. Either
// way the files become ByteSources and the model is built by FeedForwardModel.load with a LoadNet over them.
// Environment-neutral (no Node modules, no DOM types beyond Blob).
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { readNetWeights } from '../weights/net-weights.ts';
import { fetchModelFile, getModel, type ModelFetchOptions, type ModelSpec } from '../weights/models.ts';
import { bytesSource, type ByteSource } from '../weights/safetensors.ts';
import type { WeightStore } from '../weights/store.ts';
import { openTensorTable } from '../weights/tables.ts';
import { FeedForwardModel, type LoadNet } from './feedforward.ts';
import { FF_MODELS, type FeedForwardModelSpec } from './ff-models.ts';

/** A model's files by their path in the model folder (upstream's layout, e.g. wct_se_16x_new/20191110-133713_E20.pth). */
export type ModelFiles = Map<string, ByteSource>;

/** A LoadNet reading checkpoints (.pth or safetensors) from ByteSources. */
export function sourcesLoadNet(spec: FeedForwardModelSpec, files: ModelFiles): LoadNet {
  return async (file, desc, names, o) => {
    const src = files.get(file);
    if (!src) throw new PainterlyError(`model ${spec.name}: file ${file} is missing (expected ${spec.files.join(', ')})`);
    return readNetWeights(desc, names, await openTensorTable(src), { source: `${spec.name} ${file}`, exact: o?.exact });
  };
}

/** Builds a model's networks (`levels`, default all) on the GPU from its files. */
export function loadModelFromFiles(gpu: Gpu, spec: FeedForwardModelSpec, files: ModelFiles, source: string, levels = spec.levels): Promise<FeedForwardModel> {
  const needed = levels.flatMap((k) => [spec.level(k).encoderFile, spec.level(k).decoderFile]);
  const missing = needed.filter((f) => !files.has(f));
  if (missing.length) throw new PainterlyError(`${source}: ${missing[0]} is missing (model ${spec.name} expects ${spec.files.join(', ')})`);
  return FeedForwardModel.load(gpu, spec, sourcesLoadNet(spec, files), source, levels);
}

export interface BrowserModelFetchOptions extends Omit<ModelFetchOptions, 'store' | 'cacheDir'> {
  store: WeightStore;
  /** A mirror of the model folder (files at BASE/<path>) instead of the table's URLs; the table's hashes still apply. */
  baseUrl?: string;
}

/** The table's entry for `name`, with its URLs moved to a mirror when `baseUrl` is given. */
export function mirroredModel(name: string, baseUrl?: string): ModelSpec {
  const spec = getModel(name);
  if (!baseUrl) return spec;
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  return { ...spec, files: spec.files.map((f) => ({ ...f, url: new URL(f.path, base).href })) };
}

/**
 * Makes every file of a table model present and verified in `store` (downloading what is missing, resuming partial
 * downloads) and returns the files as ByteSources over the stored bytes. Entries are named <model>/<path>.
 */
export async function fetchModelFiles(name: string, opts: BrowserModelFetchOptions): Promise<ModelFiles> {
  const spec = mirroredModel(name, opts.baseUrl);
  const files: ModelFiles = new Map();
  for (const f of spec.files) {
    const got = await fetchModelFile(spec, f, opts);
    const bytes = await opts.store.get(`${spec.name}/${f.path}`);
    if (!bytes || bytes.length !== got.size) throw new PainterlyError(`${got.where}: vanished from the store after it was verified`);
    files.set(f.path, bytesSource(got.where, bytes));
  }
  return files;
}

/** A picked file: its path relative to the picked folder's parent (File.webkitRelativePath) and its bytes. */
export interface PickedFile { path: string; source: ByteSource }

/**
 * Which model a picked folder holds and its files by model path. The folder may be the model folder itself or any
 * folder above it (the first match wins); every file of the model must be there.
 */
export function modelFromPickedFiles(picked: PickedFile[]): { spec: FeedForwardModelSpec; files: ModelFiles; folder: string } {
  const byPath = new Map(picked.map((p) => [p.path.replace(/\\/g, '/'), p.source]));
  for (const spec of Object.values(FF_MODELS)) {
    const first = spec.files[0];
    for (const path of byPath.keys()) {
      if (path !== first && !path.endsWith(`/${first}`)) continue;
      const prefix = path.slice(0, path.length - first.length);
      const missing = spec.files.filter((f) => !byPath.has(prefix + f));
      if (missing.length) {
        throw new PainterlyError(`the folder ${prefix || '.'} looks like model ${spec.name} but ${missing[0]} is missing (expected ${spec.files.join(', ')})`);
      }
      return { spec, files: new Map(spec.files.map((f) => [f, byPath.get(prefix + f)!])), folder: prefix.replace(/\/$/, '') || '.' };
    }
  }
  throw new PainterlyError('the chosen folder holds no known model: expected upstream\'s layout, wct_se_16x_new/ and wct_se_16x_new_sd/ ' +
    `(wct-16x), or vgg_normalised.pth and decoder.pth (adain); found ${picked.length} file(s)` +
    (picked.length ? `, e.g. ${picked.slice(0, 3).map((p) => p.path).join(', ')}` : ''));
}
