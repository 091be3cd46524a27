// Direct 3x3 convolution for layers with few input channels (VGG's conv1_1: 3 -> 64; also the input grad of a layer
// with at most 4 outputs), float32 NCHW, batch 1, stride 1, pad 1 with zeros or (REFLECT) reflection (PyTorch's
// ReflectionPad2d(1): row -1 -> 1, H -> H-2, likewise columns; needs H, W >= 2, checked on the TypeScript side).
// It computes, like conv_direct in shaders/conv.wgsl,
//   y[o,r,c] = bias[o] + Σ_{i,u,v} wp[i,u,v,o] pad(x)[i, r+u-1, c+v-1]
// with the weights in the direct layout wp [A][3][3][B4] (B4 = B rounded up to 4, zero filled; forward: A = Cin,
// B = Cout; input grad: A = Cout, B = Cin with the flipped, transposed kernel, see conv_prepare_direct), but blocks
// the work differently:
//
// conv_few_in (A <= 4 input channels, the pipeline constant A): one thread owns 4 adjacent pixels c0..c0+3 of row r.
// It reads the A*3 input row segments (columns c0-1 .. c0+4) once, then loops over the output channel quads of its
// block (wid.y: cb4 quads per thread; all of them by default), 4 pixels x 4 channels of accumulators, the weight
// vec4 of each tap the same for the whole workgroup. So each input value is loaded once for all output channels
// (conv_direct loads it once per channel quad: on lavapipe, loads whose address differs per lane cost far more
// than the arithmetic).
//
// conv_few_in_scalar stores scalars through an f32 view of y (any W: with W % 4 != 0 a pixel quad straddles vec4s that
// neighbouring threads also write, and component writes of a shared vec4 from two invocations are a data race);
// conv_few_in (ALIGNED only, W % 4 == 0) stores vec4s. RELU (forward only): y = max(acc + bias, 0), the following
// ReLU fused. Threads past the last quad compute a clamped quad and skip the store (no early exit).
override A: u32 = 3u;
override ALIGNED: bool = true;
override REFLECT: bool = false;
override RELU: bool = false;

struct SmallParams { h: u32, w: u32, cout: u32, cout4: u32, quads: u32, qw: u32, cb4: u32, has_bias: u32 }
@group(0) @binding(0) var<uniform> sp: SmallParams;
@group(0) @binding(1) var<storage, read> s_x: array<vec4f>;
@group(0) @binding(2) var<storage, read> s_w: array<vec4f>;
@group(0) @binding(3) var<storage, read> s_b: array<f32>;
@group(0) @binding(4) var<storage, read_write> s_y: array<vec4f>;    // vec4 stores (W % 4 == 0)
@group(0) @binding(4) var<storage, read_write> s_ys: array<f32>;     // scalar stores (same buffer)

fn reflect_index(p: i32, n: i32) -> i32 {
  let a = abs(p);
  return select(a, 2 * n - 2 - a, a >= n);
}

fn x_at(e: u32) -> f32 { return s_x[e >> 2u][e & 3u]; }

// Padded input row rp (may be -1 or H) of channel i, as the row start index and a 0/1 factor (zeros outside).
fn padded_row(i: u32, rp: i32) -> vec2u {
  var r = rp;
  if (REFLECT) { r = reflect_index(rp, i32(sp.h)); }
  let ok = r >= 0 && r < i32(sp.h);
  return vec2u((i * sp.h + u32(clamp(r, 0, i32(sp.h) - 1))) * sp.w, select(0u, 1u, ok));
}

// Columns c0-L .. c0+4*N+L-1 of a row (L = 1, N = 1: six values for a quad; L = 4, N = 2: sixteen for two quads),
// zero (or reflected) outside the image; `keep` = 0 zeroes the whole row.
fn column(row: u32, c: i32) -> f32 {
  var cc = c;
  if (REFLECT) { cc = reflect_index(c, i32(sp.w)); }
  if (cc < 0 || cc >= i32(sp.w)) { return 0.0; }
  return x_at(row + u32(cc));
}

fn segment6(row: u32, keep: u32, c0: u32) -> array<f32, 6> {
  let k = f32(keep);
  if (ALIGNED) {
    let q = (row + c0) >> 2u;
    let m = s_x[q];
    // Reflected edge columns (W >= 4 here): -1 -> 1 = m.y, W -> W-2 = m.z.
    let l = select(select(0.0, m.y, REFLECT), s_x[max(q, 1u) - 1u].w, c0 > 0u);
    let r = select(select(0.0, m.z, REFLECT), s_x[q + 1u].x, c0 + 4u < sp.w);
    return array<f32, 6>(k * l, k * m.x, k * m.y, k * m.z, k * m.w, k * r);
  }
  var s: array<f32, 6>;
  for (var t = 0u; t < 6u; t++) { s[t] = k * column(row, i32(c0 + t) - 1); }
  return s;
}

// The A*3 padded input row segments of the quad at (r, c0): [i*3+u][column c0-1+t].
alias Seg6 = array<f32, 6>;
alias Rows = array<Seg6, 12>;
fn few_in_rows(r: u32, c0: u32) -> Rows {
  var xs: Rows;
  for (var i = 0u; i < A; i++) {
    for (var u = 0u; u < 3u; u++) {
      let row = padded_row(i, i32(r + u) - 1);
      xs[i * 3u + u] = segment6(row.x, row.y, c0);
    }
  }
  return xs;
}

// acc[j][ch] = y[4 ob + ch, r, c0 + j] (bias added, ReLU when RELU).
fn few_in_quad(xs: ptr<function, Rows>, ob: u32) -> array<vec4f, 4> {
  let o = ob * 4u;
  var bias = vec4f(0.0);
  if (sp.has_bias != 0u) {
    let last = sp.cout - 1u;
    bias = vec4f(s_b[min(o, last)], s_b[min(o + 1u, last)], s_b[min(o + 2u, last)], s_b[min(o + 3u, last)]);
  }
  var acc = array<vec4f, 4>(bias, bias, bias, bias);
  for (var iu = 0u; iu < A * 3u; iu++) {
    let s = (*xs)[iu];
    let wb = iu * 3u * sp.cout4 + ob;
    let w0 = s_w[wb];
    let w1 = s_w[wb + sp.cout4];
    let w2 = s_w[wb + 2u * sp.cout4];
    acc[0] += s[0] * w0 + s[1] * w1 + s[2] * w2;
    acc[1] += s[1] * w0 + s[2] * w1 + s[3] * w2;
    acc[2] += s[2] * w0 + s[3] * w1 + s[4] * w2;
    acc[3] += s[3] * w0 + s[4] * w1 + s[5] * w2;
  }
  if (RELU) { for (var j = 0u; j < 4u; j++) { acc[j] = max(acc[j], vec4f(0.0)); } }
  return acc;
}

@compute @workgroup_size(64)
fn conv_few_in(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let q0 = wid.x * 64u + lid;
  let q = min(q0, sp.quads - 1u);
  let r = q / sp.qw;
  let c0 = (q % sp.qw) * 4u;
  var xs = few_in_rows(r, c0);
  let hw = sp.h * sp.w;
  let ob1 = min(wid.y * sp.cb4 + sp.cb4, sp.cout4);
  for (var ob = wid.y * sp.cb4; ob < ob1; ob++) {
    let acc = few_in_quad(&xs, ob);
    if (q0 < sp.quads) {
      for (var ch = 0u; ch < 4u; ch++) {
        let o = ob * 4u + ch;
        if (o >= sp.cout) { break; }
        s_y[(o * hw + r * sp.w + c0) >> 2u] = vec4f(acc[0][ch], acc[1][ch], acc[2][ch], acc[3][ch]);
      }
    }
  }
}

@compute @workgroup_size(64)
fn conv_few_in_scalar(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let q0 = wid.x * 64u + lid;
  let q = min(q0, sp.quads - 1u);
  let r = q / sp.qw;
  let c0 = (q % sp.qw) * 4u;
  var xs = few_in_rows(r, c0);
  let hw = sp.h * sp.w;
  let ob1 = min(wid.y * sp.cb4 + sp.cb4, sp.cout4);
  for (var ob = wid.y * sp.cb4; ob < ob1; ob++) {
    let acc = few_in_quad(&xs, ob);
    if (q0 < sp.quads) {
      for (var ch = 0u; ch < 4u; ch++) {
        let o = ob * 4u + ch;
        if (o >= sp.cout) { break; }
        let e0 = o * hw + r * sp.w + c0;
        for (var j = 0u; j < 4u; j++) { if (c0 + j < sp.w) { s_ys[e0 + j] = acc[j][ch]; } }
      }
    }
  }
}
