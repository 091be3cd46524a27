// Colour guided filter (He et al., "Guided Image Filtering", ECCV 2010 / TPAMI 2013), the fast photorealistic
// smoothing of Li et al. (ECCV 2018): the output q is, in each (2r+1)² window w_k clipped to the image, an affine
// function of the guide's colour I (3-vector):
//   a_k = (Σ_k + ε I₃)⁻¹ cov_k(I, p_c),  b_k = mean_k(p_c) − a_kᵀ mean_k(I)        (per output channel c)
//   q_c[i] = mean_{k ∋ i}(a_k)ᵀ I_i + mean_{k ∋ i}(b_k)
// where Σ_k is the 3x3 covariance of I over w_k. Every mean is a box mean over the window clipped to the image
// (sum / number of pixels in it, He's N = box(1)); the clipped 2-D box mean is the 1-D clipped mean along rows then
// along columns. Planes are float32 [C,H,W]. No atomics, fixed summation order: bit-identical run to run.
//
// Plane stack (21 planes) built by gf_stack:
//   0-2 I_k, 3-5 p_c, 6-11 I_k I_l for kl = 00,01,02,11,12,22, 12-20 I_k p_c at 12 + 3k + c.
// Coefficients (12 planes) from gf_coeffs: 0-8 a[c][k] at 3c + k, 9-11 b_c.

fn linear_id(wid: vec3u, nwg: vec3u, lid: u32) -> u32 { return (wid.x + wid.y * nwg.x) * 256u + lid; }

struct PixParams { n: u32, eps: f32 }

// gf_stack: n = H*W; one invocation per pixel writes its 21 stack values.
@group(0) @binding(0) var<uniform> sp: PixParams;
@group(0) @binding(1) var<storage, read> sI: array<f32>;
@group(0) @binding(2) var<storage, read> sP: array<f32>;
@group(0) @binding(3) var<storage, read_write> sout: array<f32>;

@compute @workgroup_size(256)
fn gf_stack(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let e = linear_id(wid, nwg, lid);
  let n = sp.n;
  if (e >= n) { return; }
  let I = vec3f(sI[e], sI[n + e], sI[2u * n + e]);
  let p = vec3f(sP[e], sP[n + e], sP[2u * n + e]);
  for (var k = 0u; k < 3u; k++) {
    sout[k * n + e] = I[k];
    sout[(3u + k) * n + e] = p[k];
  }
  sout[6u * n + e] = I.x * I.x;
  sout[7u * n + e] = I.x * I.y;
  sout[8u * n + e] = I.x * I.z;
  sout[9u * n + e] = I.y * I.y;
  sout[10u * n + e] = I.y * I.z;
  sout[11u * n + e] = I.z * I.z;
  for (var k = 0u; k < 3u; k++) {
    for (var c = 0u; c < 3u; c++) { sout[(12u + 3u * k + c) * n + e] = I[k] * p[c]; }
  }
}

// box_mean: y[pos] = mean of x over [pos − r, pos + r] ∩ [0, L − 1] along one axis of every plane (axis 0: along
// rows, L = W; axis 1: along columns, L = H). One invocation per (plane, segment of S positions, line): it sums its
// first window directly, then slides (adds the entering element, drops the leaving one), so the cost per element is
// O(1 + r/S) and float32 drift is bounded by S slides. Consecutive invocations take consecutive lines, so the column
// pass reads consecutive addresses.
struct BoxParams { planes: u32, H: u32, W: u32, r: u32, axis: u32, S: u32, nseg: u32, total: u32 }
@group(0) @binding(0) var<uniform> bp: BoxParams;
@group(0) @binding(1) var<storage, read> bx: array<f32>;
@group(0) @binding(2) var<storage, read_write> by: array<f32>;

@compute @workgroup_size(256)
fn box_mean(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let t = linear_id(wid, nwg, lid);
  if (t >= bp.total) { return; }
  var L = bp.W;
  var lines = bp.H;
  var step = 1u;
  var lineStep = bp.W;
  if (bp.axis == 1u) { L = bp.H; lines = bp.W; step = bp.W; lineStep = 1u; }
  let line = t % lines;
  let rest = t / lines;
  let seg = rest % bp.nseg;
  let plane = rest / bp.nseg;
  let base = plane * bp.H * bp.W + line * lineStep;
  let p0 = seg * bp.S;
  let p1 = min(L, p0 + bp.S);
  let r = i32(bp.r);
  let Li = i32(L);
  // First window, summed directly.
  var lo = max(0, i32(p0) - r);
  var hi = min(Li - 1, i32(p0) + r);
  var s = 0.0;
  for (var q = lo; q <= hi; q++) { s += bx[base + u32(q) * step]; }
  by[base + p0 * step] = s / f32(hi - lo + 1);
  for (var pos = i32(p0) + 1; pos < i32(p1); pos++) {
    let enter = pos + r;
    let leave = pos - r - 1;
    if (enter < Li) { s += bx[base + u32(enter) * step]; }
    if (leave >= 0) { s -= bx[base + u32(leave) * step]; }
    lo = max(0, pos - r);
    hi = min(Li - 1, pos + r);
    by[base + u32(pos) * step] = s / f32(hi - lo + 1);
  }
}

// gf_coeffs: from the box means of the stack (mI, mP, mII, mIP), per pixel:
//   A = mII − mI mIᵀ + ε I₃ (SPD), cov_c = mIP_c − mI mP_c, a_c = A⁻¹ cov_c (Cholesky), b_c = mP_c − a_c · mI.
@group(0) @binding(0) var<uniform> cp: PixParams;
@group(0) @binding(1) var<storage, read> cm: array<f32>;
@group(0) @binding(2) var<storage, read_write> cco: array<f32>;

@compute @workgroup_size(256)
fn gf_coeffs(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let e = linear_id(wid, nwg, lid);
  let n = cp.n;
  if (e >= n) { return; }
  let mI = vec3f(cm[e], cm[n + e], cm[2u * n + e]);
  let mP = vec3f(cm[3u * n + e], cm[4u * n + e], cm[5u * n + e]);
  let a00 = cm[6u * n + e] - mI.x * mI.x + cp.eps;
  let a10 = cm[7u * n + e] - mI.x * mI.y;
  let a20 = cm[8u * n + e] - mI.x * mI.z;
  let a11 = cm[9u * n + e] - mI.y * mI.y + cp.eps;
  let a21 = cm[10u * n + e] - mI.y * mI.z;
  let a22 = cm[11u * n + e] - mI.z * mI.z + cp.eps;
  // A = L Lᵀ; the max() guards a pivot that rounding pushed to or below zero (eps keeps it positive in exact math).
  let l00 = sqrt(max(a00, 1e-30));
  let l10 = a10 / l00;
  let l20 = a20 / l00;
  let l11 = sqrt(max(a11 - l10 * l10, 1e-30));
  let l21 = (a21 - l20 * l10) / l11;
  let l22 = sqrt(max(a22 - l20 * l20 - l21 * l21, 1e-30));
  for (var c = 0u; c < 3u; c++) {
    let cov = vec3f(cm[(12u + c) * n + e], cm[(15u + c) * n + e], cm[(18u + c) * n + e]) - mI * mP[c];
    // Solve L y = cov, then Lᵀ a = y.
    let y0 = cov.x / l00;
    let y1 = (cov.y - l10 * y0) / l11;
    let y2 = (cov.z - l20 * y0 - l21 * y1) / l22;
    let x2 = y2 / l22;
    let x1 = (y1 - l21 * x2) / l11;
    let x0 = (y0 - l10 * x1 - l20 * x2) / l00;
    cco[(3u * c) * n + e] = x0;
    cco[(3u * c + 1u) * n + e] = x1;
    cco[(3u * c + 2u) * n + e] = x2;
    cco[(9u + c) * n + e] = mP[c] - (x0 * mI.x + x1 * mI.y + x2 * mI.z);
  }
}

// gf_output: q_c = mean(a_c) · I + mean(b_c), from the box means of the 12 coefficient planes.
@group(0) @binding(0) var<uniform> op: PixParams;
@group(0) @binding(1) var<storage, read> oI: array<f32>;
@group(0) @binding(2) var<storage, read> oab: array<f32>;
@group(0) @binding(3) var<storage, read_write> oq: array<f32>;

@compute @workgroup_size(256)
fn gf_output(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let e = linear_id(wid, nwg, lid);
  let n = op.n;
  if (e >= n) { return; }
  let I = vec3f(oI[e], oI[n + e], oI[2u * n + e]);
  for (var c = 0u; c < 3u; c++) {
    let a = vec3f(oab[(3u * c) * n + e], oab[(3u * c + 1u) * n + e], oab[(3u * c + 2u) * n + e]);
    oq[c * n + e] = dot(a, I) + oab[(9u + c) * n + e];
  }
}
