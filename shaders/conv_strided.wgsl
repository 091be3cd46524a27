// Strided and explicitly padded direct convolution (ResNet's 7x7/2 stem, 3x3/2 and 1x1/2 downsampling), zero
// padding only. Layout: float32 NCHW, batch 1: x [Cin,H,W], w [Cout,Cin,K,K], y [Cout,Ho,Wo] with
//   Ho = floor((H + 2P - K) / S) + 1,  Wo = floor((W + 2P - K) / S) + 1
// (stride S >= 1, padding P >= 0; PyTorch's Conv2d(stride=S, padding=P)). K is a uniform, not a pipeline constant:
// the tap loops stay loops (an unrolled K = 7 did not compile on lavapipe within minutes, see conv.wgsl).
// Weights come in the layouts conv.wgsl's conv_prepare_direct writes once per weight change:
//   forward:    wp[i][u][v][o4] = w[o,i,u,v]          (A = Cin, B = Cout, B4 = Cout rounded up to 4, zero filled)
//   input grad: wb[o][K-1-u][K-1-v][i4] = w[o,i,u,v]  (A = Cout, B = Cin, flipped)
// The last entry adds a bias in place, after the 1x1 convolutions that run as plain matmuls (src/ops/matmul.ts).
// RELU (pipeline constant) fuses a following ReLU into the forward's store / the bias add: y = max(conv + b, 0).
override RELU: bool = false;

fn linear_id(wid: vec3u, nwg: vec3u, lid: u32) -> u32 { return (wid.x + wid.y * nwg.x) * 64u + lid; }

// ---- forward ----
// y[o,r,c] = bias[o] + Σ_{i,u,v} w[o,i,u,v] x[i, S r + u - P, S c + v - P]   (x = 0 outside the image)
// One invocation: 4 output channels o = 4 wid.y .. 4 wid.y + 3 (one vec4 weight load serves all four) x 4 adjacent
// output pixels c0..c0+3 of output row r (quads = Ho * ceil(Wo / 4)). Scalar stores through an f32 view of y, each
// element written by exactly one invocation (channels >= Cout and columns >= Wo are computed and dropped).
struct StridedParams { cin: u32, cout: u32, h: u32, w: u32, ho: u32, wo: u32, k: u32, stride: u32, pad: u32, cout4: u32, has_bias: u32, quads: u32 }
@group(0) @binding(0) var<uniform> sp: StridedParams;
@group(0) @binding(1) var<storage, read> s_x: array<f32>;
@group(0) @binding(2) var<storage, read> s_w: array<vec4f>;
@group(0) @binding(3) var<storage, read> s_b: array<f32>;
@group(0) @binding(4) var<storage, read_write> s_y: array<f32>;

@compute @workgroup_size(64)
fn conv_strided(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let q = wid.x * 64u + lid;
  if (q >= sp.quads) { return; }
  let qw = (sp.wo + 3u) / 4u;
  let r = q / qw;
  let c0 = (q % qw) * 4u;
  let ob = wid.y;
  let o = ob * 4u;
  let k = sp.k;
  let s = sp.stride;
  let pad = i32(sp.pad);
  var bias = vec4f(0.0);
  if (sp.has_bias != 0u) {
    let last = sp.cout - 1u;
    bias = vec4f(s_b[min(o, last)], s_b[min(o + 1u, last)], s_b[min(o + 2u, last)], s_b[min(o + 3u, last)]);
  }
  var acc = array<vec4f, 4>(bias, bias, bias, bias);   // acc[pixel j], vec4 over 4 output channels
  let q4 = sp.cout4 / 4u;
  // Input column of output pixel c0 + j at tap v: S (c0 + j) + v - P.
  let col0 = i32(s * c0) - pad;
  for (var i = 0u; i < sp.cin; i++) {
    for (var u = 0u; u < k; u++) {
      let rr = i32(s * r + u) - pad;
      if (rr < 0 || rr >= i32(sp.h)) { continue; }
      let row = (i * sp.h + u32(rr)) * sp.w;
      for (var v = 0u; v < k; v++) {
        let wv = s_w[((i * k + u) * k + v) * q4 + ob];
        for (var j = 0u; j < 4u; j++) {
          let cc = col0 + i32(s * j + v);
          if (cc >= 0 && cc < i32(sp.w)) { acc[j] += s_x[row + u32(cc)] * wv; }
        }
      }
    }
  }
  let plane = sp.ho * sp.wo;
  for (var ch = 0u; ch < 4u; ch++) {
    if (o + ch >= sp.cout) { break; }
    let e0 = (o + ch) * plane + r * sp.wo + c0;
    for (var j = 0u; j < 4u; j++) {
      if (c0 + j < sp.wo) { s_y[e0 + j] = select(acc[j][ch], max(acc[j][ch], 0.0), RELU); }
    }
  }
}

// ---- input grad (gather: one owner per dx element, no atomics) ----
// The forward reads x[i, S r + u - P, S c + v - P], so by the chain rule
//   dx[i,a,b] = Σ_{o,u,v} w[o,i,u,v] dy[o, (a + P - u) / S, (b + P - v) / S]
// over the taps with a + P - u and b + P - v non-negative multiples of S whose quotients lie inside dy [Ho, Wo]:
// u ≡ a + P and v ≡ b + P (mod S), so the loops visit only those taps (u = u0, u0 + S, ...), no dead iterations.
// Every dx element of the image is written (0 where no output reads it, e.g. odd rows of a 1x1 stride-2 layer or
// the last rows dropped by the floor in Ho).
// One invocation: 4 input channels i = 4 wid.y .. +3 (one vec4 of wb) x 4 pixels of input row a with the same
// residue ρ = b mod S, b = b0 + S j (b0 = ρ + 4 S g, j < 4): they share their valid taps, and their dy columns
// (b + P - v) / S = (ρ + P - v) / S + 4 g + j are adjacent. Invocations are numbered class-major over the S x S
// classes (a mod S, ρ), which fix the tap set, so neighbouring invocations (SIMD lanes) do the same work: class, then
// row a = (a mod S) + S ar (ar < hr = ceil(H / S)), then group g < gw = ceil(ceil(W / S) / 4). Those with a >= H or
// b0 >= W own nothing and return; classes without taps (e.g. odd rows of a 1x1 stride-2 layer) just write zeros.
struct StridedBwdParams { cin: u32, cout: u32, h: u32, w: u32, ho: u32, wo: u32, k: u32, stride: u32, pad: u32, cin4: u32, gw: u32, hr: u32, quads: u32 }
@group(0) @binding(0) var<uniform> sb: StridedBwdParams;
@group(0) @binding(1) var<storage, read> sb_dy: array<f32>;
@group(0) @binding(2) var<storage, read> sb_w: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> sb_dx: array<f32>;

@compute @workgroup_size(64)
fn conv_strided_input(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let q = wid.x * 64u + lid;
  if (q >= sb.quads) { return; }
  let s = sb.stride;
  let per_class = sb.hr * sb.gw;
  let cls = q / per_class;
  let a = cls / s + s * ((q % per_class) / sb.gw);
  let rho = cls % s;
  let g = q % sb.gw;
  let b0 = rho + 4u * s * g;
  if (a >= sb.h || b0 >= sb.w) { return; }
  let ib = wid.y;
  let k = sb.k;
  let si = i32(s);
  let pad = i32(sb.pad);
  let q4 = sb.cin4 / 4u;
  let plane = sb.ho * sb.wo;
  let u0 = (a + sb.pad) % s;
  let v0 = (rho + sb.pad) % s;
  var acc = array<vec4f, 4>(vec4f(0.0), vec4f(0.0), vec4f(0.0), vec4f(0.0));
  let taps = u0 < k && v0 < k;
  for (var o = 0u; taps && o < sb.cout; o++) {
    for (var u = u0; u < k; u += s) {
      let tr = (i32(a) + pad - i32(u)) / si;      // exact: a + P - u is a multiple of S
      if (tr < 0 || tr >= i32(sb.ho)) { continue; }
      let yrow = o * plane + u32(tr) * sb.wo;
      for (var v = v0; v < k; v += s) {
        let wv = sb_w[((o * k + (k - 1u - u)) * k + (k - 1u - v)) * q4 + ib];
        let base = (i32(rho) + pad - i32(v)) / si + i32(4u * g);   // exact, as above
        for (var j = 0; j < 4; j++) {
          let tc = base + j;
          if (tc >= 0 && tc < i32(sb.wo)) { acc[j] += sb_dy[yrow + u32(tc)] * wv; }
        }
      }
    }
  }
  let hw = sb.h * sb.w;
  for (var ch = 0u; ch < 4u; ch++) {
    let i = ib * 4u + ch;
    if (i >= sb.cin) { break; }
    let e0 = i * hw + a * sb.w;
    for (var j = 0u; j < 4u; j++) {
      let b = b0 + s * j;
      if (b < sb.w) { sb_dx[e0 + b] = acc[j][ch]; }
    }
  }
}

// ---- bias, in place: y[o,p] += bias[o] over vec4s of positions (HW % 4 == 0; n = Cout HW / 4) ----
// After the 1x1 stride-1 convolutions that run as matmuls y [Cout, HW] = W [Cout, Cin] x [Cin, HW].
struct BiasParams { n: u32, hw4: u32 }
@group(0) @binding(0) var<uniform> ba: BiasParams;
@group(0) @binding(1) var<storage, read> ba_b: array<f32>;
@group(0) @binding(2) var<storage, read_write> ba_y: array<vec4f>;

@compute @workgroup_size(64)
fn conv_bias_add(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let e = linear_id(wid, nwg, lid);
  if (e >= ba.n) { return; }
  let v = ba_y[e] + vec4f(ba_b[e / ba.hw4]);
  ba_y[e] = select(v, max(v, vec4f(0.0)), RELU);
}
