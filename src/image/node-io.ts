// Reading and writing image files in Node. Kept apart from the codecs so browser bundles never see node:fs.
import { readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { PainterlyError } from '../gpu/device.ts';
import { decodeImage, encodeImage, formatFromName, MAX_IMAGE_PIXELS } from './codec.ts';
import type { RgbImage } from './image.ts';

// The largest file worth reading: a 64 Mpixel 16-bit RGBA PNG stored uncompressed, plus slack.
const MAX_FILE_BYTES = 8 * MAX_IMAGE_PIXELS + (64 << 20);

function ioError(path: string, e: unknown, verb: string): PainterlyError {
  const code = (e as NodeJS.ErrnoException)?.code;
  const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' :
    code === 'EACCES' || code === 'EPERM' ? 'permission denied' : String((e as Error)?.message ?? e).replace(/\s+/g, ' ');
  return new PainterlyError(`cannot ${verb} image "${path}": ${why}`);
}

/** Reads a PNG or JPEG file into planar RGB in [0, 1] (alpha over white). Errors are one-line PainterlyErrors. */
export async function readImage(path: string): Promise<RgbImage> {
  let bytes: Uint8Array;
  try {
    const st = await stat(path);
    if (st.isDirectory()) throw Object.assign(new Error('directory'), { code: 'EISDIR' });
    if (st.size > MAX_FILE_BYTES) throw new Error(`file is ${st.size} bytes, more than any accepted image`);
    bytes = await readFile(path);
  } catch (e) {
    throw ioError(path, e, 'read');
  }
  return decodeImage(bytes, path);
}

/**
 * Writes PNG or JPEG (by the extension: .png, .jpg, .jpeg) with values clamped to [0, 1]. Writes a temporary file
 * in the same directory and renames it over `path`, so readers never see a half-written image.
 */
export async function writeImage(path: string, img: RgbImage, opts: { quality?: number } = {}): Promise<void> {
  const format = formatFromName(path);
  if (!format) {
    throw new PainterlyError(`cannot write image "${path}": unknown extension; use .png, .jpg or .jpeg`);
  }
  const bytes = encodeImage(img, format, opts.quality);
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`);
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw ioError(path, e, 'write');
  }
}
