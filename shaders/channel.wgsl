// Per-channel statistics and maps on float32 features [C, M] (M = H*W of a [C,H,W] tensor, batch 1): the pieces of
// AdaIN, WCT and batch norm.

fn linear_id(wid: vec3u, nwg: vec3u, lid: u32, size: u32) -> u32 { return (wid.x + wid.y * nwg.x) * size + lid; }

// ---- moments, stage 1: workgroup (s, c) takes chunk s of channel c, elements [s*chunk, min((s+1)*chunk, M)), and
// writes its mean and sum of squared deviations from that mean, part[2(cS+s)] = mean_s, part[2(cS+s)+1] = M2_s
// (two passes over the chunk, which stays in cache: no cancellation from E[x²] - E[x]²). Invocation t sums elements
// t, t+64, ... of the chunk, then a fixed tree over the workgroup: deterministic, no atomics. (64 invocations, not
// 256: lavapipe runs barriers per invocation, and 256-wide workgroups made this 3-5x slower there.)
struct MomentParams { C: u32, M: u32, S: u32, chunk: u32 }
@group(0) @binding(0) var<uniform> mpp: MomentParams;
@group(0) @binding(1) var<storage, read> mpx: array<f32>;
@group(0) @binding(2) var<storage, read_write> mppart: array<f32>;

var<workgroup> red: array<f32, 64>;

// Sum of red[0..64) into red[0], fixed pairing; every invocation of the workgroup must call it.
fn tree_sum(lid: u32) {
  for (var w = 32u; w > 0u; w >>= 1u) {
    workgroupBarrier();
    if (lid < w) { red[lid] += red[lid + w]; }
  }
  workgroupBarrier();
}

@compute @workgroup_size(64)
fn moments_partial(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let s = wid.x;
  let c = wid.y;
  let start = s * mpp.chunk;
  let end = min(start + mpp.chunk, mpp.M);
  let base = c * mpp.M;
  var acc = 0.0;
  for (var e = start + lid; e < end; e += 64u) { acc += mpx[base + e]; }
  red[lid] = acc;
  tree_sum(lid);
  let mean = red[0] / f32(end - start);
  workgroupBarrier();     // everyone has read red[0] before it is overwritten
  var dev = 0.0;
  for (var e = start + lid; e < end; e += 64u) {
    let d = mpx[base + e] - mean;
    dev += d * d;
  }
  red[lid] = dev;
  tree_sum(lid);
  if (lid == 0u) {
    let o = 2u * (c * mpp.S + s);
    mppart[o] = mean;
    mppart[o + 1u] = red[0];
  }
}

// ---- moments, stage 2: one invocation per channel merges its S chunks in order (Chan et al.):
// mean = Σ n_s mean_s / M,  M2 = Σ M2_s + n_s (mean_s - mean)²;  out[c] = mean, out[C + c] = M2 / (M - 1)
// (unbiased, as torch.var; 0 when M = 1, where torch gives NaN).
@group(0) @binding(0) var<uniform> mfp: MomentParams;
@group(0) @binding(1) var<storage, read> mfpart: array<f32>;
@group(0) @binding(2) var<storage, read_write> mfout: array<f32>;

@compute @workgroup_size(64)
fn moments_finish(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= mfp.C) { return; }
  let p = 2u * c * mfp.S;
  var sum = 0.0;
  for (var s = 0u; s < mfp.S; s++) {
    let n = min(mfp.chunk, mfp.M - s * mfp.chunk);
    sum += f32(n) * mfpart[p + 2u * s];
  }
  let mean = sum / f32(mfp.M);
  var m2 = 0.0;
  for (var s = 0u; s < mfp.S; s++) {
    let n = min(mfp.chunk, mfp.M - s * mfp.chunk);
    let d = mfpart[p + 2u * s] - mean;
    m2 += mfpart[p + 2u * s + 1u] + f32(n) * d * d;
  }
  mfout[c] = mean;
  mfout[mfp.C + c] = select(0.0, m2 / f32(mfp.M - 1u), mfp.M > 1u);
}

// ---- affine: y[c, p] = a[c] x[c, p] + b[c], coef = [a_0..a_{C-1}, b_0..b_{C-1}]; with bias = 0 the b term is
// left out, which makes it the backward dx = a[c] dy. One invocation per element (n = C*M).
struct AffineParams { n: u32, M: u32, C: u32, bias: u32 }
@group(0) @binding(0) var<uniform> afp: AffineParams;
@group(0) @binding(1) var<storage, read> afcoef: array<f32>;
@group(0) @binding(2) var<storage, read> afx: array<f32>;
@group(0) @binding(3) var<storage, read_write> afy: array<f32>;

fn affine(e: u32, v: f32, p: AffineParams) -> f32 {
  let c = e / p.M;
  var r = afcoef[c] * v;
  if (p.bias != 0u) { r += afcoef[p.C + c]; }
  return r;
}

@compute @workgroup_size(256)
fn channel_affine(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let e = linear_id(wid, nwg, lid, 256u);
  if (e >= afp.n) { return; }
  afy[e] = affine(e, afx[e], afp);
}

// The same in place (y = x): a buffer cannot be bound both read-only and writable in one dispatch.
@group(0) @binding(0) var<uniform> aip: AffineParams;
@group(0) @binding(1) var<storage, read> aicoef: array<f32>;
@group(0) @binding(2) var<storage, read_write> aiy: array<f32>;

@compute @workgroup_size(256)
fn channel_affine_inplace(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let e = linear_id(wid, nwg, lid, 256u);
  if (e >= aip.n) { return; }
  let c = e / aip.M;
  var r = aicoef[c] * aiy[e];
  if (aip.bias != 0u) { r += aicoef[aip.C + c]; }
  aiy[e] = r;
}

// ---- channel mix: y[o, p] = Σ_i W(o, i) x[i, p] + bias[o] for o < R output channels, i < K input channels, with
// W(o, i) = T[o K + i] (T is [R, K], the forward) or, with trans = 1, W(o, i) = T[i R + o] (T is [K, R]: the
// backward dx = Tᵀ dy). Each invocation owns ROWS = 4 whole output rows at one position (scalar entry) or one vec4 of
// positions (vec4 entry, M % 4 == 0): each x load feeds 4 outputs. Invocations are numbered position-fastest, so
// neighbours read neighbouring x and the same T elements. bias is read only when has_bias = 1.
struct MixParams { R: u32, K: u32, P: u32, groups: u32, trans: u32, has_bias: u32 }

fn mix_w(o: u32, i: u32, p: MixParams) -> u32 {
  return select(o * p.K + i, i * p.R + o, p.trans != 0u);
}

@group(0) @binding(0) var<uniform> mvp: MixParams;
@group(0) @binding(1) var<storage, read> mvT: array<f32>;
@group(0) @binding(2) var<storage, read> mvbias: array<f32>;
@group(0) @binding(3) var<storage, read> mvx: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> mvy: array<vec4f>;

@compute @workgroup_size(64)
fn channel_mix_vec4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let id = linear_id(wid, nwg, lid, 64u);
  if (id >= mvp.groups * mvp.P) { return; }
  let q = id % mvp.P;               // vec4 of positions
  let o0 = 4u * (id / mvp.P);       // first of this invocation's output rows
  let last = mvp.R - 1u;            // rows past R are computed on a clamped row and not written
  let o1 = min(o0 + 1u, last);
  let o2 = min(o0 + 2u, last);
  let o3 = min(o0 + 3u, last);
  var a0 = vec4f(0.0);
  var a1 = vec4f(0.0);
  var a2 = vec4f(0.0);
  var a3 = vec4f(0.0);
  for (var i = 0u; i < mvp.K; i++) {
    let v = mvx[i * mvp.P + q];
    a0 += mvT[mix_w(o0, i, mvp)] * v;
    a1 += mvT[mix_w(o1, i, mvp)] * v;
    a2 += mvT[mix_w(o2, i, mvp)] * v;
    a3 += mvT[mix_w(o3, i, mvp)] * v;
  }
  if (mvp.has_bias != 0u) {
    a0 += mvbias[o0]; a1 += mvbias[o1]; a2 += mvbias[o2]; a3 += mvbias[o3];
  }
  mvy[o0 * mvp.P + q] = a0;
  if (o0 + 1u <= last) { mvy[o1 * mvp.P + q] = a1; }
  if (o0 + 2u <= last) { mvy[o2 * mvp.P + q] = a2; }
  if (o0 + 3u <= last) { mvy[o3 * mvp.P + q] = a3; }
}

@group(0) @binding(0) var<uniform> msp: MixParams;
@group(0) @binding(1) var<storage, read> msT: array<f32>;
@group(0) @binding(2) var<storage, read> msbias: array<f32>;
@group(0) @binding(3) var<storage, read> msx: array<f32>;
@group(0) @binding(4) var<storage, read_write> msy: array<f32>;

@compute @workgroup_size(64)
fn channel_mix(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let id = linear_id(wid, nwg, lid, 64u);
  if (id >= msp.groups * msp.P) { return; }
  let q = id % msp.P;
  let o0 = 4u * (id / msp.P);
  let last = msp.R - 1u;
  let o1 = min(o0 + 1u, last);
  let o2 = min(o0 + 2u, last);
  let o3 = min(o0 + 3u, last);
  var a = vec4f(0.0);
  for (var i = 0u; i < msp.K; i++) {
    let v = msx[i * msp.P + q];
    a += vec4f(msT[mix_w(o0, i, msp)], msT[mix_w(o1, i, msp)], msT[mix_w(o2, i, msp)], msT[mix_w(o3, i, msp)]) * v;
  }
  if (msp.has_bias != 0u) { a += vec4f(msbias[o0], msbias[o1], msbias[o2], msbias[o3]); }
  msy[o0 * msp.P + q] = a.x;
  if (o0 + 1u <= last) { msy[o1 * msp.P + q] = a.y; }
  if (o0 + 2u <= last) { msy[o2 * msp.P + q] = a.z; }
  if (o0 + 3u <= last) { msy[o3 * msp.P + q] = a.w; }
}

// ---- channel-slice copy (concatenation along channels, and its backward) ----
// dst[dstC0 + c, p] = (acc ? dst[dstC0 + c, p] : 0) + src[srcC0 + c, p] for c < channels, p < M. Channel slices of
// [C, M] features are contiguous, so this is the range copy dst[dst0 + e] (+)= src[src0 + e], e < n, with
// dst0 = dstC0 M, src0 = srcC0 M, n = channels M; in vec4s (all three divided by 4) when M % 4 == 0. One invocation
// per element (or vec4); src and dst are different buffers (the TypeScript side refuses one buffer for both).
struct CopyParams { n: u32, src0: u32, dst0: u32, acc: u32 }
@group(0) @binding(0) var<uniform> ccp: CopyParams;
@group(0) @binding(1) var<storage, read> cc_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> cc_dst: array<f32>;

@compute @workgroup_size(256)
fn channel_copy(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let e = linear_id(wid, nwg, lid, 256u);
  if (e >= ccp.n) { return; }
  var v = cc_src[ccp.src0 + e];
  if (ccp.acc != 0u) { v += cc_dst[ccp.dst0 + e]; }
  cc_dst[ccp.dst0 + e] = v;
}

@group(0) @binding(0) var<uniform> cvp: CopyParams;
@group(0) @binding(1) var<storage, read> cv_src: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> cv_dst: array<vec4f>;

@compute @workgroup_size(256)
fn channel_copy_vec4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let e = linear_id(wid, nwg, lid, 256u);
  if (e >= cvp.n) { return; }
  var v = cv_src[cvp.src0 + e];
  if (cvp.acc != 0u) { v += cv_dst[cvp.dst0 + e]; }
  cv_dst[cvp.dst0 + e] = v;
}
