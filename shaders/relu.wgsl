// ReLU, elementwise over any layout.
// forward:  y = max(x, 0)
// backward: dx = dy * [y > 0]   (y > 0 exactly where x > 0, so the forward output is all backward needs)

struct Params { n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

fn linear_id(wid: vec3u, nwg: vec3u, lid: u32) -> u32 { return (wid.x + wid.y * nwg.x) * 256u + lid; }

@compute @workgroup_size(256)
fn relu_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_id(wid, nwg, lid);
  if (i >= p.n) { return; }
  y[i] = max(x[i], 0.0);
}

struct BackParams { n: u32 }
@group(0) @binding(0) var<uniform> bp: BackParams;
@group(0) @binding(1) var<storage, read> out: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read_write> din: array<f32>;

@compute @workgroup_size(256)
fn relu_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_id(wid, nwg, lid);
  if (i >= bp.n) { return; }
  din[i] = select(0.0, dout[i], out[i] > 0.0);
}
