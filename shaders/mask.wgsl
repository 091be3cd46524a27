// Per-position masks on float32 features [C, M] (M = H*W of a [C,H,W] tensor, batch 1), for the semantic masks of
// Luan et al.'s Deep Photo Style Transfer: one soft mask m [M] (values in [0, 1]) shared by every channel.

fn linear_id(wid: vec3u, nwg: vec3u, lid: u32) -> u32 { return (wid.x + wid.y * nwg.x) * 256u + lid; }

// ---- forward and backward in one entry (the map is linear in x and its own adjoint):
//   forward   y[c,p] = m[p] x[c,p]                       (accumulate = 0)
//   backward  dx[c,p] += m[p] dy[c,p]   (∂y[c,p]/∂x[c',p'] = m[p] δ_cc' δ_pp', so dx = m ⊙ dy; accumulate = 1
//             adds it to the gradient already there, e.g. from other regions or the loss at the same layer)
// Invocation e owns element e = c M + p; n = C M.
struct MaskParams { n: u32, M: u32, accumulate: u32 }
@group(0) @binding(0) var<uniform> mp: MaskParams;
@group(0) @binding(1) var<storage, read> mm: array<f32>;
@group(0) @binding(2) var<storage, read> mx: array<f32>;
@group(0) @binding(3) var<storage, read_write> my: array<f32>;

@compute @workgroup_size(256)
fn mask_mul(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let e = linear_id(wid, nwg, lid);
  if (e >= mp.n) { return; }
  let v = mm[e % mp.M] * mx[e];
  if (mp.accumulate != 0u) { my[e] += v; } else { my[e] = v; }
}
