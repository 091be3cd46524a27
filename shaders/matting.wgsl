// Matrix-free product with the matting Laplacian M of a guide image I (Levin et al., "A Closed-Form Solution to
// Natural Image Matting", 2008; Luan et al.'s photorealism regulariser). Windows w_k are the 3x3 windows whose centre
// k is at least one pixel from every border (|w| = 9), as in Levin's code:
//   M_ij = Σ_{k: i,j ∈ w_k} (δ_ij − (1 + (I_i − μ_k)ᵀ (Σ_k + ε/9 I₃)⁻¹ (I_j − μ_k)) / 9).
// With Σ_k + ε/9 I₃ = L_k L_kᵀ (Cholesky, computed once per guide in float64 on the CPU: ε = 1e-7 is far below what
// float32 covariances resolve) and z_{j,k} = L_k⁻¹ (I_j − μ_k), the window term is (1 + z_i·z_j)/9, so
//   (M v)_i = n_i v_i − Σ_{k ∋ i} (S_k + z_{i,k} · u_k),   S_k = Σ_{j∈w_k} v_j / 9,  u_k = Σ_{j∈w_k} z_{j,k} v_j / 9
// (n_i: the number of windows holding i). Whitened z stays O(1) even when Σ_k is singular (flat or grey regions),
// which keeps float32 accurate where the inverse itself has entries near 9/ε.
// Layouts: guide I and v planar [3,H,W] (M acts on each channel c of v separately); stats [H*W, 9] per window
// centre (μ0, μ1, μ2, L⁻¹ 00, 10, 11, 20, 21, 22); win [H*W, 12] per window (S_c, u_c0, u_c1, u_c2 for c = 0..2).

fn linear_id(wid: vec3u, nwg: vec3u, lid: u32) -> u32 { return (wid.x + wid.y * nwg.x) * 256u + lid; }

struct Params { n: u32, H: u32, W: u32, T: u32, scale: f32, accumulate: u32 }

fn interior(y: u32, x: u32, H: u32, W: u32) -> bool { return y >= 1u && x >= 1u && y + 1u < H && x + 1u < W; }

// matting_window: one invocation per window centre k (n = H*W); border centres write zeros (never read).
@group(0) @binding(0) var<uniform> wp: Params;
@group(0) @binding(1) var<storage, read> wI: array<f32>;
@group(0) @binding(2) var<storage, read> wstats: array<f32>;
@group(0) @binding(3) var<storage, read> wv: array<f32>;
@group(0) @binding(4) var<storage, read_write> wwin: array<f32>;

@compute @workgroup_size(256)
fn matting_window(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let k = linear_id(wid, nwg, lid);
  let n = wp.n;
  if (k >= n) { return; }
  let y = k / wp.W;
  let x = k % wp.W;
  var S = vec3f(0.0);
  var u0 = vec3f(0.0);  // u for channel 0, etc.
  var u1 = vec3f(0.0);
  var u2 = vec3f(0.0);
  if (interior(y, x, wp.H, wp.W)) {
    let mu = vec3f(wstats[9u * k], wstats[9u * k + 1u], wstats[9u * k + 2u]);
    let l00 = wstats[9u * k + 3u]; let l10 = wstats[9u * k + 4u]; let l11 = wstats[9u * k + 5u];
    let l20 = wstats[9u * k + 6u]; let l21 = wstats[9u * k + 7u]; let l22 = wstats[9u * k + 8u];
    for (var dy = 0u; dy < 3u; dy++) {
      for (var dx = 0u; dx < 3u; dx++) {
        let j = (y + dy - 1u) * wp.W + (x + dx - 1u);
        let d = vec3f(wI[j], wI[n + j], wI[2u * n + j]) - mu;
        let z = vec3f(l00 * d.x, l10 * d.x + l11 * d.y, l20 * d.x + l21 * d.y + l22 * d.z);
        let v = vec3f(wv[j], wv[n + j], wv[2u * n + j]);
        S += v;
        u0 += z * v.x;
        u1 += z * v.y;
        u2 += z * v.z;
      }
    }
  }
  let inv = 1.0 / 9.0;
  let o = 12u * k;
  wwin[o] = S.x * inv; wwin[o + 1u] = u0.x * inv; wwin[o + 2u] = u0.y * inv; wwin[o + 3u] = u0.z * inv;
  wwin[o + 4u] = S.y * inv; wwin[o + 5u] = u1.x * inv; wwin[o + 6u] = u1.y * inv; wwin[o + 7u] = u1.z * inv;
  wwin[o + 8u] = S.z * inv; wwin[o + 9u] = u2.x * inv; wwin[o + 10u] = u2.y * inv; wwin[o + 11u] = u2.z * inv;
}

// matting_apply: out[c,i] = (accumulate ? out[c,i] : 0) + scale · (M v_c)_i for every pixel i, and
// partial[t] = Σ over invocation t's pixels and channels of v_c[i] (M v_c)_i (reduce_final sums the T partials into
// Σ_c v_cᵀ M v_c). T invocations, invocation t takes pixels t, t + T, ... (a fixed order: deterministic).
@group(0) @binding(0) var<uniform> ap: Params;
@group(0) @binding(1) var<storage, read> aI: array<f32>;
@group(0) @binding(2) var<storage, read> astats: array<f32>;
@group(0) @binding(3) var<storage, read> av: array<f32>;
@group(0) @binding(4) var<storage, read> awin: array<f32>;
@group(0) @binding(5) var<storage, read_write> aout: array<f32>;
@group(0) @binding(6) var<storage, read_write> apartial: array<f32>;

@compute @workgroup_size(256)
fn matting_apply(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let t = linear_id(wid, nwg, lid);
  if (t >= ap.T) { return; }
  let n = ap.n;
  var total = 0.0;
  for (var i = t; i < n; i += ap.T) {
    let y = i / ap.W;
    let x = i % ap.W;
    let Ii = vec3f(aI[i], aI[n + i], aI[2u * n + i]);
    var acc = vec3f(0.0);
    var count = 0.0;
    for (var dy = 0u; dy < 3u; dy++) {
      for (var dx = 0u; dx < 3u; dx++) {
        // Window centre k = (y + dy - 1, x + dx - 1); unsigned wrap-around for -1 fails interior().
        let ky = y + dy - 1u;
        let kx = x + dx - 1u;
        if (ky >= ap.H || kx >= ap.W || !interior(ky, kx, ap.H, ap.W)) { continue; }
        let k = ky * ap.W + kx;
        let d = Ii - vec3f(astats[9u * k], astats[9u * k + 1u], astats[9u * k + 2u]);
        let z = vec3f(astats[9u * k + 3u] * d.x, astats[9u * k + 4u] * d.x + astats[9u * k + 5u] * d.y,
          astats[9u * k + 6u] * d.x + astats[9u * k + 7u] * d.y + astats[9u * k + 8u] * d.z);
        let o = 12u * k;
        acc.x += awin[o] + dot(z, vec3f(awin[o + 1u], awin[o + 2u], awin[o + 3u]));
        acc.y += awin[o + 4u] + dot(z, vec3f(awin[o + 5u], awin[o + 6u], awin[o + 7u]));
        acc.z += awin[o + 8u] + dot(z, vec3f(awin[o + 9u], awin[o + 10u], awin[o + 11u]));
        count += 1.0;
      }
    }
    let v = vec3f(av[i], av[n + i], av[2u * n + i]);
    let Mv = count * v - acc;
    total += dot(v, Mv);
    for (var c = 0u; c < 3u; c++) {
      var prev = 0.0;
      if (ap.accumulate != 0u) { prev = aout[c * n + i]; }
      aout[c * n + i] = prev + ap.scale * Mv[c];
    }
  }
  apartial[t] = total;
}
