// Window copy between float32 [C,H,W] tensors (batch 1), for running the network in spatial tiles:
//   dst[c, dy0 + i, dx0 + j] = alpha * src[c, sy0 + i, sx0 + j] + beta * dst[c, dy0 + i, dx0 + j]
// for c < C, i < h, j < w. With beta = 0 dst is not read (a poisoned or stale dst cannot leak through).
// One invocation per window element; the TypeScript side checks that both windows lie inside their tensors.

struct Params {
  C: u32, h: u32, w: u32,
  sH: u32, sW: u32, sy0: u32, sx0: u32,
  dH: u32, dW: u32, dy0: u32, dx0: u32,
  alpha: f32, beta: f32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn window_copy(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let e = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (e >= p.C * p.h * p.w) { return; }
  let j = e % p.w;
  let r = e / p.w;
  let i = r % p.h;
  let c = r / p.h;
  let s = (c * p.sH + p.sy0 + i) * p.sW + p.sx0 + j;
  let d = (c * p.dH + p.dy0 + i) * p.dW + p.dx0 + j;
  var v = p.alpha * src[s];
  if (p.beta != 0.0) { v += p.beta * dst[d]; }
  dst[d] = v;
}
