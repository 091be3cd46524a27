// Batched row-major matmul: C[b] = A[b] B[b], A [M,K], B [K,N], C [M,N], float32, batch index = wid.z.
// C[b][r][c] = Σ_k A[b][r][k] B[b][k][c]
// Requires K % 4 == 0 and N % 4 == 0 (vec4 loads; the host checks), any M. Two kernels with the same bindings,
// picked per adapter and shape by the autotuner (src/gpu/tune.ts, variants in src/ops/matmul.ts):
//
// matmul: no shared memory, no barriers (what CPU rasterisers such as lavapipe want): a workgroup of WG threads owns
// ROWS rows x 4*WG columns; each thread owns ROWS x 4 outputs (ROWS vec4 accumulators). Every A load is the same
// for the whole workgroup (uniform vec4 of 4 k's), every B load is a vec4 of 4 adjacent columns.
//
// matmul_tiled: shared-memory tiling (what GPUs want): a 16x16 workgroup owns a 64x64 block of C, each thread a 4x4
// block (4 rows x one vec4 of columns); per step of 16 k's the workgroup stages A[64 rows][16 k] and B[16 k][64
// columns] in workgroup memory (each thread loads one vec4 of each), then every thread does 16 x 4 vec4 FMAs from it.

const ROWS = 8u;
override WG: u32 = 16u;   // matmul: threads (vec4 columns) per workgroup
override RM: u32 = 8u;    // matmul: rows per workgroup, <= ROWS (fewer for short A: Winograd GEMMs of small images)

struct MatmulParams { m: u32, n: u32, k: u32, stride_a: u32, stride_b: u32, stride_c: u32 }
@group(0) @binding(0) var<uniform> mp: MatmulParams;
@group(0) @binding(1) var<storage, read> mm_a: array<vec4f>;
@group(0) @binding(2) var<storage, read> mm_b: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> mm_c: array<vec4f>;

@compute @workgroup_size(WG)
fn matmul(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n4 = mp.n / 4u;
  let k4 = mp.k / 4u;
  let col = wid.x * WG + lid;          // vec4 column
  if (col >= n4) { return; }
  let row0 = wid.y * RM;
  let a_base = wid.z * (mp.stride_a / 4u);
  let b_base = wid.z * (mp.stride_b / 4u) + col;
  var arow: array<u32, ROWS>;
  for (var r = 0u; r < RM; r++) { arow[r] = a_base + min(row0 + r, mp.m - 1u) * k4; }
  var acc: array<vec4f, ROWS>;
  for (var kk = 0u; kk < k4; kk++) {
    let bi = b_base + kk * 4u * n4;
    let b0 = mm_b[bi];
    let b1 = mm_b[bi + n4];
    let b2 = mm_b[bi + 2u * n4];
    let b3 = mm_b[bi + 3u * n4];
    for (var r = 0u; r < RM; r++) {
      let a = mm_a[arow[r] + kk];
      acc[r] += a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3;
    }
  }
  let c_base = wid.z * (mp.stride_c / 4u) + col;
  for (var r = 0u; r < RM; r++) {
    if (row0 + r < mp.m) { mm_c[c_base + (row0 + r) * n4] = acc[r]; }
  }
}

const TK = 16u;                                     // k's per shared-memory step
var<workgroup> tile_a: array<array<f32, 64>, TK>;    // tile_a[k][row]: A[row0 + row][k0 + k]
var<workgroup> tile_b: array<array<vec4f, 16>, TK>;  // tile_b[k][c4]: B[k0 + k][col0 + 4 c4 .. +3]

@compute @workgroup_size(16, 16)
fn matmul_tiled(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u,
                @builtin(local_invocation_index) li: u32) {
  let n4 = mp.n / 4u;
  let k4 = mp.k / 4u;
  let row0 = wid.y * 64u;
  let c4_0 = wid.x * 16u;
  let a_base = wid.z * (mp.stride_a / 4u);
  let b_base = wid.z * (mp.stride_b / 4u);
  // This thread's share of the staging: A row li / 4, k quad li % 4; B k row li / 16, column quad li % 16.
  let ar = li / 4u;
  let aq = li % 4u;
  let a_row = a_base + min(row0 + ar, mp.m - 1u) * k4;
  let bk = li / 16u;
  let bc = c4_0 + li % 16u;
  var acc: array<vec4f, 4>;
  for (var k0 = 0u; k0 < mp.k; k0 += TK) {
    let q = k0 / 4u + aq;
    var av = vec4f(0.0);
    if (q < k4) { av = mm_a[a_row + q]; }
    tile_a[aq * 4u][ar] = av.x;
    tile_a[aq * 4u + 1u][ar] = av.y;
    tile_a[aq * 4u + 2u][ar] = av.z;
    tile_a[aq * 4u + 3u][ar] = av.w;
    var bv = vec4f(0.0);
    if (k0 + bk < mp.k && bc < n4) { bv = mm_b[b_base + (k0 + bk) * n4 + bc]; }
    tile_b[bk][li % 16u] = bv;
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      let b = tile_b[kk][lid.x];
      acc[0] += tile_a[kk][lid.y * 4u] * b;
      acc[1] += tile_a[kk][lid.y * 4u + 1u] * b;
      acc[2] += tile_a[kk][lid.y * 4u + 2u] * b;
      acc[3] += tile_a[kk][lid.y * 4u + 3u] * b;
    }
    workgroupBarrier();
  }
  let col = c4_0 + lid.x;
  if (col >= n4) { return; }
  let c_base = wid.z * (mp.stride_c / 4u) + col;
  for (var r = 0u; r < 4u; r++) {
    let row = row0 + lid.y * 4u + r;
    if (row < mp.m) { mm_c[c_base + row * n4] = acc[r]; }
  }
}

// ---- matmul_tn: C[b] = A[b]^T B[b] (ACCUMULATE: C[b] += A[b]^T B[b]); A [K,M], B [K,N], C [M,N], M and N multiples of
// 4. The Winograd weight gradient's GEMMs, whose long dimension K (tiles) is summed (and accumulated over chunks).
// A workgroup of WG threads owns ROWS rows x 4*WG columns; per k, the ROWS values of A's row k are two vec4 loads that
// are the same for the whole workgroup, and each thread loads one vec4 of B.
override ACCUMULATE: bool = false;

@compute @workgroup_size(WG)
fn matmul_tn(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n4 = mp.n / 4u;
  let m4 = mp.m / 4u;
  let col = wid.x * WG + lid;
  if (col >= n4) { return; }
  let q0 = wid.y * 2u;
  let q1 = min(q0 + 1u, m4 - 1u);      // past M (M % 8 == 4): computed, not stored
  let a_base = wid.z * (mp.stride_a / 4u);
  let b_base = wid.z * (mp.stride_b / 4u) + col;
  var acc: array<vec4f, ROWS>;
  for (var k = 0u; k < mp.k; k++) {
    let a0 = mm_a[a_base + k * m4 + q0];
    let a1 = mm_a[a_base + k * m4 + q1];
    let b = mm_b[b_base + k * n4];
    acc[0] += a0.x * b; acc[1] += a0.y * b; acc[2] += a0.z * b; acc[3] += a0.w * b;
    acc[4] += a1.x * b; acc[5] += a1.y * b; acc[6] += a1.z * b; acc[7] += a1.w * b;
  }
  let c_base = wid.z * (mp.stride_c / 4u) + col;
  for (var r = 0u; r < ROWS; r++) {
    let row = wid.y * ROWS + r;
    if (row < mp.m) {
      let ci = c_base + row * n4;
      if (ACCUMULATE) { mm_c[ci] = mm_c[ci] + acc[r]; } else { mm_c[ci] = acc[r]; }
    }
  }
}
