// One view of a checkpoint's tensors whatever its format (safetensors, PyTorch .pth zip or legacy), told apart by
// its first bytes: names and shapes first (so every shape is checked before any data is read), data on demand.
import { PainterlyError } from '../gpu/device.ts';
import type { TensorTable } from './net-weights.ts';
import { detectWeightsFormat, readPthIndex, readPthTensor, SNIFF_BYTES } from './pth.ts';
import { decodeTensor, readHeader, type ByteSource } from './safetensors.ts';

export async function openTensorTable(src: ByteSource): Promise<TensorTable> {
  const first = await src.read(0, Math.min(src.size, SNIFF_BYTES));
  const format = detectWeightsFormat(first);
  if (format === 'safetensors') {
    const h = await readHeader(src);
    const shapes = new Map([...h.tensors].map(([n, e]) => [n, e.shape]));
    return {
      file: src.name, shapes,
      read: async (name) => {
        const e = h.tensors.get(name)!;
        if (e.dtype !== 'F32' && e.dtype !== 'F16' && e.dtype !== 'BF16') {
          throw new PainterlyError(`${src.name}: tensor ${name}: dtype ${e.dtype} is not supported, expected F32, F16 or BF16`);
        }
        return decodeTensor(e, await src.read(e.begin, e.end), src.name);
      },
    };
  }
  if (format === 'pth-zip' || format === 'pth-legacy') {
    const index = await readPthIndex(src);
    const shapes = new Map([...index.tensors].map(([n, t]) => [n, t.shape]));
    return { file: src.name, shapes, read: (name) => readPthTensor(src, index, name) };
  }
  throw new PainterlyError(`${src.name}: not a weights file: expected safetensors or a PyTorch .pth checkpoint (zip or legacy torch.save)`);
}
