// Direct 2-D convolution kernels (odd K <= 5). Layout: float32 NCHW, batch 1: x [Cin,H,W], y [Cout,H,W],
// stride 1, padding pad = (K-1)/2 with zeros or (REFLECT) reflection. Used for K != 3, small channel counts and as
// the Winograd fallback.

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
// y[o,r,c] = bias[o] + Σ_{i,u,v} wp[i,u,v,o] x[i, r+u-pad, c+v-pad], x read through the padding:
//   zeros (REFLECT = false): x = 0 outside the image;
//   reflect (REFLECT = true): x[i, ρ_H(p), ρ_W(q)] with ρ_n(p) = |p| mirrored at n-1 (ρ(-1) = 1, ρ(n) = n-2), PyTorch's
//   ReflectionPad2d(pad) before a valid conv; needs pad < H and pad < W (checked on the TypeScript side).
// One thread: 4 output channels (wid.y) x 4 adjacent pixels c0..c0+3 of row r. K is a pipeline constant, at most 5
// (the tap loops unroll; LLVM on lavapipe did not finish compiling the unrolled K = 7 kernel within minutes). Per
// (i,u) the thread reads the input row segment c0-4 .. c0+7 once (ALIGNED, W % 4 == 0: three aligned vec4s; else
// scalars) and reuses it for all K taps and 4 pixels; the weight vec4 is the same for the whole workgroup (uniform
// load). conv_direct (ALIGNED only) stores each channel's 4 pixels as one vec4; conv_direct_scalar (any W) stores
// scalars through an f32 view of the output, since with W % 4 != 0 a quad straddles vec4s that neighbouring threads
// also write (component writes of a shared vec4 from two invocations are a data race in WGSL).
// RELU (forward only): the epilogue y = max(acc + bias, 0), the ReLU that follows the conv fused into its store.
override K: u32 = 3u;
override ALIGNED: bool = true;
override REFLECT: bool = false;
override RELU: bool = false;

struct DirectParams { cin: u32, cout: u32, h: u32, w: u32, cout4: u32, has_bias: u32, quads: u32 }
@group(0) @binding(0) var<uniform> dp: DirectParams;
@group(0) @binding(1) var<storage, read> d_x: array<vec4f>;
@group(0) @binding(2) var<storage, read> d_w: array<vec4f>;
@group(0) @binding(3) var<storage, read> d_b: array<f32>;
@group(0) @binding(4) var<storage, read_write> d_y: array<vec4f>;    // conv_direct
@group(0) @binding(4) var<storage, read_write> d_ys: array<f32>;     // conv_direct_scalar (same buffer)

// ρ_n(p): reflection of p into [0, n) for -n < p < 2n-1; results outside [0, n) (p further out, only reached for
// pixels past the image edge whose outputs are discarded) are caught by the callers' range checks.
fn reflect_index(p: i32, n: i32) -> i32 {
  let a = abs(p);
  return select(a, 2 * n - 2 - a, a >= n);
}

// Input row `row` (start index of the row in x), columns c0-4 .. c0+7, padded as selected by REFLECT.
fn row_segment(row: u32, c0: u32) -> array<f32, 12> {
  var s: array<f32, 12>;
  if (ALIGNED) {
    let q = (row + c0) >> 2u;
    let m = d_x[q];
    // At the edges (W >= 4 here) the reflected columns -3..-1 are 3, 2, 1 and W..W+2 are W-2, W-3, W-4: all in m.
    let l_pad = select(vec4f(0.0), vec4f(0.0, m.w, m.z, m.y), REFLECT);
    let r_pad = select(vec4f(0.0), vec4f(m.z, m.y, m.x, 0.0), REFLECT);
    let l = select(l_pad, d_x[max(q, 1u) - 1u], c0 > 0u);
    let r = select(r_pad, d_x[q + 1u], c0 + 4u < dp.w);
    s = array<f32, 12>(l.x, l.y, l.z, l.w, m.x, m.y, m.z, m.w, r.x, r.y, r.z, r.w);
  } else {
    let pad = K / 2u;
    for (var t = 4u - pad; t < 8u + pad; t++) {
      var c = i32(c0 + t) - 4;
      if (REFLECT) { c = reflect_index(c, i32(dp.w)); }
      var v = 0.0;
      if (c >= 0 && c < i32(dp.w)) { v = d_x[(row + u32(c)) >> 2u][(row + u32(c)) & 3u]; }
      s[t] = v;
    }
  }
  return s;
}

// acc[j][ch] = y[4 ob + ch, r, c0 + j] (before the bound checks of the store), ReLU applied when RELU.
fn direct_quad(r: u32, c0: u32, ob: u32) -> array<vec4f, 4> {
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
      var rr = r + u - pad;                     // wraps below 0: caught by rr < h
      if (REFLECT) { rr = u32(reflect_index(i32(r + u) - i32(pad), i32(dp.h))); }
      if (rr >= dp.h) { continue; }
      let seg = row_segment((i * dp.h + rr) * dp.w, c0);
      for (var v = 0u; v < K; v++) {
        let wv = d_w[((i * K + u) * K + v) * q4 + ob];
        for (var j = 0u; j < 4u; j++) { acc[j] += seg[4u + j + v - pad] * wv; }
      }
    }
  }
  if (RELU) { for (var j = 0u; j < 4u; j++) { acc[j] = max(acc[j], vec4f(0.0)); } }
  return acc;
}

@compute @workgroup_size(64)
fn conv_direct(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let q = wid.x * 64u + lid;
  if (q >= dp.quads) { return; }
  let qw = dp.w / 4u;
  let r = q / qw;
  let c0 = (q % qw) * 4u;
  let acc = direct_quad(r, c0, wid.y);
  let hw = dp.h * dp.w;
  for (var ch = 0u; ch < 4u; ch++) {
    let o = wid.y * 4u + ch;
    if (o >= dp.cout) { break; }
    d_y[(o * hw + r * dp.w + c0) >> 2u] = vec4f(acc[0][ch], acc[1][ch], acc[2][ch], acc[3][ch]);
  }
}

@compute @workgroup_size(64)
fn conv_direct_scalar(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let q = wid.x * 64u + lid;
  if (q >= dp.quads) { return; }
  let qw = (dp.w + 3u) / 4u;
  let r = q / qw;
  let c0 = (q % qw) * 4u;
  let acc = direct_quad(r, c0, wid.y);
  let hw = dp.h * dp.w;
  for (var ch = 0u; ch < 4u; ch++) {
    let o = wid.y * 4u + ch;
    if (o >= dp.cout) { break; }
    let e0 = o * hw + r * dp.w + c0;
    for (var j = 0u; j < 4u; j++) {
      if (c0 + j < dp.w) { d_ys[e0 + j] = acc[j][ch]; }
    }
  }
}

// ---- input grad with reflection padding: the ring terms ----
// Forward with reflection is y = conv_valid(z, w) with z[i,p,q] = x[i, ρ_H(p), ρ_W(q)], p in [-P, H+P), q in [-P, W+P),
// P = (K-1)/2. By the chain rule
//   dz[i,p,q] = Σ_{o,u,v} dy[o, p-u+P, q-v+P] w[o,i,u,v]          (dy = 0 outside the image)
//   dx[i,r,c] = Σ_{p: ρ_H(p)=r} Σ_{q: ρ_W(q)=c} dz[i,p,q].
// The (p,q) = (r,c) term is the ordinary zero-padded input grad (conv_direct / Winograd with flipped weights), run
// first into dx; this kernel adds the other terms, where p or q lies on the padded ring. ρ_n(p) = r has the solutions
// p = r, p = -r (when 1 <= r <= P) and p = 2n-2-r (when n <= p < n+P), so only rows 1..P and H-1-P..H-2 and columns
// 1..P and W-1-P..W-2 receive ring terms (for K = 3: rows 1, H-2, columns 1, W-2; a pixel next to a corner gets 3
// terms). One invocation per receiving pixel (r,c) and 4 input channels i = 4 iq .. 4 iq + 3 sums all of their ring
// terms and alone updates those 4 elements of dx, so no two invocations write the same element (each dy load serves
// 4 channels through one vec4 weight load). Enumeration per channel quad: band rows x all columns (2P*W), then all
// rows x band columns (H*2P), skipping duplicates (a band index hitting a row/column already listed) and, in the
// second part, rows of the row band.
// Weights: the input-grad direct layout wb[o][K-1-u][K-1-v][i] (Cin4 wide, zero filled) = w[o,i,u,v], the same
// snapshot as the main pass.
struct RingParams { cin: u32, cout: u32, h: u32, w: u32, cin4: u32, per_ch: u32, total: u32 }
@group(0) @binding(0) var<uniform> rp: RingParams;
@group(0) @binding(1) var<storage, read> rg_dy: array<f32>;
@group(0) @binding(2) var<storage, read> rg_w: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> rg_dx: array<f32>;

// Band index j in [0, 2P) -> row (or column) of an image of size n that receives ring terms; -1 for a duplicate
// (bottom-band rows that are also in the top band, possible when n <= 2P+1).
fn band_line(j: u32, n: u32) -> i32 {
  let pad = K / 2u;
  if (j < pad) { return i32(j + 1u); }
  let r = n - 2u - (j - pad);
  return select(i32(r), -1, r >= 1u && r <= pad);
}

fn in_band(r: u32, n: u32) -> bool {
  let pad = K / 2u;
  return (r >= 1u && r <= pad) || (r + 1u + pad >= n && r + 2u <= n);
}

// The padded indices p in [-P, n+P) with ρ_n(p) = r; count in .w.
fn preimages(r: i32, n: i32) -> vec4i {
  let pad = i32(K / 2u);
  var out = vec4i(r, 0, 0, 1);
  if (r >= 1 && r <= pad) { out[out.w] = -r; out.w += 1; }
  let m = 2 * n - 2 - r;
  if (m >= n && m < n + pad) { out[out.w] = m; out.w += 1; }
  return out;
}

@compute @workgroup_size(64)
fn conv_reflect_ring(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let e = linear_id(wid, nwg, lid);
  if (e >= rp.total) { return; }
  let pad = K / 2u;
  let iq = e / rp.per_ch;
  let t = e % rp.per_ch;
  var r: i32;
  var c: i32;
  if (t < 2u * pad * rp.w) {
    r = band_line(t / rp.w, rp.h);
    c = i32(t % rp.w);
  } else {
    let t2 = t - 2u * pad * rp.w;
    r = i32(t2 / (2u * pad));
    c = band_line(t2 % (2u * pad), rp.w);
    if (in_band(u32(r), rp.h)) { return; }
  }
  if (r < 0 || c < 0) { return; }
  let pr = preimages(r, i32(rp.h));
  let pc = preimages(c, i32(rp.w));
  let hw = rp.h * rp.w;
  let q4 = rp.cin4 / 4u;
  var sum = vec4f(0.0);
  for (var a = 0; a < pr.w; a++) {
    for (var b = 0; b < pc.w; b++) {
      if (a == 0 && b == 0) { continue; }    // (r, c) itself: the interior term, already in dx
      let p = pr[a];
      let q = pc[b];
      for (var u = 0u; u < K; u++) {
        let yr = p - i32(u) + i32(pad);
        if (yr < 0 || yr >= i32(rp.h)) { continue; }
        for (var v = 0u; v < K; v++) {
          let yc = q - i32(v) + i32(pad);
          if (yc < 0 || yc >= i32(rp.w)) { continue; }
          let ye = u32(yr) * rp.w + u32(yc);
          let we = ((K - 1u - u) * K + (K - 1u - v)) * q4 + iq;
          for (var o = 0u; o < rp.cout; o++) { sum += rg_dy[o * hw + ye] * rg_w[o * K * K * q4 + we]; }
        }
      }
    }
  }
  for (var j = 0u; j < 4u; j++) {
    let i = iq * 4u + j;
    if (i >= rp.cin) { break; }
    let d = (i * rp.h + u32(r)) * rp.w + u32(c);
    rg_dx[d] = rg_dx[d] + sum[j];
  }
}

// ---- weight grad ----
// dw[o,i,u,v] = Σ_{r,c} dy[o,r,c] x[i, r+u-pad, c+v-pad], x padded as in the forward (REFLECT: reflected indices).
// One thread: one (i,u,v) and 8 output channels (wid.y). The dy loads are uniform across the workgroup. Zeros: the
// row/column ranges are clipped to where x is inside the image, so the inner loop has no bounds checks. Reflect: all
// rows and columns, the column reflected only outside the clipped range.
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
  if (REFLECT) {
    for (var r = 0u; r < wp.h; r++) {
      let xrow = (i * wp.h + u32(reflect_index(i32(r + u) - i32(pad), i32(wp.h)))) * wp.w;
      let dyrow = r * wp.w;
      for (var c = 0u; c < wp.w; c++) {
        var xc = c + v - pad;
        if (c < c_lo || c >= c_hi) { xc = u32(reflect_index(i32(c + v) - i32(pad), i32(wp.w))); }
        let xv = wg_x[xrow + xc];
        for (var q = 0u; q < 8u; q++) { acc[q] += wg_dy[dyo[q] + dyrow + c] * xv; }
      }
    }
  } else {
    for (var r = r_lo; r < r_hi; r++) {
      let xrow = i * hw + (r + u - pad) * wp.w + v - pad;   // + c; u32 wrap-around cancels for c >= c_lo
      let dyrow = r * wp.w;
      for (var c = c_lo; c < c_hi; c++) {
        let xv = wg_x[xrow + c];
        for (var q = 0u; q < 8u; q++) { acc[q] += wg_dy[dyo[q] + dyrow + c] * xv; }
      }
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
