// Gram matrix of features F (float32 [C,H,W], batch 1) viewed as N = C rows by M = H*W columns, and the symmetric
// product that its backward and the style loss need. Reductions are split over fixed chunks and summed in a fixed
// order (no atomics), so results are bit-identical run to run.
//
// Lavapipe runs 8 invocations per SIMD pass and gathers divergent loads lane by lane, while a load whose address is
// the same for the whole workgroup is one scalar load. So each kernel keeps one operand workgroup-uniform (rows of F
// or entries of S picked by workgroup_id and the loop counter) and gives each lane a single divergent load per step,
// with 8 accumulators per lane (more spills on x86's 16 vector registers).
//
// Grids past 65,535 workgroups in a dimension are folded (kernel.ts fold()): gram_reduce and gram_symmetrize
// recover their element from linear_id; gram_partial folds its blocks into x and z, sym_matmul its m blocks into
// y and z. Workgroups past the count return (or compute clamped and do not store).

fn linear_id(wid: vec3u, nwg: vec3u, lid: u32) -> u32 { return (wid.x + wid.y * nwg.x) * 64u + lid; }

// ---- gram_partial: part[k][i][j] = Σ_{m in chunk k} F[i,m] F[j,m] --------------------------------------------------
// Workgroup (block b = ib * njb + jb folded into x and z, chunk k in y): rows i0..i0+7 (uniform), one column j per
// lane, vec4 steps along m over chunk k.
// Only blocks that hold some i <= j run (G is symmetric; gram_reduce reads the upper triangle).
// ALIGNED (M % 4 == 0): rows start on vec4 boundaries; otherwise load4 stitches two vec4s and masks past M.
override ALIGNED: bool = true;
override JW: u32 = 8u;    // columns (lanes) per workgroup

struct GramParams { N: u32, M: u32, M4: u32, chunk4: u32, njb: u32 }
@group(0) @binding(0) var<uniform> gp: GramParams;
@group(0) @binding(1) var<storage, read> F: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> part: array<f32>;

// F[row, 4*m4 .. 4*m4+3], zero past M.
fn load4(row: u32, m4: u32) -> vec4f {
  if (ALIGNED) { return F[row * gp.M4 + m4]; }
  let e = row * gp.M + 4u * m4;
  let last = arrayLength(&F) - 1u;
  let a = F[min(e >> 2u, last)];
  let b = F[min((e >> 2u) + 1u, last)];
  let s = e & 3u;
  var v = a;
  if (s == 1u) { v = vec4f(a.yzw, b.x); } else if (s == 2u) { v = vec4f(a.zw, b.xy); } else if (s == 3u) { v = vec4f(a.w, b.xyz); }
  return select(vec4f(0.0), v, vec4u(0u, 1u, 2u, 3u) < vec4u(gp.M - 4u * m4));
}

fn dots(f: vec4f, r0: u32, r1: u32, r2: u32, r3: u32, m4: u32) -> vec4f {
  return vec4f(dot(load4(r0, m4), f), dot(load4(r1, m4), f), dot(load4(r2, m4), f), dot(load4(r3, m4), f));
}

@compute @workgroup_size(JW)
fn gram_partial(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let b = wid.x + wid.z * nwg.x;
  let ib = b / gp.njb;
  let jb = b % gp.njb;
  let i0 = ib * 8u;
  if (i0 >= gp.N) { return; }              // past the blocks (a folded grid rounds up)
  if ((jb + 1u) * JW <= i0) { return; }   // every j of this block is below every i
  let j = jb * JW + lid;
  let last = gp.N - 1u;
  let jc = min(j, last);
  let r = min(vec4u(i0) + vec4u(0u, 1u, 2u, 3u), vec4u(last));
  let s = min(vec4u(i0) + vec4u(4u, 5u, 6u, 7u), vec4u(last));
  let begin = wid.y * gp.chunk4;
  let end = min(begin + gp.chunk4, gp.M4);
  var a0 = vec4f(0.0);
  var a1 = vec4f(0.0);
  for (var m4 = begin; m4 < end; m4++) {
    let f = load4(jc, m4);
    a0 += dots(f, r.x, r.y, r.z, r.w, m4);
    a1 += dots(f, s.x, s.y, s.z, s.w, m4);
  }
  if (j >= gp.N) { return; }
  let base = wid.y * gp.N * gp.N + j;
  for (var q = 0u; q < 8u; q++) {
    let i = i0 + q;
    if (i < gp.N) { part[base + i * gp.N] = select(a1, a0, q < 4u)[q & 3u]; }
  }
}

// ---- gram_quad: the same partials, 8 rows x 4 columns per lane --------------------------------------------------
// Workgroup (block b = ib * njb + jb as above): rows i0..i0+RQ-1 (uniform, RQ <= 8), columns j0..j0+4*JW-1, lane l owns the 4
// columns jb*4*JW + 4l .. +3. Each vec4 step along m: 4 divergent loads, 8 uniform loads, 32 dot products (the
// matmul's ratio of FMAs to loads; 32 accumulators). Blocks wholly below the diagonal return.
override RQ: u32 = 8u;   // gram_quad: rows per workgroup (at most 8)

@compute @workgroup_size(JW)
fn gram_quad(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let b = wid.x + wid.z * nwg.x;
  let ib = b / gp.njb;
  let jb = b % gp.njb;
  let i0 = ib * RQ;
  if (i0 >= gp.N) { return; }
  if ((jb + 1u) * 4u * JW <= i0) { return; }
  let j0 = (jb * JW + lid) * 4u;
  let last = gp.N - 1u;
  let jc = min(vec4u(j0) + vec4u(0u, 1u, 2u, 3u), vec4u(last));
  var rows: array<u32, 8>;
  for (var q = 0u; q < RQ; q++) { rows[q] = min(i0 + q, last); }
  let begin = wid.y * gp.chunk4;
  let end = min(begin + gp.chunk4, gp.M4);
  var acc: array<vec4f, 8>;
  for (var m4 = begin; m4 < end; m4++) {
    let f0 = load4(jc.x, m4);
    let f1 = load4(jc.y, m4);
    let f2 = load4(jc.z, m4);
    let f3 = load4(jc.w, m4);
    for (var q = 0u; q < RQ; q++) {
      let a = load4(rows[q], m4);
      acc[q] += vec4f(dot(a, f0), dot(a, f1), dot(a, f2), dot(a, f3));
    }
  }
  let base = wid.y * gp.N * gp.N;
  for (var q = 0u; q < RQ; q++) {
    let i = i0 + q;
    if (i >= gp.N) { break; }
    for (var c = 0u; c < 4u; c++) {
      if (j0 + c < gp.N) { part[base + i * gp.N + j0 + c] = acc[q][c]; }
    }
  }
}

// ---- gram_tiled: the same partials with shared-memory tiling (what GPUs want) ----------------------------------
// A 16x16 workgroup owns a 64x64 block of G (block b = ib * njb + jb, 64-row and 64-column blocks; blocks wholly
// below the diagonal return), each thread 4 rows x 4 columns. Per step of 16 m's the workgroup stages
// F[i0 .. i0+63][m .. m+15] and F[j0 .. j0+63][m .. m+15] in workgroup memory (one vec4 of each per thread), masked
// to the chunk, then every thread does 16 x 4 vec4 FMAs from it.
var<workgroup> gt_i: array<array<f32, 64>, 16>;   // gt_i[k][row]
var<workgroup> gt_j: array<array<f32, 64>, 16>;   // gt_j[k][column]

@compute @workgroup_size(16, 16)
fn gram_tiled(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let b = wid.x + wid.z * nwg.x;
  let ib = b / gp.njb;
  let jb = b % gp.njb;
  let i0 = ib * 64u;
  let j0 = jb * 64u;
  if (i0 >= gp.N || j0 + 64u <= i0) { return; }   // uniform: the whole workgroup leaves
  let last = gp.N - 1u;
  let sr = li / 4u;                                // staged row, and its vec4 of m's
  let sq = li % 4u;
  let ri = min(i0 + sr, last);
  let rj = min(j0 + sr, last);
  let begin = wid.y * gp.chunk4;
  let end = min(begin + gp.chunk4, gp.M4);
  var acc: array<vec4f, 4>;
  for (var m4 = begin; m4 < end; m4 += 4u) {
    let q = m4 + sq;
    var vi = vec4f(0.0);
    var vj = vec4f(0.0);
    if (q < end) { vi = load4(ri, q); vj = load4(rj, q); }
    for (var c = 0u; c < 4u; c++) { gt_i[sq * 4u + c][sr] = vi[c]; gt_j[sq * 4u + c][sr] = vj[c]; }
    workgroupBarrier();
    for (var k = 0u; k < 16u; k++) {
      let fj = vec4f(gt_j[k][lid.x * 4u], gt_j[k][lid.x * 4u + 1u], gt_j[k][lid.x * 4u + 2u], gt_j[k][lid.x * 4u + 3u]);
      for (var r = 0u; r < 4u; r++) { acc[r] += gt_i[k][lid.y * 4u + r] * fj; }
    }
    workgroupBarrier();
  }
  let base = wid.y * gp.N * gp.N;
  for (var r = 0u; r < 4u; r++) {
    let i = i0 + lid.y * 4u + r;
    if (i >= gp.N) { break; }
    for (var c = 0u; c < 4u; c++) {
      let j = j0 + lid.x * 4u + c;
      if (j < gp.N) { part[base + i * gp.N + j] = acc[r][c]; }
    }
  }
}

// ---- gram_reduce: G[i,j] = scale * Σ_k part[k][min(i,j)][max(i,j)], k ascending (exactly symmetric) -------------
struct ReduceParams { N: u32, K: u32, scale: f32 }
@group(0) @binding(0) var<uniform> rp: ReduceParams;
@group(0) @binding(1) var<storage, read> rpart: array<f32>;
@group(0) @binding(2) var<storage, read_write> G: array<f32>;

@compute @workgroup_size(64)
fn gram_reduce(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let e = linear_id(wid, nwg, lid);
  let nn = rp.N * rp.N;
  if (e >= nn) { return; }
  let i = e / rp.N;
  let j = e % rp.N;
  let at = min(i, j) * rp.N + max(i, j);
  var acc = 0.0;
  for (var k = 0u; k < rp.K; k++) { acc += rpart[k * nn + at]; }
  G[e] = rp.scale * acc;
}

// ---- gram_symmetrize: S = X + Xᵀ (the gradient dG of a loss of G = F Fᵀ flows back as (dG + dGᵀ) F) ---------------
struct SymParams { N: u32 }
@group(0) @binding(0) var<uniform> sp: SymParams;
@group(0) @binding(1) var<storage, read> sx: array<f32>;
@group(0) @binding(2) var<storage, read_write> ss: array<f32>;

@compute @workgroup_size(64)
fn gram_symmetrize(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let e = linear_id(wid, nwg, lid);
  if (e >= sp.N * sp.N) { return; }
  let i = e / sp.N;
  let j = e % sp.N;
  ss[e] = sx[e] + sx[j * sp.N + i];
}

// ---- sym_matmul: Y = alpha * S X (+ Y if accumulate), S [N,N] symmetric, X and Y [N,M] ------------------------
// Workgroup (row block in x, m block folded into y and z): one column m per lane, rows i0..i0+7 uniform; S is symmetric, so the 8 entries
// S[i0..i0+7, j] are read as S[j, i0..i0+7] (uniform). Each step: 1 divergent load, 8 uniform loads, 8 FMAs.
struct MatParams { N: u32, M: u32, alpha: f32, accumulate: u32 }
@group(0) @binding(0) var<uniform> mm: MatParams;
@group(0) @binding(1) var<storage, read> S: array<f32>;
@group(0) @binding(2) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;

@compute @workgroup_size(64)
fn sym_matmul(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let m = (wid.y + wid.z * nwg.y) * 64u + lid;
  let i0 = wid.x * 8u;   // row blocks vary fastest, so consecutive workgroups reuse the same columns of X from cache
  let last = mm.N - 1u;
  let mc = min(m, mm.M - 1u);
  let r = min(vec4u(i0) + vec4u(0u, 1u, 2u, 3u), vec4u(last));
  let s = min(vec4u(i0) + vec4u(4u, 5u, 6u, 7u), vec4u(last));
  var a0 = vec4f(0.0);
  var a1 = vec4f(0.0);
  for (var j = 0u; j < mm.N; j++) {
    let x = X[j * mm.M + mc];
    let row = j * mm.N;
    a0 += vec4f(S[row + r.x], S[row + r.y], S[row + r.z], S[row + r.w]) * x;
    a1 += vec4f(S[row + s.x], S[row + s.y], S[row + s.z], S[row + s.w]) * x;
  }
  if (m >= mm.M) { return; }
  for (var q = 0u; q < 8u; q++) {
    let i = i0 + q;
    if (i < mm.N) {
      let at = i * mm.M + m;
      var v = mm.alpha * select(a1, a0, q < 4u)[q & 3u];
      if (mm.accumulate != 0u) { v += Y[at]; }
      Y[at] = v;
    }
  }
}
