// 2x2 pooling with stride 2 on float32 [C,H,W] (batch 1), PyTorch's kernel_size=2, stride=2, padding=0.
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
