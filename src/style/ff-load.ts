// Loading a feed-forward model (--model NAME|DIR): a name from the model table (downloaded once, cached, hash
// checked) or a folder laid out like upstream's; every file is checked to exist before any is read.
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { readNetWeights } from '../weights/net-weights.ts';
import type { ModelFetchOptions } from '../weights/models.ts';
import { openTensorTable } from '../weights/tables.ts';
import { FeedForwardModel } from './feedforward.ts';
import { FF_MODELS, type FeedForwardModelSpec } from './ff-models.ts';

/** Which model a folder holds, from its files. */
async function modelOfDir(dir: string): Promise<FeedForwardModelSpec> {
  const { existsSync, join } = await import('../weights/cache-node.ts');
  if (!existsSync(dir)) throw new PainterlyError(`--model: "${dir}" is neither a model name (${Object.keys(FF_MODELS).join(', ')}) nor an existing folder`);
  for (const spec of Object.values(FF_MODELS)) {
    if (existsSync(join(dir, spec.files[0]))) {
      const missing = spec.files.filter((f) => !existsSync(join(dir, f)));
      if (missing.length) throw new PainterlyError(`--model ${dir}: looks like ${spec.name} but ${missing[0]} is missing (expected ${spec.files.join(', ')})`);
      return spec;
    }
  }
  throw new PainterlyError(`--model ${dir}: expected a folder laid out like upstream: wct_se_16x_new/ and wct_se_16x_new_sd/ (wct-16x), ` +
    'or vgg_normalised.pth and decoder.pth (adain)');
}

/** Checks a --model value without loading anything: a known name, or a folder with a model's files. */
export async function checkModelSpec(spec: string): Promise<void> {
  if (!(spec in FF_MODELS)) await modelOfDir(spec);
}

export async function loadFeedForwardModel(gpu: Gpu, spec: string, opts: Omit<ModelFetchOptions, 'store'> = {}): Promise<FeedForwardModel> {
  let dir: string;
  let model: FeedForwardModelSpec;
  if (spec in FF_MODELS) {
    const { resolveModelDir } = await import('../weights/models.ts');
    model = FF_MODELS[spec];
    dir = await resolveModelDir(spec, opts);
  } else {
    dir = spec;
    model = await modelOfDir(dir);
  }
  const { openFileSource, join } = await import('../weights/cache-node.ts');
  return FeedForwardModel.load(gpu, model, async (file, desc, names, o) => {
    const src = await openFileSource(join(dir, file));
    try {
      return await readNetWeights(desc, names, await openTensorTable(src), { source: `${model.name} ${file}`, exact: o?.exact });
    } finally {
      await src.close();
    }
  }, `${model.name} from ${dir}`);
}
