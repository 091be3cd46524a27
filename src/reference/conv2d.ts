// Float64 reference of 2-D convolution (cross-correlation, as in PyTorch), written for clarity, not speed.
// Layouts: x [Cin,H,W], w [Cout,Cin,K,K], b [Cout], y [Cout,H,W]; batch 1, stride 1, zero padding pad = (K-1)/2.
import { t64, type T64 } from './tensor.ts';

function dims(x: T64, w: T64) {
  const [cin, h, wd] = x.shape;
  const [cout, cin2, k, k2] = w.shape;
  if (cin !== cin2 || k !== k2 || k % 2 !== 1) throw new Error(`conv2d reference: x [${x.shape}] w [${w.shape}]`);
  return { cin, h, wd, cout, k, pad: (k - 1) / 2 };
}

/** y[o,r,c] = b[o] + Σ_{i,u,v} w[o,i,u,v] x[i, r+u-pad, c+v-pad]  (x is zero outside the image) */
export function conv2dForward(x: T64, w: T64, b?: T64): T64 {
  const { cin, h, wd, cout, k, pad } = dims(x, w);
  const y = t64([cout, h, wd]);
  for (let o = 0; o < cout; o++) {
    for (let r = 0; r < h; r++) {
      for (let c = 0; c < wd; c++) {
        let s = b ? b.data[o] : 0;
        for (let i = 0; i < cin; i++) {
          for (let u = 0; u < k; u++) {
            const rr = r + u - pad;
            if (rr < 0 || rr >= h) continue;
            for (let v = 0; v < k; v++) {
              const cc = c + v - pad;
              if (cc < 0 || cc >= wd) continue;
              s += w.data[((o * cin + i) * k + u) * k + v] * x.data[(i * h + rr) * wd + cc];
            }
          }
        }
        y.data[(o * h + r) * wd + c] = s;
      }
    }
  }
  return y;
}

/** dx[i,r,c] = Σ_{o,u,v} dy[o, r-u+pad, c-v+pad] w[o,i,u,v]  (the transposed convolution) */
export function conv2dBackwardInput(dy: T64, w: T64): T64 {
  const [cout, h, wd] = dy.shape;
  const [, cin, k] = w.shape;
  const pad = (k - 1) / 2;
  const dx = t64([cin, h, wd]);
  for (let i = 0; i < cin; i++) {
    for (let r = 0; r < h; r++) {
      for (let c = 0; c < wd; c++) {
        let s = 0;
        for (let o = 0; o < cout; o++) {
          for (let u = 0; u < k; u++) {
            const rr = r - u + pad;
            if (rr < 0 || rr >= h) continue;
            for (let v = 0; v < k; v++) {
              const cc = c - v + pad;
              if (cc < 0 || cc >= wd) continue;
              s += dy.data[(o * h + rr) * wd + cc] * w.data[((o * cin + i) * k + u) * k + v];
            }
          }
        }
        dx.data[(i * h + r) * wd + c] = s;
      }
    }
  }
  return dx;
}

/** dw[o,i,u,v] = Σ_{r,c} dy[o,r,c] x[i, r+u-pad, c+v-pad] */
export function conv2dBackwardWeight(x: T64, dy: T64, k: number): T64 {
  const [cin, h, wd] = x.shape;
  const [cout] = dy.shape;
  const pad = (k - 1) / 2;
  const dw = t64([cout, cin, k, k]);
  for (let o = 0; o < cout; o++) {
    for (let i = 0; i < cin; i++) {
      for (let u = 0; u < k; u++) {
        for (let v = 0; v < k; v++) {
          let s = 0;
          for (let r = 0; r < h; r++) {
            const rr = r + u - pad;
            if (rr < 0 || rr >= h) continue;
            for (let c = 0; c < wd; c++) {
              const cc = c + v - pad;
              if (cc < 0 || cc >= wd) continue;
              s += dy.data[(o * h + r) * wd + c] * x.data[(i * h + rr) * wd + cc];
            }
          }
          dw.data[((o * cin + i) * k + u) * k + v] = s;
        }
      }
    }
  }
  return dw;
}

/** db[o] = Σ_{r,c} dy[o,r,c] */
export function conv2dBackwardBias(dy: T64): T64 {
  const [cout, h, wd] = dy.shape;
  const db = t64([cout]);
  for (let o = 0; o < cout; o++) {
    let s = 0;
    for (let p = 0; p < h * wd; p++) s += dy.data[o * h * wd + p];
    db.data[o] = s;
  }
  return db;
}
