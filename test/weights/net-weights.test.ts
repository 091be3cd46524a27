// readNetWeights on small PyTorch checkpoints the test writes in both formats (zip and legacy): a normalised-VGG
// decoder and encoder named as the wct-16x files name them ({"model": OrderedDict}, conv{b}{i}), loaded through the
// format-sniffing table; then the one-line errors for checkpoints that do not fit the description: a missing tensor,
// a wrong shape, an extra tensor where the file must hold exactly the network (decoders), another network's file.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { NetDescription } from '../../src/nets/describe.ts';
import { convInputChannels } from '../../src/nets/graph.ts';
import { normalisedVggDecoder, normalisedVggEncoder, wctTensorName } from '../../src/nets/normalised-vgg.ts';
import { readNetWeights } from '../../src/weights/net-weights.ts';
import { bytesSource } from '../../src/weights/safetensors.ts';
import { openTensorTable } from '../../src/weights/tables.ts';
import { nextSeed } from '../helpers.ts';
import { legacyCheckpoint, odict, tensor, zipCheckpoint, type Dtype, type Storage } from './pth-writer.ts';
import { randomBytes, rejects } from './weights-helpers.ts';

const test = suite('net weights from .pth');

const WIDTHS = [3, 4, 5, 5, 5];
const DEC = normalisedVggDecoder('tiny/decoder2', 2, { widths: WIDTHS, finalRelu: true });
const ENC = normalisedVggEncoder('tiny/encoder2', 2, { widths: WIDTHS });

interface Entry { name: string; shape: number[]; storage: Storage }
let key = 0;
function entry(name: string, shape: number[], dtype: Dtype = 'F32'): Entry {
  const n = shape.reduce((a, b) => a * b, 1);
  return { name, shape, storage: { key: String(++key), dtype, bytes: randomBytes(dtype, n, nextSeed()) } };
}

/** Every conv's weight and bias with the description's shapes, named model.<wct name>.{weight,bias}. */
function entries(desc: NetDescription, dtype: (conv: string) => Dtype = () => 'F32'): Entry[] {
  const cins = convInputChannels(desc, desc.layers.at(-1)!.name);
  return desc.layers.flatMap((l) => (l.op !== 'conv' ? [] : [
    entry(`model.${wctTensorName(l.name)}.weight`, [l.cout, cins.get(l.name)!, l.k, l.k], dtype(l.name)),
    entry(`model.${wctTensorName(l.name)}.bias`, [l.cout], dtype(l.name)),
  ]));
}

/** The checkpoint as torch.save writes {"epoch": 20, "model": OrderedDict(...)}, in one format. */
function file(es: Entry[], format: 'zip' | 'legacy'): Uint8Array {
  const value = { epoch: 20, model: odict(es.map((e) => [e.name.slice('model.'.length), tensor(e.storage, e.shape)])) };
  const storages = es.map((e) => e.storage);
  return format === 'zip' ? zipCheckpoint(value, storages) : legacyCheckpoint(value, storages);
}

function decode(e: Entry): number[] {
  const dv = new DataView(e.storage.bytes.buffer, e.storage.bytes.byteOffset, e.storage.bytes.length);
  if (e.storage.dtype === 'F32') return Array.from({ length: e.storage.bytes.length / 4 }, (_, i) => dv.getFloat32(4 * i, true));
  // BF16: the upper half of a float32.
  return Array.from({ length: e.storage.bytes.length / 2 }, (_, i) => new DataView(Uint32Array.of(dv.getUint16(2 * i, true) << 16).buffer).getFloat32(0, true));
}

async function load(desc: NetDescription, name: string, bytes: Uint8Array, exact = false) {
  return readNetWeights(desc, wctTensorName, await openTensorTable(bytesSource(name, bytes)), { source: name, exact });
}

for (const format of ['zip', 'legacy'] as const) {
  test(`${format}: a decoder and an encoder load with every value (F32 and BF16), extras ignored unless exact`, async () => {
    const es = entries(DEC, (c) => (c === 'conv1_2' ? 'BF16' : 'F32'));
    const w = await load(DEC, `dec.${format}.pth`, file(es, format), true);
    assert.equal([...w.convs.keys()], ['conv2_1', 'conv1_2', 'conv1_1']);
    for (const e of es) {
      const [, base, part] = /^model\.conv(\d\d)\.(weight|bias)$/.exec(e.name)!;
      const c = w.convs.get(`conv${base[0]}_${base[1]}`)!;
      assert.equal(Array.from(part === 'weight' ? c.weight : c.bias), decode(e), e.name);
    }
    // An encoder file also holds distillation heads (conv11_aux, as the wct-16x encoders do): not part of the
    // network, ignored when the load is not exact.
    const enc = [...entries(ENC), entry('model.conv11_aux.weight', [64, 3, 1, 1]), entry('model.conv11_aux.bias', [64])];
    const we = await load(ENC, `enc.${format}.pth`, file(enc, format));
    assert.equal([...we.convs.keys()], ['conv0', 'conv1_1', 'conv1_2', 'conv2_1']);
  });

  test(`${format}: missing tensors, wrong shapes, extra tensors and another network's file are one-line errors naming the file`, async () => {
    const es = entries(DEC);
    const name = `bad.${format}.pth`;
    const re = (s: string) => new RegExp(`^${name.replace(/\./g, '\\.')}: ${s}`);
    await rejects(load(DEC, name, file(es.filter((e) => e.name !== 'model.conv11.bias'), format)),
      re('tensor model\\.conv11\\.bias \\(conv1_1\\) is missing: expected shape \\[3\\]'));
    await rejects(load(DEC, name, file(es.map((e) => (e.name === 'model.conv12.weight' ? entry(e.name, [3, 3, 1, 9]) : e)), format)),
      re('tensor model\\.conv12\\.weight \\(conv1_2\\): expected shape \\[3,3,3,3\\], found \\[3,3,1,9\\]'));
    // A level-3 decoder's extra conv (conv31) in a level-2 decoder's place, or any stray tensor: refused when exact.
    await rejects(load(DEC, name, file([entry('model.conv31.weight', [5, 5, 3, 3]), entry('model.conv31.bias', [5]), ...es], format), true),
      re('tensor model\\.conv31\\.weight \\(and 1 more\\) is not part of tiny/decoder2: expected only the weights and biases of conv21\\.\\.conv11 \\(3 convolutions\\)'));
    await rejects(load(DEC, name, file([...es, entry('model.scale', [1])], format), true), re('tensor model\\.scale is not part of tiny/decoder2'));
    // An encoder's file where a decoder is expected: its first tensor has another shape; a file of other names.
    await rejects(load(DEC, name, file(entries(ENC), format)), re('tensor model\\.conv21\\.weight \\(conv2_1\\): expected shape \\[3,4,3,3\\], found \\[4,3,3,3\\]'));
    await rejects(load(DEC, name, file([entry('model.fc.weight', [2, 2])], format)),
      re('tensor conv21\\.weight \\(conv2_1 of tiny/decoder2\\) is missing: this is not a tiny/decoder2 checkpoint \\(found model\\.fc\\.weight\\)'));
  });
}

test.run();
