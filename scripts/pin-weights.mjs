#!/usr/bin/env node
// Pins the default pretrained weights: resolves the Hub repository's current commit, downloads the feature
// extractor's tensors of model.safetensors at that commit (HTTP range requests) and prints the revision and the
// per-tensor sha256 table to paste into src/weights/download.ts (VGG19_REVISION and VGG19_TENSOR_SHA256, or a
// backbone's revision and tensorSha256 in BACKBONE_MODELS). A maintainer runs it when the pins are to be refreshed:
//   node scripts/pin-weights.mjs                      # timm/vgg19.tv_in1k on the Hugging Face Hub (about 80 MB)
//   node scripts/pin-weights.mjs --model resnet50     # timm/resnet50.tv_in1k (also vgg19_bn, densenet121)
//   node scripts/pin-weights.mjs [--model M] --url URL [--revision REV]   # any safetensors file (tests use a local server)
import { createHash } from 'node:crypto';

const args = process.argv.slice(2);
const opt = (name) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const model = opt('--model') ?? 'vgg19';
const REPOS = { vgg19: 'timm/vgg19.tv_in1k', vgg19_bn: 'timm/vgg19_bn.tv_in1k', resnet50: 'timm/resnet50.tv_in1k', densenet121: 'timm/densenet121.tv_in1k' };
if (!(model in REPOS)) throw new Error(`--model ${model}: expected one of ${Object.keys(REPOS).join(', ')}`);
const REPO = REPOS[model];
let revision = opt('--revision');
let url = opt('--url');
if (!url) {
  if (!revision) {
    const r = await fetch(`https://huggingface.co/api/models/${REPO}/revision/main`);
    if (!r.ok) throw new Error(`cannot resolve ${REPO}@main: HTTP ${r.status}`);
    revision = (await r.json()).sha;
  }
  url = `https://huggingface.co/${REPO}/resolve/${revision}/model.safetensors`;
}

async function range(begin, end) {
  const r = await fetch(url, { headers: { range: `bytes=${begin}-${end - 1}` } });
  if (r.status !== 206 && r.status !== 200) throw new Error(`${url}: HTTP ${r.status}`);
  const bytes = new Uint8Array(await r.arrayBuffer());
  return r.status === 200 ? bytes.subarray(begin, end) : bytes;
}

const first = await range(0, 8);
const n = Number(new DataView(first.buffer, first.byteOffset, 8).getBigUint64(0, true));
const header = JSON.parse(new TextDecoder().decode(await range(8, 8 + n)));
// What Painterly may ever load. VGG19: the conv layers of torchvision's features, conv1_1 .. conv5_4. The others:
// every float tensor but the classifier's (batch norms' int64 num_batches_tracked is never loaded).
let names;
if (model === 'vgg19') {
  names = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34].flatMap((i) => [`features.${i}.weight`, `features.${i}.bias`]);
} else {
  names = Object.keys(header).filter((k) => k !== '__metadata__' && ['F32', 'F16', 'BF16'].includes(header[k].dtype) &&
    !/^(fc|classifier|head|pre_logits)\./.test(k));
}
const table = {};
for (const name of names) {
  const e = header[name];
  if (!e) continue; // a file that stops earlier (conv5_1 is the deepest the default layers need)
  const [b, en] = e.data_offsets;
  table[name] = createHash('sha256').update(await range(8 + n + b, 8 + n + en)).digest('hex');
}
console.log(JSON.stringify({ ...(model === 'vgg19' ? {} : { model }), url, revision: revision ?? null, tensors: table }, null, 2));
