// Contact sheets: one labelled grid per experiment (reference images first, then each run), as a PNG.
import type { RgbImage } from '../image/image.ts';
import { fitLongestSide } from '../image/resize.ts';
import { createCanvas, drawImage, drawText, encodeCanvasPng, fillRect, type Rgb } from './canvas.ts';
import { ADVANCE, GLYPH_H, textWidth } from './font.ts';

export interface SheetCell {
  label: string;
  /** Missing images draw as a grey box (a run that has not finished). */
  image?: RgbImage;
  /** Reference cells (content, style) get a different label colour. */
  reference?: boolean;
}

/** Splits `text` into at most `maxLines` lines of at most `chars` characters, at spaces where possible. */
export function wrapLabel(text: string, chars: number, maxLines = 2): string[] {
  const lines: string[] = [];
  let rest = text.trim();
  while (rest.length > 0 && lines.length < maxLines) {
    if (rest.length <= chars) { lines.push(rest); rest = ''; break; }
    let cut = rest.lastIndexOf(' ', chars);
    if (cut <= 0) cut = chars;
    lines.push(rest.slice(0, cut).trimEnd());
    rest = rest.slice(cut).trimStart();
  }
  if (rest.length > 0) {
    const last = lines[lines.length - 1];
    lines[lines.length - 1] = (last.length >= chars ? last.slice(0, chars - 1).trimEnd() : last) + '~';
  }
  return lines;
}

/**
 * A grid of cells, each image fitted into a cell of `cell` pixels (longest side) with its label underneath,
 * and a title line on top. Returns PNG bytes.
 */
export function contactSheet(title: string, cells: readonly SheetCell[], opts: { cell?: number; columns?: number } = {}): Uint8Array {
  const fitted = cells.map((c) => (c.image ? fitLongestSide(c.image, Math.min(opts.cell ?? 192, Math.max(c.image.width, c.image.height))) : undefined));
  const cw = Math.max(64, ...fitted.map((f) => f?.width ?? 0));
  const ch = Math.max(48, ...fitted.map((f) => f?.height ?? 0));
  const scale = cw >= 160 ? 2 : 1;
  const chars = Math.max(4, Math.floor((cw + scale) / (ADVANCE * scale)));
  const labels = cells.map((c) => wrapLabel(c.label, chars));
  const lineH = (GLYPH_H + 3) * scale;
  const labelH = Math.max(...labels.map((l) => l.length)) * lineH + 4;
  const cols = Math.max(1, Math.min(opts.columns ?? 6, cells.length));
  const rows = Math.ceil(cells.length / cols);
  const gap = 8, titleH = 9 * 2 + 10;
  const W = gap + cols * (cw + gap), H = titleH + rows * (ch + labelH + gap) + gap;
  const c = createCanvas(W, H, [250, 250, 250]);
  const ink: Rgb = [30, 30, 30], refInk: Rgb = [110, 110, 110];
  drawText(c, title, gap, 8, ink, 2);
  cells.forEach((cell, i) => {
    const x = gap + (i % cols) * (cw + gap), y = titleH + Math.floor(i / cols) * (ch + labelH + gap);
    const img = fitted[i];
    if (img) drawImage(c, img, x + Math.floor((cw - img.width) / 2), y + Math.floor((ch - img.height) / 2));
    else {
      fillRect(c, x, y, cw, ch, [205, 205, 205]);
      drawText(c, 'not run', x + (cw - textWidth('not run', scale)) / 2, y + ch / 2 - 4 * scale, refInk, scale);
    }
    labels[i].forEach((line, k) => drawText(c, line, x + (cw - textWidth(line, scale)) / 2, y + ch + 4 + k * lineH, cell.reference ? refInk : ink, scale));
  });
  return encodeCanvasPng(c);
}
