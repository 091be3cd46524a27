// 2x2 pooling with stride 2 on float32 [C,H,W] (batch 1), PyTorch's kernel_size=2, stride=2, padding=0 (the fast
// path; any other window, stride or padding runs the general kernels at the end of this file).
// Output [C, Ho, Wo]:
//  - floor mode (ceil_mode=False): Ho = floor(H/2), Wo = floor(W/2); an odd last row/column of the input is
//    dropped and gets zero gradient;
//  - ceil mode (ceil_mode=True): Ho = ceil(H/2), Wo = ceil(W/2); a window hanging past the bottom/right border
//    covers only its valid elements (max over them; avg divides by their count, as torch does with padding 0,
//    since its divisor is the window clipped to the padded input = the input).
// The kernels read the mode from Ho/Wo alone: every window element is bounds-checked against H and W, which in
// floor mode always passes. Valid counts are 1, 2 or 4, so dividing by them is exact.
// One invocation per output element (forward) or per input element (backward: windows do not overlap, so every
// dx element has at most one source and the backward needs no accumulation or atomics).

struct Params { n: u32, H: u32, W: u32, Ho: u32, Wo: u32 }

fn linear_id(wid: vec3u, nwg: vec3u, lid: u32) -> u32 { return (wid.x + wid.y * nwg.x) * 256u + lid; }

// Window of output element o: flat index of its top-left input element and whether its second column / row exist.
struct Window { k: u32, right: bool, down: bool }

fn window_at(o: u32, H: u32, W: u32, Ho: u32, Wo: u32) -> Window {
  let j = o % Wo;
  let ci = o / Wo;        // c * Ho + i
  let i = ci % Ho;
  let c = ci / Ho;
  return Window((c * H + 2u * i) * W + 2u * j, 2u * j + 1u < W, 2u * i + 1u < H);
}

// Number of valid input elements in output element o's window (1, 2 or 4).
fn window_count(o: u32, H: u32, W: u32, Ho: u32, Wo: u32) -> f32 {
  let w = window_at(o, H, W, Ho, Wo);
  return f32((1u + u32(w.right)) * (1u + u32(w.down)));
}

// Output element fed by input element k, or 0xffffffff when k is in a dropped row/column (floor mode only).
fn window_of(k: u32, H: u32, W: u32, Ho: u32, Wo: u32) -> u32 {
  let w = k % W;
  let ch = k / W;         // c * H + h
  let h = ch % H;
  let c = ch / H;
  let i = h / 2u;
  let j = w / 2u;
  if (i >= Ho || j >= Wo) { return 0xffffffffu; }
  return (c * Ho + i) * Wo + j;
}

// max pool: y[o] = max of the window's valid elements, argmax[o] = flat x index of the first maximum in row-major
// window order (strict > keeps the earlier element on ties, as PyTorch does).
@group(0) @binding(0) var<uniform> mp: Params;
@group(0) @binding(1) var<storage, read> mx: array<f32>;
@group(0) @binding(2) var<storage, read_write> my: array<f32>;
@group(0) @binding(3) var<storage, read_write> margmax: array<u32>;

@compute @workgroup_size(256)
fn max_pool_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let o = linear_id(wid, nwg, lid);
  if (o >= mp.n) { return; }
  let w = window_at(o, mp.H, mp.W, mp.Ho, mp.Wo);
  let k = w.k;
  var best = mx[k];
  var at = k;
  if (w.right) {
    let v1 = mx[k + 1u];
    if (v1 > best) { best = v1; at = k + 1u; }
  }
  if (w.down) {
    let v2 = mx[k + mp.W];
    if (v2 > best) { best = v2; at = k + mp.W; }
    if (w.right) {
      let v3 = mx[k + mp.W + 1u];
      if (v3 > best) { best = v3; at = k + mp.W + 1u; }
    }
  }
  my[o] = best;
  margmax[o] = at;
}

// max pool backward: dx[k] = dy[o] if argmax[o] == k else 0, over every input element k (n = C*H*W).
@group(0) @binding(0) var<uniform> mbp: Params;
@group(0) @binding(1) var<storage, read> mbdy: array<f32>;
@group(0) @binding(2) var<storage, read> mbargmax: array<u32>;
@group(0) @binding(3) var<storage, read_write> mbdx: array<f32>;

@compute @workgroup_size(256)
fn max_pool_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let k = linear_id(wid, nwg, lid);
  if (k >= mbp.n) { return; }
  let o = window_of(k, mbp.H, mbp.W, mbp.Ho, mbp.Wo);
  var g = 0.0;
  if (o != 0xffffffffu) {
    if (mbargmax[o] == k) { g = mbdy[o]; }
  }
  mbdx[k] = g;
}

// avg pool: y[o] = (sum of the window's valid elements) / (their count); 4 in floor mode.
@group(0) @binding(0) var<uniform> ap: Params;
@group(0) @binding(1) var<storage, read> ax: array<f32>;
@group(0) @binding(2) var<storage, read_write> ay: array<f32>;

@compute @workgroup_size(256)
fn avg_pool_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let o = linear_id(wid, nwg, lid);
  if (o >= ap.n) { return; }
  let w = window_at(o, ap.H, ap.W, ap.Ho, ap.Wo);
  let k = w.k;
  var v1 = 0.0;
  var v2 = 0.0;
  var v3 = 0.0;
  if (w.right) { v1 = ax[k + 1u]; }
  if (w.down) { v2 = ax[k + ap.W]; }
  if (w.right && w.down) { v3 = ax[k + ap.W + 1u]; }
  ay[o] = ((ax[k] + v1) + (v2 + v3)) / f32((1u + u32(w.right)) * (1u + u32(w.down)));
}

// avg pool backward: dx[k] = dy[o] / count(o) for the window o holding k, 0 in dropped rows/columns (n = C*H*W).
@group(0) @binding(0) var<uniform> abp: Params;
@group(0) @binding(1) var<storage, read> abdy: array<f32>;
@group(0) @binding(2) var<storage, read_write> abdx: array<f32>;

@compute @workgroup_size(256)
fn avg_pool_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let k = linear_id(wid, nwg, lid);
  if (k >= abp.n) { return; }
  let o = window_of(k, abp.H, abp.W, abp.Ho, abp.Wo);
  var g = 0.0;
  if (o != 0xffffffffu) { g = abdy[o] / window_count(o, abp.H, abp.W, abp.Ho, abp.Wo); }
  abdx[k] = g;
}

// ---- general pooling: K x K windows, stride S, padding P (PyTorch's MaxPool2d / AvgPool2d(K, S, P, ceil_mode)) ----
// Output Ho = floor or ceil((H + 2P - K) / S) + 1, less one in ceil mode when the last window would start past the
// input and its right padding ((Ho - 1) S >= H + P); likewise Wo (computed on the TypeScript side). Output row i's
// window covers input rows [i S - P, i S - P + K) (columns likewise); P <= K/2 keeps every window on at least one
// input element. Windows overlap when S < K, so each backward is a gather: the invocation of input element k visits
// the outputs whose windows contain k, rows i in [ceil((h + P - K + 1) / S), floor((h + P) / S)] ∩ [0, Ho), and is
// the only writer of dx[k] (no atomics, no scatter races).
//   max: padding acts as -inf (only the window's input elements compete); y[o] = their max, argmax[o] = flat x index
//        of the first maximum in row-major window order (strict >, as PyTorch);
//        dx[k] = Σ_{o: k in window(o), argmax[o] = k} dy[o].
//   avg: y[o] = Σ_{input elements of the window} x / D(o), D(o) = the window clipped to the padded input
//        [-P, H + P) x [-P, W + P) (count_include_pad = True, PyTorch's default; with P = 0 and ceil mode this is the
//        number of input elements, as in the 2x2 kernels above); dx[k] = Σ_{o: k in window(o)} dy[o] / D(o).
struct GParams { n: u32, H: u32, W: u32, Ho: u32, Wo: u32, K: u32, S: u32, P: u32 }

// First and one-past-last output index whose window holds input index h (along an axis of output size no).
fn covering(h: u32, K: u32, S: u32, P: u32, no: u32) -> vec2u {
  let t = i32(h + P) - i32(K) + 1;
  let lo = select(0, (t + i32(S) - 1) / i32(S), t > 0);
  let hi = min((h + P) / S + 1u, no);
  return vec2u(u32(lo), max(hi, u32(lo)));
}

// Divisor D of window (i, j) for avg pooling: the window clipped to the padded input.
fn avg_divisor(i: u32, j: u32, g: GParams) -> f32 {
  let r0 = i32(i * g.S) - i32(g.P);
  let c0 = i32(j * g.S) - i32(g.P);
  let r1 = min(r0 + i32(g.K), i32(g.H + g.P));
  let c1 = min(c0 + i32(g.K), i32(g.W + g.P));
  return f32((r1 - r0) * (c1 - c0));
}

@group(0) @binding(0) var<uniform> gmp: GParams;
@group(0) @binding(1) var<storage, read> gmx: array<f32>;
@group(0) @binding(2) var<storage, read_write> gmy: array<f32>;
@group(0) @binding(3) var<storage, read_write> gmargmax: array<u32>;

@compute @workgroup_size(256)
fn max_pool_forward_general(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let o = linear_id(wid, nwg, lid);
  if (o >= gmp.n) { return; }
  let j = o % gmp.Wo;
  let i = (o / gmp.Wo) % gmp.Ho;
  let c = o / (gmp.Wo * gmp.Ho);
  let r0 = i32(i * gmp.S) - i32(gmp.P);
  let c0 = i32(j * gmp.S) - i32(gmp.P);
  let r1 = min(r0 + i32(gmp.K), i32(gmp.H));
  let c1 = min(c0 + i32(gmp.K), i32(gmp.W));
  var best = 0.0;
  var at = 0xffffffffu;
  for (var r = max(r0, 0); r < r1; r++) {
    for (var q = max(c0, 0); q < c1; q++) {
      let k = (c * gmp.H + u32(r)) * gmp.W + u32(q);
      let v = gmx[k];
      if (at == 0xffffffffu || v > best) { best = v; at = k; }
    }
  }
  gmy[o] = best;
  gmargmax[o] = at;
}

@group(0) @binding(0) var<uniform> gmbp: GParams;
@group(0) @binding(1) var<storage, read> gmbdy: array<f32>;
@group(0) @binding(2) var<storage, read> gmbargmax: array<u32>;
@group(0) @binding(3) var<storage, read_write> gmbdx: array<f32>;

@compute @workgroup_size(256)
fn max_pool_backward_general(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let k = linear_id(wid, nwg, lid);
  if (k >= gmbp.n) { return; }
  let w = k % gmbp.W;
  let h = (k / gmbp.W) % gmbp.H;
  let c = k / (gmbp.W * gmbp.H);
  let ri = covering(h, gmbp.K, gmbp.S, gmbp.P, gmbp.Ho);
  let rj = covering(w, gmbp.K, gmbp.S, gmbp.P, gmbp.Wo);
  var g = 0.0;
  for (var i = ri.x; i < ri.y; i++) {
    for (var j = rj.x; j < rj.y; j++) {
      let o = (c * gmbp.Ho + i) * gmbp.Wo + j;
      if (gmbargmax[o] == k) { g += gmbdy[o]; }
    }
  }
  gmbdx[k] = g;
}

@group(0) @binding(0) var<uniform> gap: GParams;
@group(0) @binding(1) var<storage, read> gax: array<f32>;
@group(0) @binding(2) var<storage, read_write> gay: array<f32>;

@compute @workgroup_size(256)
fn avg_pool_forward_general(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let o = linear_id(wid, nwg, lid);
  if (o >= gap.n) { return; }
  let j = o % gap.Wo;
  let i = (o / gap.Wo) % gap.Ho;
  let c = o / (gap.Wo * gap.Ho);
  let r0 = i32(i * gap.S) - i32(gap.P);
  let c0 = i32(j * gap.S) - i32(gap.P);
  let r1 = min(r0 + i32(gap.K), i32(gap.H));
  let c1 = min(c0 + i32(gap.K), i32(gap.W));
  var sum = 0.0;
  for (var r = max(r0, 0); r < r1; r++) {
    for (var q = max(c0, 0); q < c1; q++) { sum += gax[(c * gap.H + u32(r)) * gap.W + u32(q)]; }
  }
  gay[o] = sum / avg_divisor(i, j, gap);
}

@group(0) @binding(0) var<uniform> gabp: GParams;
@group(0) @binding(1) var<storage, read> gabdy: array<f32>;
@group(0) @binding(2) var<storage, read_write> gabdx: array<f32>;

@compute @workgroup_size(256)
fn avg_pool_backward_general(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let k = linear_id(wid, nwg, lid);
  if (k >= gabp.n) { return; }
  let w = k % gabp.W;
  let h = (k / gabp.W) % gabp.H;
  let c = k / (gabp.W * gabp.H);
  let ri = covering(h, gabp.K, gabp.S, gabp.P, gabp.Ho);
  let rj = covering(w, gabp.K, gabp.S, gabp.P, gabp.Wo);
  var g = 0.0;
  for (var i = ri.x; i < ri.y; i++) {
    for (var j = rj.x; j < rj.y; j++) {
      g += gabdy[(c * gabp.Ho + i) * gabp.Wo + j] / avg_divisor(i, j, gabp);
    }
  }
  gabdx[k] = g;
}
