// Float64 reference of 2-D convolution (cross-correlation, as in PyTorch), written for clarity, not speed.
// Layouts: x [Cin,H,W], w [Cout,Cin,K,K], b [Cout], y [Cout,Ho,Wo]; batch 1, stride S (default 1), padding P
// (default (K-1)/2, so Ho = H) with zeros or by reflection (PyTorch's ReflectionPad2d(P): index -1 -> 1, H -> H-2;
// needs P < H, W); Ho = floor((H + 2P - K) / S) + 1.
import { t64, type T64 } from './tensor.ts';

export type ConvPad = 'zeros' | 'reflect';

/** Stride and padding of a convolution (PyTorch's Conv2d(stride, padding)); defaults 1 and (K-1)/2. */
export interface ConvGeometry { stride?: number; padding?: number }

function geometry(k: number, g: ConvGeometry): { s: number; pad: number } {
  return { s: g.stride ?? 1, pad: g.padding ?? (k - 1) / 2 };
}

function dims(x: T64, w: T64) {
  const [cin, h, wd] = x.shape;
  const [cout, cin2, k, k2] = w.shape;
  if (cin !== cin2 || k !== k2) throw new Error(`conv2d reference: x [${x.shape}] w [${w.shape}]`);
  return { cin, h, wd, cout, k };
}

/**
 * Index of padded position p (in [-pad, n+pad)) in the image of size n, or -1 where the padding is zero.
 * Reflection: ρ(p) = |p| mirrored at n-1, i.e. -1 -> 1, n -> n-2.
 */
export function padIndex(p: number, n: number, mode: ConvPad): number {
  if (p >= 0 && p < n) return p;
  if (mode === 'zeros') return -1;
  const a = Math.abs(p);
  const r = a >= n ? 2 * n - 2 - a : a;
  if (r < 0 || r >= n) throw new Error(`conv2d reference: reflection of ${p} outside an image of ${n}`);
  return r;
}

function checkReflect(h: number, wd: number, pad: number, mode: ConvPad): void {
  if (mode === 'reflect' && (h <= pad || wd <= pad)) throw new Error(`conv2d reference: reflect ${pad} of ${h}x${wd}`);
}

/** Ho, Wo = floor((H + 2P - K) / S) + 1 */
export function convOutputSize(h: number, wd: number, k: number, g: ConvGeometry = {}): [number, number] {
  const { s, pad } = geometry(k, g);
  return [Math.floor((h + 2 * pad - k) / s) + 1, Math.floor((wd + 2 * pad - k) / s) + 1];
}

/** y[o,r,c] = b[o] + Σ_{i,u,v} w[o,i,u,v] xp[i, S r+u-P, S c+v-P]  (xp: x padded with zeros or by reflection) */
export function conv2dForward(x: T64, w: T64, b?: T64, mode: ConvPad = 'zeros', g: ConvGeometry = {}): T64 {
  const { cin, h, wd, cout, k } = dims(x, w);
  const { s: st, pad } = geometry(k, g);
  checkReflect(h, wd, pad, mode);
  const [ho, wo] = convOutputSize(h, wd, k, g);
  const y = t64([cout, ho, wo]);
  for (let o = 0; o < cout; o++) {
    for (let r = 0; r < ho; r++) {
      for (let c = 0; c < wo; c++) {
        let s = b ? b.data[o] : 0;
        for (let i = 0; i < cin; i++) {
          for (let u = 0; u < k; u++) {
            const rr = padIndex(st * r + u - pad, h, mode);
            if (rr < 0) continue;
            for (let v = 0; v < k; v++) {
              const cc = padIndex(st * c + v - pad, wd, mode);
              if (cc < 0) continue;
              s += w.data[((o * cin + i) * k + u) * k + v] * x.data[(i * h + rr) * wd + cc];
            }
          }
        }
        y.data[(o * ho + r) * wo + c] = s;
      }
    }
  }
  return y;
}

/**
 * dx = adjoint of x -> y. Over the padded domain p in [-P, H+P), q in [-P, W+P):
 *   dz[i,p,q] = Σ_{o,u,v} dy[o, (p-u+P)/S, (q-v+P)/S] w[o,i,u,v]   (only exact quotients; dy zero outside [Ho, Wo];
 *   the transposed convolution)
 * and each padded position passes its gradient to the pixel it was read from: dx[i,ρ(p),ρ(q)] += dz[i,p,q]
 * (zeros: the ring reads nothing, so dx is dz on the image). `inputSize` [H, W] of x: with S > 1 several input sizes
 * give one output size; default (Ho-1)S + K - 2P (the smallest, which is Ho for stride 1 and P = (K-1)/2).
 */
export function conv2dBackwardInput(dy: T64, w: T64, mode: ConvPad = 'zeros', g: ConvGeometry & { inputSize?: [number, number] } = {}): T64 {
  const [cout, ho, wo] = dy.shape;
  const [, cin, k] = w.shape;
  const { s: st, pad } = geometry(k, g);
  const [h, wd] = g.inputSize ?? [(ho - 1) * st + k - 2 * pad, (wo - 1) * st + k - 2 * pad];
  const want = convOutputSize(h, wd, k, g);
  if (want[0] !== ho || want[1] !== wo) throw new Error(`conv2d reference: dy [${dy.shape}] for input ${h}x${wd}`);
  checkReflect(h, wd, pad, mode);
  const dx = t64([cin, h, wd]);
  for (let i = 0; i < cin; i++) {
    for (let p = -pad; p < h + pad; p++) {
      const r = padIndex(p, h, mode);
      if (r < 0) continue;
      for (let q = -pad; q < wd + pad; q++) {
        const c = padIndex(q, wd, mode);
        if (c < 0) continue;
        let s = 0;
        for (let o = 0; o < cout; o++) {
          for (let u = 0; u < k; u++) {
            const tr = p - u + pad;
            const rr = tr / st;
            if (tr < 0 || tr % st !== 0 || rr >= ho) continue;
            for (let v = 0; v < k; v++) {
              const tc = q - v + pad;
              const cc = tc / st;
              if (tc < 0 || tc % st !== 0 || cc >= wo) continue;
              s += dy.data[(o * ho + rr) * wo + cc] * w.data[((o * cin + i) * k + u) * k + v];
            }
          }
        }
        dx.data[(i * h + r) * wd + c] += s;
      }
    }
  }
  return dx;
}

/** dw[o,i,u,v] = Σ_{r,c} dy[o,r,c] xp[i, r+u-pad, c+v-pad] */
export function conv2dBackwardWeight(x: T64, dy: T64, k: number, mode: ConvPad = 'zeros'): T64 {
  const [cin, h, wd] = x.shape;
  const [cout] = dy.shape;
  const pad = (k - 1) / 2;
  checkReflect(h, wd, pad, mode);
  const dw = t64([cout, cin, k, k]);
  for (let o = 0; o < cout; o++) {
    for (let i = 0; i < cin; i++) {
      for (let u = 0; u < k; u++) {
        for (let v = 0; v < k; v++) {
          let s = 0;
          for (let r = 0; r < h; r++) {
            const rr = padIndex(r + u - pad, h, mode);
            if (rr < 0) continue;
            for (let c = 0; c < wd; c++) {
              const cc = padIndex(c + v - pad, wd, mode);
              if (cc < 0) continue;
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
