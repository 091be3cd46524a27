#!/usr/bin/env node
// Pins the default VGG19 weights: resolves the Hub repository's current commit, downloads the conv tensors of
// model.safetensors at that commit (HTTP range requests, about 80 MB) and prints the VGG19_REVISION and
// VGG19_TENSOR_SHA256 to paste into src/weights/download.ts. A maintainer runs it when the pins are to be refreshed:
//   node scripts/pin-weights.mjs                      # timm/vgg19.tv_in1k on the Hugging Face Hub
//   node scripts/pin-weights.mjs --url URL [--revision REV]   # any safetensors file (tests use a local server)
import { createHash } from 'node:crypto';

const args = process.argv.slice(2);
const opt = (name) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const REPO = 'timm/vgg19.tv_in1k';
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
// The conv layers of torchvision's VGG19 features: conv1_1 .. conv5_4 (what Painterly may ever load).
const convs = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34];
const table = {};
for (const i of convs) {
  for (const part of ['weight', 'bias']) {
    const name = `features.${i}.${part}`;
    const e = header[name];
    if (!e) continue; // a file that stops earlier (conv5_1 is the deepest the default layers need)
    const [b, en] = e.data_offsets;
    table[name] = createHash('sha256').update(await range(8 + n + b, 8 + n + en)).digest('hex');
  }
}
console.log(JSON.stringify({ url, revision: revision ?? null, tensors: table }, null, 2));
