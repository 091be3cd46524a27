// Direct 2-D convolution kernels (any odd K). Layout: float32 NCHW, batch 1: x [Cin,H,W], y [Cout,H,W],
// stride 1, zero padding pad = (K-1)/2. Used for K != 3, small channel counts and as the Winograd fallback.

fn linear_id(wid: vec3u, nwg: vec3u, lid: u32) -> u32 { return (wid.x + wid.y * nwg.x) * 64u + lid; }

// ---- weight preparation (run once per weight change) ----
// Rewrites w [Cout,Cin,K,K] for a direct conv with input channels A and output channels B, as wp [A][K][K][B4]
// (B4 = B rounded up to 4, zero filled) so that 4 output channels are one vec4 load.
//   forward (flip = 0):   A = Cin,  B = Cout, wp[a,u,v,b] = w[b,a,u,v]
//   input grad (flip = 1): A = Cout, B = Cin,  wp[a,u,v,b] = w[a,b,K-1-u,K-1-v]  (dx = conv(dy, flipped w^T))
struct PrepParams { a: u32, b: u32, b4: u32, k: u32, flip: u32 }
@group(0) @binding(0) var<uniform> pp: PrepParams;
@group(0) @binding(1) var<storage, read> prep_w: array<f32>;
@group(0) @binding(2) var<storage, read_write> prep_out: array<f32>;

@compute @workgroup_size(64)
fn conv_prepare_direct(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let e = linear_id(wid, nwg, lid);
  let k = pp.k;
  if (e >= pp.a * k * k * pp.b4) { return; }
  let b = e % pp.b4;
  let v = (e / pp.b4) % k;
  let u = (e / (pp.b4 * k)) % k;
  let a = e / (pp.b4 * k * k);
  var val = 0.0;
  if (b < pp.b) {
    if (pp.flip == 0u) {
      val = prep_w[((b * pp.a + a) * k + u) * k + v];
    } else {
      val = prep_w[((a * pp.b + b) * k + (k - 1u - u)) * k + (k - 1u - v)];
    }
  }
  prep_out[e] = val;
}

// ---- forward (and input grad, with flipped weights) ----
// y[o,r,c] = bias[o] + Σ_{i,u,v} wp[i,u,v,o] x[i, r+u-pad, c+v-pad]
// One thread: 4 output channels (wid.y) x 4 adjacent pixels c0..c0+3 of row r. K is a pipeline constant, at most 5
// (the tap loops unroll; LLVM on lavapipe did not finish compiling the unrolled K = 7 kernel within minutes). Per
// (i,u) the thread reads the input row segment c0-4 .. c0+7 once (ALIGNED, W % 4 == 0: three aligned vec4s; else
// scalars) and reuses it for all K taps and 4 pixels; the weight vec4 is the same for the whole workgroup (uniform
// load). ALIGNED also stores each channel's 4 pixels as one vec4.
override K: u32 = 3u;
override ALIGNED: bool = true;

struct DirectParams { cin: u32, cout: u32, h: u32, w: u32, cout4: u32, has_bias: u32, quads: u32 }
@group(0) @binding(0) var<uniform> dp: DirectParams;
@group(0) @binding(1) var<storage, read> d_x: array<vec4f>;
@group(0) @binding(2) var<storage, read> d_w: array<vec4f>;
@group(0) @binding(3) var<storage, read> d_b: array<f32>;
@group(0) @binding(4) var<storage, read_write> d_y: array<vec4f>;

// Input row `row` (start index of the row in x), columns c0-4 .. c0+7, zero outside [0, W).
fn row_segment(row: u32, c0: u32) -> array<f32, 12> {
  var s: array<f32, 12>;
  if (ALIGNED) {
    let q = (row + c0) >> 2u;
    let l = select(vec4f(0.0), d_x[max(q, 1u) - 1u], c0 > 0u);
    let m = d_x[q];
    let r = select(vec4f(0.0), d_x[q + 1u], c0 + 4u < dp.w);
    s = array<f32, 12>(l.x, l.y, l.z, l.w, m.x, m.y, m.z, m.w, r.x, r.y, r.z, r.w);
  } else {
    let pad = K / 2u;
    for (var t = 4u - pad; t < 8u + pad; t++) {
      let c = c0 + t - 4u;                      // wraps below 0: caught by c < w
      var v = 0.0;
      if (c < dp.w) { v = d_x[(row + c) >> 2u][(row + c) & 3u]; }
      s[t] = v;
    }
  }
  return s;
}

@compute @workgroup_size(64)
fn conv_direct(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let q = wid.x * 64u + lid;
  if (q >= dp.quads) { return; }
  let qw = (dp.w + 3u) / 4u;
  let r = q / qw;
  let c0 = (q % qw) * 4u;
  let ob = wid.y;
  let o = ob * 4u;
  let pad = K / 2u;
  var bias = vec4f(0.0);
  if (dp.has_bias != 0u) {
    let last = dp.cout - 1u;
    bias = vec4f(d_b[min(o, last)], d_b[min(o + 1u, last)], d_b[min(o + 2u, last)], d_b[min(o + 3u, last)]);
  }
  var acc = array<vec4f, 4>(bias, bias, bias, bias);   // acc[pixel], vec4 over 4 channels
  let q4 = dp.cout4 / 4u;
  for (var i = 0u; i < dp.cin; i++) {
    for (var u = 0u; u < K; u++) {
      let rr = r + u - pad;                     // wraps below 0: caught by rr < h
      if (rr >= dp.h) { continue; }
      let seg = row_segment((i * dp.h + rr) * dp.w, c0);
      for (var v = 0u; v < K; v++) {
        let wv = d_w[((i * K + u) * K + v) * q4 + ob];
        for (var j = 0u; j < 4u; j++) { acc[j] += seg[4u + j + v - pad] * wv; }
      }
    }
  }
  let hw = dp.h * dp.w;
  for (var ch = 0u; ch < 4u; ch++) {
    if (o + ch >= dp.cout) { break; }
    let e0 = (o + ch) * hw + r * dp.w + c0;
    let v = vec4f(acc[0][ch], acc[1][ch], acc[2][ch], acc[3][ch]);
    if (ALIGNED) {
      d_y[e0 >> 2u] = v;
    } else {
      for (var j = 0u; j < 4u; j++) {
        if (c0 + j < dp.w) { d_y[(e0 + j) >> 2u][(e0 + j) & 3u] = v[j]; }
      }
    }
  }
}

// ---- weight grad ----
// dw[o,i,u,v] = Σ_{r,c} dy[o,r,c] x[i, r+u-pad, c+v-pad]
// One thread: one (i,u,v) and 8 output channels (wid.y). The dy loads are uniform across the workgroup; the
// row/column ranges are clipped to where x is inside the image, so the inner loop has no bounds checks.
struct WgradParams { cin: u32, cout: u32, h: u32, w: u32, k: u32 }
@group(0) @binding(0) var<uniform> wp: WgradParams;
@group(0) @binding(1) var<storage, read> wg_x: array<f32>;
@group(0) @binding(2) var<storage, read> wg_dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> wg_dw: array<f32>;

@compute @workgroup_size(64)
fn conv_wgrad(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let k = wp.k;
  let j = wid.x * 64u + lid;
  if (j >= wp.cin * k * k) { return; }
  let i = j / (k * k);
  let u = (j / k) % k;
  let v = j % k;
  let pad = k / 2u;
  let hw = wp.h * wp.w;
  let o0 = wid.y * 8u;
  var dyo: array<u32, 8>;
  for (var q = 0u; q < 8u; q++) { dyo[q] = min(o0 + q, wp.cout - 1u) * hw; }
  // r + u - pad in [0, h)  <=>  r in [pad - u, h + pad - u) (clipped to [0, h))
  let r_lo = u32(max(i32(pad) - i32(u), 0));
  let r_hi = u32(min(i32(wp.h) + i32(pad) - i32(u), i32(wp.h)));
  let c_lo = u32(max(i32(pad) - i32(v), 0));
  let c_hi = u32(min(i32(wp.w) + i32(pad) - i32(v), i32(wp.w)));
  var acc: array<f32, 8>;
  for (var r = r_lo; r < r_hi; r++) {
    let xrow = i * hw + (r + u - pad) * wp.w + v - pad;   // + c; u32 wrap-around cancels for c >= c_lo
    let dyrow = r * wp.w;
    for (var c = c_lo; c < c_hi; c++) {
      let xv = wg_x[xrow + c];
      for (var q = 0u; q < 8u; q++) { acc[q] += wg_dy[dyo[q] + dyrow + c] * xv; }
    }
  }
  for (var q = 0u; q < 8u; q++) {
    if (o0 + q < wp.cout) { wg_dw[(((o0 + q) * wp.cin + i) * k + u) * k + v] = acc[q]; }
  }
}

// ---- bias grad ----
// db[o] = Σ_p dy[o,p]; one thread per output channel.
struct BgradParams { cout: u32, hw: u32 }
@group(0) @binding(0) var<uniform> bg: BgradParams;
@group(0) @binding(1) var<storage, read> bg_dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> bg_db: array<f32>;

@compute @workgroup_size(64)
fn conv_bgrad(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let o = wid.x * 64u + lid;
  if (o >= bg.cout) { return; }
  var s0 = 0.0; var s1 = 0.0; var s2 = 0.0; var s3 = 0.0;
  let base = o * bg.hw;
  let n4 = bg.hw / 4u;
  for (var p = 0u; p < n4; p++) {
    let b = base + p * 4u;
    s0 += bg_dy[b]; s1 += bg_dy[b + 1u]; s2 += bg_dy[b + 2u]; s3 += bg_dy[b + 3u];
  }
  for (var p = n4 * 4u; p < bg.hw; p++) { s0 += bg_dy[base + p]; }
  bg_db[o] = (s0 + s1) + (s2 + s3);
}
