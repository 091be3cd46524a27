// The semantic masks of the README picture, made by a threshold (no segmentation network): sky (blue, #0000ff) and
// the rest (red, #ff0000) of examples/tubingen.jpg and examples/rocket.jpg, at the photographs' own sizes.
// A pixel is sky when it is bluish (B − R > 0.04 and B > 0.08) and above a line (the river in Tübingen reflects
// the sky; the ground and the launch pad in rocket.jpg), then a 7x7 majority vote cleans the edges.
// node scripts/run-ts.mjs docs/photoreal/sky-masks.ts
import { readImage, writeImage } from '../../src/image/node-io.ts';

async function skyMask(file: string, out: string, horizon: number): Promise<void> {
  const img = await readImage(file);
  const { width: W, height: H, data } = img;
  const n = W * H;
  const sky = new Uint8Array(n);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    const i = y * W + x;
    const [r, b] = [data[i], data[2 * n + i]];
    sky[i] = y < horizon * H && b - r > 0.04 && b > 0.08 ? 1 : 0;
  }
  const R = 3;
  const mask = { width: W, height: H, data: new Float32Array(3 * n) };
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    let s = 0, c = 0;
    for (let dy = -R; dy <= R; dy++) for (let dx = -R; dx <= R; dx++) {
      const yy = y + dy, xx = x + dx;
      if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
      s += sky[yy * W + xx]; c++;
    }
    const i = y * W + x;
    if (2 * s > c) mask.data[2 * n + i] = 1; else mask.data[i] = 1;
  }
  await writeImage(out, mask);
}

await skyMask('examples/tubingen.jpg', 'docs/photoreal/tubingen-mask.png', 0.55);
await skyMask('examples/rocket.jpg', 'docs/photoreal/rocket-mask.png', 0.82);
