// Nearest-neighbour 2x upsampling on float32 [C,H,W] (batch 1), output [C,2H,2W].
// One invocation per INPUT element in both directions: forward writes its 2x2 output block, backward sums it,
// so no output is written by two invocations and the backward needs no accumulation.

struct Params { n: u32, H: u32, W: u32 }

fn linear_id(wid: vec3u, nwg: vec3u, lid: u32) -> u32 { return (wid.x + wid.y * nwg.x) * 256u + lid; }

// Flat index in the [C,2H,2W] tensor of the top-left element of input element k's 2x2 block.
fn block_of(k: u32, H: u32, W: u32) -> u32 {
  let j = k % W;
  let ci = k / W;         // c * H + i
  return (2u * ci) * (2u * W) + 2u * j;   // row 2i of channel c is row 2(cH + i) of the stacked planes
}

// forward: y[c, r, s] = x[c, floor(r/2), floor(s/2)]  (n = C*H*W)
@group(0) @binding(0) var<uniform> up: Params;
@group(0) @binding(1) var<storage, read> ux: array<f32>;
@group(0) @binding(2) var<storage, read_write> uy: array<f32>;

@compute @workgroup_size(256)
fn upsample_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let k = linear_id(wid, nwg, lid);
  if (k >= up.n) { return; }
  let v = ux[k];
  let o = block_of(k, up.H, up.W);
  let W2 = 2u * up.W;
  uy[o] = v;
  uy[o + 1u] = v;
  uy[o + W2] = v;
  uy[o + W2 + 1u] = v;
}

// backward: dx[c, i, j] = Σ_{a,b ∈ {0,1}} dy[c, 2i+a, 2j+b]  (n = C*H*W)
@group(0) @binding(0) var<uniform> ubp: Params;
@group(0) @binding(1) var<storage, read> ubdy: array<f32>;
@group(0) @binding(2) var<storage, read_write> ubdx: array<f32>;

@compute @workgroup_size(256)
fn upsample_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let k = linear_id(wid, nwg, lid);
  if (k >= ubp.n) { return; }
  let o = block_of(k, ubp.H, ubp.W);
  let W2 = 2u * ubp.W;
  ubdx[k] = (ubdy[o] + ubdy[o + 1u]) + (ubdy[o + W2] + ubdy[o + W2 + 1u]);
}
