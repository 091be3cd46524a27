// Winograd F(4x4, 3x3) convolution (Lavin & Gray 2015), float32 NCHW, batch 1, K = 3, pad 1 (zeros, or REFLECT:
// PyTorch's ReflectionPad2d(1), row -1 -> 1, H -> H-2, likewise columns), stride 1.
// The image is cut into tiles of 4x4 outputs; tile t = (ty, tx) reads the 6x6 input patch at (4ty-1, 4tx-1).
//   U[ξ][i][o] = (G g_oi G^T)[ξ]          weights, once per weight change           (conv_wino_weights)
//   V[ξ][t][i] = (B^T d_ti B)[ξ]          input transform                            (conv_wino_input)
//   M[ξ][t][o] = Σ_i V[ξ][t][i] U[ξ][i][o] 36 GEMMs [T,Cin] x [Cin,Cout]              (shaders/matmul.wgsl)
//   y[o, tile] = (A^T M[·][t][o] A) + b[o] output transform                           (conv_wino_output)
// The weight gradient is this pipeline's adjoint (exact in exact arithmetic, four times fewer products than direct):
//   dM[ξ][t][o] = (A dy_t[o] A^T)[ξ]      6x6 from each 4x4 tile of dy; outputs past the image carry no gradient
//                                                                                   (conv_wino_dy)
//   dU[ξ][i][o] = Σ_t V[ξ][t][i] dM[ξ][t][o]  36 GEMMs [Cin,T] x [T,Cout], summed over chunks (matmul_tn)
//   dw[o,i] = G^T dU[·][i][o] G           3x3 from 6x6                               (conv_wino_wgrad)
// with ξ = 6 * row + col. Channels are handled 4 at a time as vec4 (Cin, Cout multiples of 4).
// Scratch V and M hold a chunk of tile rows [ty0, ty0 + rows) so that each binding stays under the device limit.

fn linear_id(wid: vec3u, nwg: vec3u, lid: u32) -> u32 { return (wid.x + wid.y * nwg.x) * 64u + lid; }

// ---- weight transform ----
// G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
// For a conv with input channels A and output channels B: forward (flip 0) g_ab = w[b,a]; input grad (flip 1)
// g_ab = w[a,b] rotated by 180 degrees. Output U [36][A][B].
struct WinoWParams { a: u32, b: u32, flip: u32 }
@group(0) @binding(0) var<uniform> ww: WinoWParams;
@group(0) @binding(1) var<storage, read> ww_w: array<f32>;
@group(0) @binding(2) var<storage, read_write> ww_u: array<f32>;

fn g_col(g0: f32, g1: f32, g2: f32) -> array<f32, 6> {
  return array<f32, 6>(g0 * 0.25, -(g0 + g1 + g2) / 6.0, -(g0 - g1 + g2) / 6.0,
    g0 / 24.0 + g1 / 12.0 + g2 / 6.0, g0 / 24.0 - g1 / 12.0 + g2 / 6.0, g2);
}

@compute @workgroup_size(64)
fn conv_wino_weights(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let e = linear_id(wid, nwg, lid);
  if (e >= ww.a * ww.b) { return; }
  let a = e / ww.b;
  let b = e % ww.b;
  var g: array<f32, 9>;
  for (var j = 0u; j < 9u; j++) {
    if (ww.flip == 0u) { g[j] = ww_w[(b * ww.a + a) * 9u + j]; } else { g[j] = ww_w[(a * ww.b + b) * 9u + 8u - j]; }
  }
  // rows: Gg (6x3), column by column
  let c0 = g_col(g[0], g[3], g[6]);
  let c1 = g_col(g[1], g[4], g[7]);
  let c2 = g_col(g[2], g[5], g[8]);
  let plane = ww.a * ww.b;
  for (var r = 0u; r < 6u; r++) {
    let row = g_col(c0[r], c1[r], c2[r]);   // (G g G^T)[r][·]
    for (var c = 0u; c < 6u; c++) { ww_u[(r * 6u + c) * plane + e] = row[c]; }
  }
}

// ---- input transform ----
// B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
// ALIGNED (W % 4 == 0): each patch row of a channel is read as three aligned vec4s (columns 4tx-4 .. 4tx+7), since
// lavapipe moves vec4s about three times faster than scalars; otherwise six scalar loads. REFLECT remaps the padded
// row/column indices (the reflection is fused into the reads; no padded copy of x).
// MASK: the input is dy of a convolution whose output went through a ReLU, read as dy * [y > 0] with y (wi_mask) the
// ReLU's output: the ReLU's backward fused into the input gradient's transform (one dispatch and two passes over the
// tensor fewer). Without MASK, wi_mask is bound to anything and never read.
override ALIGNED: bool = true;
override REFLECT: bool = false;
override MASK: bool = false;

struct WinoInParams { cin: u32, h: u32, w: u32, tw: u32, ty0: u32, tiles: u32 }
@group(0) @binding(0) var<uniform> wi: WinoInParams;
@group(0) @binding(1) var<storage, read> wi_x: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> wi_v: array<vec4f>;
@group(0) @binding(3) var<storage, read> wi_mask: array<vec4f>;

fn bt(d0: vec4f, d1: vec4f, d2: vec4f, d3: vec4f, d4: vec4f, d5: vec4f) -> array<vec4f, 6> {
  return array<vec4f, 6>(
    4.0 * d0 - 5.0 * d2 + d4,
    -4.0 * (d1 + d2) + d3 + d4,
    4.0 * (d1 - d2) - d3 + d4,
    2.0 * (d3 - d1) - d2 + d4,
    2.0 * (d1 - d3) - d2 + d4,
    4.0 * d1 - 5.0 * d3 + d5);
}

// x (MASK: dy * [y > 0]) at the vec4 q, and at the element e.
fn x4(q: u32) -> vec4f {
  if (MASK) { return select(vec4f(0.0), wi_x[q], wi_mask[q] > vec4f(0.0)); }
  return wi_x[q];
}
fn x_at(e: u32) -> f32 { return x4(e >> 2u)[e & 3u]; }

// ρ_n(p): reflection of p into [0, n) for -n < p < 2n-1 (ρ(-1) = 1, ρ(n) = n-2); results outside [0, n) (only for
// patch rows/columns past the image that feed discarded outputs) are caught by the callers' range checks (zeros).
fn reflect_index(p: i32, n: i32) -> i32 {
  let a = abs(p);
  return select(a, 2 * n - 2 - a, a >= n);
}

// Patch row r of channel i: columns c0-1 .. c0+4, zero (or reflected) outside the image.
fn patch_row(i: u32, r_pad: i32, c0: i32) -> array<f32, 6> {
  var d = array<f32, 6>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
  let r = select(r_pad, reflect_index(r_pad, i32(wi.h)), REFLECT);
  if (r < 0 || r >= i32(wi.h)) { return d; }
  let row = (i * wi.h + u32(r)) * wi.w;
  if (ALIGNED) {
    let q = (row + u32(c0)) >> 2u;                    // vec4 holding columns c0 .. c0+3
    let mid = x4(q);
    // Reflected edge columns (W >= 4 here): -1 -> 1 = mid.y, W -> W-2 = mid.z.
    let left = select(select(0.0, mid.y, REFLECT), x4(max(q, 1u) - 1u).w, c0 > 0);
    let right = select(select(0.0, mid.z, REFLECT), x4(q + 1u).x, u32(c0) + 4u < wi.w);
    return array<f32, 6>(left, mid.x, mid.y, mid.z, mid.w, right);
  }
  for (var j = 0; j < 6; j++) {
    let c = select(c0 - 1 + j, reflect_index(c0 - 1 + j, i32(wi.w)), REFLECT);
    if (c >= 0 && c < i32(wi.w)) { d[j] = x_at(row + u32(c)); }
  }
  return d;
}

@compute @workgroup_size(64)
fn conv_wino_input(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let cin4 = wi.cin / 4u;
  let e = linear_id(wid, nwg, lid);
  if (e >= wi.tiles * cin4) { return; }
  let t = e / cin4;                 // tile within the chunk
  let iq = e % cin4;
  let tg = t + wi.ty0 * wi.tw;       // tile in the image
  let r0 = i32(tg / wi.tw) * 4 - 1;
  let c0 = i32(tg % wi.tw) * 4;      // first output column; the patch starts at c0 - 1
  var rows: array<array<vec4f, 6>, 6>;
  for (var a = 0; a < 6; a++) {
    let p0 = patch_row(iq * 4u, r0 + a, c0);
    let p1 = patch_row(iq * 4u + 1u, r0 + a, c0);
    let p2 = patch_row(iq * 4u + 2u, r0 + a, c0);
    let p3 = patch_row(iq * 4u + 3u, r0 + a, c0);
    rows[a] = bt(vec4f(p0[0], p1[0], p2[0], p3[0]), vec4f(p0[1], p1[1], p2[1], p3[1]), vec4f(p0[2], p1[2], p2[2], p3[2]),
                 vec4f(p0[3], p1[3], p2[3], p3[3]), vec4f(p0[4], p1[4], p2[4], p3[4]), vec4f(p0[5], p1[5], p2[5], p3[5]));
  }
  let plane = wi.tiles * cin4;       // vec4s per ξ
  for (var c = 0u; c < 6u; c++) {
    let col = bt(rows[0][c], rows[1][c], rows[2][c], rows[3][c], rows[4][c], rows[5][c]);
    for (var r = 0u; r < 6u; r++) { wi_v[(r * 6u + c) * plane + e] = col[r]; }
  }
}

// ---- output transform ----
// A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
// conv_wino_output (W % 4 == 0): each output row of a tile and channel is one aligned vec4 store.
// conv_wino_output_scalar (any W): scalar stores through an f32 view of y, since with W % 4 != 0 a tile row straddles
// vec4s that neighbouring tiles also write (component writes of a shared vec4 from two invocations are a data race).
// RELU: the epilogue y = max(A^T M A + b, 0), the ReLU that follows the conv fused into the output transform.
override RELU: bool = false;

struct WinoOutParams { cout: u32, h: u32, w: u32, tw: u32, ty0: u32, tiles: u32, has_bias: u32 }
@group(0) @binding(0) var<uniform> wo: WinoOutParams;
@group(0) @binding(1) var<storage, read> wo_m: array<vec4f>;
@group(0) @binding(2) var<storage, read> wo_b: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> wo_y: array<vec4f>;    // conv_wino_output
@group(0) @binding(3) var<storage, read_write> wo_ys: array<f32>;     // conv_wino_output_scalar (same buffer)

fn at(m0: vec4f, m1: vec4f, m2: vec4f, m3: vec4f, m4: vec4f, m5: vec4f) -> array<vec4f, 4> {
  let s12 = m1 + m2; let d12 = m1 - m2;
  let s34 = m3 + m4; let d34 = m3 - m4;
  return array<vec4f, 4>(m0 + s12 + s34, d12 + 2.0 * d34, s12 + 4.0 * s34, d12 + 8.0 * d34 + m5);
}

// Output tile of invocation e (tile t = e / cout4, channels 4 oq .. 4 oq + 3): out[col][row], vec4 over 4 channels,
// bias added (and the ReLU when RELU).
fn wino_tile(e: u32) -> array<array<vec4f, 4>, 4> {
  let cout4 = wo.cout / 4u;
  let oq = e % cout4;
  let plane = wo.tiles * cout4;
  var rows: array<array<vec4f, 4>, 6>;   // (M A)[row][·], vec4 over 4 channels
  for (var r = 0u; r < 6u; r++) {
    let b = r * 6u * plane + e;
    rows[r] = at(wo_m[b], wo_m[b + plane], wo_m[b + 2u * plane], wo_m[b + 3u * plane], wo_m[b + 4u * plane], wo_m[b + 5u * plane]);
  }
  var bias = vec4f(0.0);
  if (wo.has_bias != 0u) { bias = wo_b[oq]; }
  var out: array<array<vec4f, 4>, 4>;
  for (var c = 0u; c < 4u; c++) {
    out[c] = at(rows[0][c], rows[1][c], rows[2][c], rows[3][c], rows[4][c], rows[5][c]);
    for (var r = 0u; r < 4u; r++) {
      out[c][r] += bias;
      if (RELU) { out[c][r] = max(out[c][r], vec4f(0.0)); }
    }
  }
  return out;
}

@compute @workgroup_size(64)
fn conv_wino_output(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let cout4 = wo.cout / 4u;
  let e = linear_id(wid, nwg, lid);
  if (e >= wo.tiles * cout4) { return; }
  let tg = e / cout4 + wo.ty0 * wo.tw;
  let r0 = (tg / wo.tw) * 4u;
  let c0 = (tg % wo.tw) * 4u;
  let oq = e % cout4;
  let out = wino_tile(e);
  let hw = wo.h * wo.w;
  for (var r = 0u; r < 4u; r++) {
    if (r0 + r >= wo.h) { break; }
    for (var ch = 0u; ch < 4u; ch++) {
      let e0 = (oq * 4u + ch) * hw + (r0 + r) * wo.w + c0;
      wo_y[e0 >> 2u] = vec4f(out[0][r][ch], out[1][r][ch], out[2][r][ch], out[3][r][ch]);
    }
  }
}

@compute @workgroup_size(64)
fn conv_wino_output_scalar(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let cout4 = wo.cout / 4u;
  let e = linear_id(wid, nwg, lid);
  if (e >= wo.tiles * cout4) { return; }
  let tg = e / cout4 + wo.ty0 * wo.tw;
  let r0 = (tg / wo.tw) * 4u;
  let c0 = (tg % wo.tw) * 4u;
  let oq = e % cout4;
  let out = wino_tile(e);
  let hw = wo.h * wo.w;
  for (var r = 0u; r < 4u; r++) {
    if (r0 + r >= wo.h) { break; }
    for (var ch = 0u; ch < 4u; ch++) {
      let e0 = (oq * 4u + ch) * hw + (r0 + r) * wo.w + c0;
      for (var c = 0u; c < 4u; c++) {
        if (c0 + c < wo.w) { wo_ys[e0 + c] = out[c][r][ch]; }
      }
    }
  }
}

// ---- weight grad: dy transform ----
// dM = A dY A^T with A = (A^T)^T (6x4): a6 is the adjoint of at(). ALIGNED: each tile row of dy is one vec4.
struct WinoDyParams { cout: u32, h: u32, w: u32, tw: u32, ty0: u32, tiles: u32 }
@group(0) @binding(0) var<uniform> wd: WinoDyParams;
@group(0) @binding(1) var<storage, read> wd_dy: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> wd_m: array<vec4f>;

fn a6(d0: vec4f, d1: vec4f, d2: vec4f, d3: vec4f) -> array<vec4f, 6> {
  let s02 = d0 + d2; let s13 = d1 + d3;
  let q02 = d0 + 4.0 * d2; let q13 = 2.0 * d1 + 8.0 * d3;
  return array<vec4f, 6>(d0, s02 + s13, s02 - s13, q02 + q13, q02 - q13, d3);
}

// Columns c0 .. c0+3 of dy's row r in channel o; zero past the image (those outputs were discarded).
fn dy_row(o: u32, r: u32, c0: u32) -> vec4f {
  var d = vec4f(0.0);
  if (r >= wd.h) { return d; }
  let e = (o * wd.h + r) * wd.w + c0;
  if (ALIGNED) { return wd_dy[e >> 2u]; }
  for (var j = 0u; j < 4u; j++) {
    if (c0 + j < wd.w) { d[j] = wd_dy[(e + j) >> 2u][(e + j) & 3u]; }
  }
  return d;
}

@compute @workgroup_size(64)
fn conv_wino_dy(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let cout4 = wd.cout / 4u;
  let e = linear_id(wid, nwg, lid);
  if (e >= wd.tiles * cout4) { return; }
  let oq = e % cout4;
  let tg = e / cout4 + wd.ty0 * wd.tw;
  let r0 = (tg / wd.tw) * 4u;
  let c0 = (tg % wd.tw) * 4u;
  var rows: array<array<vec4f, 6>, 4>;   // (dY A^T)[row][·], vec4 over 4 channels
  for (var r = 0u; r < 4u; r++) {
    let p0 = dy_row(oq * 4u, r0 + r, c0);
    let p1 = dy_row(oq * 4u + 1u, r0 + r, c0);
    let p2 = dy_row(oq * 4u + 2u, r0 + r, c0);
    let p3 = dy_row(oq * 4u + 3u, r0 + r, c0);
    rows[r] = a6(vec4f(p0.x, p1.x, p2.x, p3.x), vec4f(p0.y, p1.y, p2.y, p3.y), vec4f(p0.z, p1.z, p2.z, p3.z),
                 vec4f(p0.w, p1.w, p2.w, p3.w));
  }
  let plane = wd.tiles * cout4;
  for (var c = 0u; c < 6u; c++) {
    let col = a6(rows[0][c], rows[1][c], rows[2][c], rows[3][c]);
    for (var r = 0u; r < 6u; r++) { wd_m[(r * 6u + c) * plane + e] = col[r]; }
  }
}

// ---- weight grad: back to 3x3 ----
// dw[o,i] = G^T dU[·][i][o] G; gt is the adjoint of g_col. One invocation per (i, o); dU [36][Cin][Cout].
struct WinoWgradParams { cin: u32, cout: u32 }
@group(0) @binding(0) var<uniform> wu: WinoWgradParams;
@group(0) @binding(1) var<storage, read> wu_du: array<f32>;
@group(0) @binding(2) var<storage, read_write> wu_dw: array<f32>;

fn gt(m0: f32, m1: f32, m2: f32, m3: f32, m4: f32, m5: f32) -> vec3f {
  let s12 = m1 + m2; let s34 = m3 + m4;
  return vec3f(m0 * 0.25 - s12 / 6.0 + s34 / 24.0, (m2 - m1) / 6.0 + (m3 - m4) / 12.0, (s34 - s12) / 6.0 + m5);
}

@compute @workgroup_size(64)
fn conv_wino_wgrad(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let plane = wu.cin * wu.cout;
  let e = linear_id(wid, nwg, lid);
  if (e >= plane) { return; }
  let i = e / wu.cout;
  let o = e % wu.cout;
  var rows: array<vec3f, 6>;   // (dU G)[a][·]
  for (var a = 0u; a < 6u; a++) {
    let b = a * 6u * plane + e;
    rows[a] = gt(wu_du[b], wu_du[b + plane], wu_du[b + 2u * plane], wu_du[b + 3u * plane], wu_du[b + 4u * plane], wu_du[b + 5u * plane]);
  }
  let base = (o * wu.cin + i) * 9u;
  for (var v = 0u; v < 3u; v++) {
    let col = gt(rows[0][v], rows[1][v], rows[2][v], rows[3][v], rows[4][v], rows[5][v]);
    for (var u = 0u; u < 3u; u++) { wu_dw[base + u * 3u + v] = col[u]; }
  }
}
