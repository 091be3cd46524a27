// Softmax over channels at every position (the "SWAG" feature transform of Wang et al., CVPR 2021, for style transfer
// on non-VGG backbones). Features float32 [C, M] (M = H*W of a [C,H,W] tensor, batch 1), temperature T > 0 given as
// inv_t = 1/T. One invocation per position p owns the whole column x[:, p] (reads it, writes y[:, p]), so the
// in-place entries are race-free: every element is read by the invocation that writes it, before it writes it.
// Invocations are numbered by position, so neighbours read neighbouring elements of each channel row.

struct SoftmaxParams { C: u32, M: u32, inv_t: f32 }

fn linear_id(wid: vec3u, nwg: vec3u, lid: u32) -> u32 { return (wid.x + wid.y * nwg.x) * 64u + lid; }

// ---- forward ----
// y[c,p] = exp(x[c,p]/T) / Σ_c' exp(x[c',p]/T), computed stably as e[c] = exp((x[c,p] - m)/T) with m = max_c x[c,p]
// (the same value: the factor exp(-m/T) cancels; every exponent is <= 0 and the largest is 0, so the sum is in
// [1, C]). Three passes over the column: max, sum, write (the exponentials are recomputed rather than stored).
@group(0) @binding(0) var<uniform> smp: SoftmaxParams;
@group(0) @binding(1) var<storage, read> sm_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> sm_y: array<f32>;

@compute @workgroup_size(64)
fn softmax_channels(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let p = linear_id(wid, nwg, lid);
  if (p >= smp.M) { return; }
  var m = sm_x[p];
  for (var c = 1u; c < smp.C; c++) { m = max(m, sm_x[c * smp.M + p]); }
  var s = 0.0;
  for (var c = 0u; c < smp.C; c++) { s += exp((sm_x[c * smp.M + p] - m) * smp.inv_t); }
  let r = 1.0 / s;
  for (var c = 0u; c < smp.C; c++) { sm_y[c * smp.M + p] = exp((sm_x[c * smp.M + p] - m) * smp.inv_t) * r; }
}

// The same in place (y = x): a buffer cannot be bound both read-only and writable in one dispatch.
@group(0) @binding(0) var<uniform> smip: SoftmaxParams;
@group(0) @binding(1) var<storage, read_write> smi_y: array<f32>;

@compute @workgroup_size(64)
fn softmax_channels_inplace(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let p = linear_id(wid, nwg, lid);
  if (p >= smip.M) { return; }
  var m = smi_y[p];
  for (var c = 1u; c < smip.C; c++) { m = max(m, smi_y[c * smip.M + p]); }
  var s = 0.0;
  for (var c = 0u; c < smip.C; c++) { s += exp((smi_y[c * smip.M + p] - m) * smip.inv_t); }
  let r = 1.0 / s;
  for (var c = 0u; c < smip.C; c++) {
    let e = c * smip.M + p;
    smi_y[e] = exp((smi_y[e] - m) * smip.inv_t) * r;
  }
}

// ---- backward ----
// With z = x/T and y = softmax(z) over c: dy/dz has the Jacobian diag(y) - y yᵀ (per position), so
//   dx[c,p] = (1/T) y[c,p] (dy[c,p] - Σ_c' y[c',p] dy[c',p]).
// Two passes over the column: the dot product, then the write. Reads only y (not x).
@group(0) @binding(0) var<uniform> smbp: SoftmaxParams;
@group(0) @binding(1) var<storage, read> smb_y: array<f32>;
@group(0) @binding(2) var<storage, read> smb_dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> smb_dx: array<f32>;

@compute @workgroup_size(64)
fn softmax_channels_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let p = linear_id(wid, nwg, lid);
  if (p >= smbp.M) { return; }
  var s = 0.0;
  for (var c = 0u; c < smbp.C; c++) { s += smb_y[c * smbp.M + p] * smb_dy[c * smbp.M + p]; }
  for (var c = 0u; c < smbp.C; c++) {
    let e = c * smbp.M + p;
    smb_dx[e] = smbp.inv_t * smb_y[e] * (smb_dy[e] - s);
  }
}

// The same in place (dx = dy): g holds dy on entry and dx on exit.
@group(0) @binding(0) var<uniform> smbip: SoftmaxParams;
@group(0) @binding(1) var<storage, read> smbi_y: array<f32>;
@group(0) @binding(2) var<storage, read_write> smbi_g: array<f32>;

@compute @workgroup_size(64)
fn softmax_channels_backward_inplace(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let p = linear_id(wid, nwg, lid);
  if (p >= smbip.M) { return; }
  var s = 0.0;
  for (var c = 0u; c < smbip.C; c++) { s += smbi_y[c * smbip.M + p] * smbi_g[c * smbip.M + p]; }
  for (var c = 0u; c < smbip.C; c++) {
    let e = c * smbip.M + p;
    smbi_g[e] = smbip.inv_t * smbi_y[e] * (smbi_g[e] - s);
  }
}
