// Per-channel input normalisation, [C,H,W] float32 (torchvision's mean/std for VGG19).
// forward:  y[c,p] = (x[c,p] - mean[c]) / std[c]
// backward: dx[c,p] = dy[c,p] / std[c]

struct Params { n: u32, plane: u32, m0: f32, m1: f32, m2: f32, s0: f32, s1: f32, s2: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

fn linear_id(wid: vec3u, nwg: vec3u, lid: u32) -> u32 { return (wid.x + wid.y * nwg.x) * 256u + lid; }

fn channel_mean(c: u32) -> f32 { return select(select(p.m2, p.m1, c == 1u), p.m0, c == 0u); }
fn channel_std(c: u32) -> f32 { return select(select(p.s2, p.s1, c == 1u), p.s0, c == 0u); }

@compute @workgroup_size(256)
fn normalize_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_id(wid, nwg, lid);
  if (i >= p.n) { return; }
  let c = i / p.plane;
  y[i] = (x[i] - channel_mean(c)) / channel_std(c);
}

@compute @workgroup_size(256)
fn normalize_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_id(wid, nwg, lid);
  if (i >= p.n) { return; }
  y[i] = x[i] / channel_std(i / p.plane);
}
