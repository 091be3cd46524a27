// Batched row-major matmul: C[b] = A[b] B[b], A [M,K], B [K,N], C [M,N], float32, batch index = wid.z.
// C[b][r][c] = Σ_k A[b][r][k] B[b][k][c]
// Requires K % 4 == 0 and N % 4 == 0 (vec4 loads; the host checks), any M.
// Blocking tuned for lavapipe (no shared memory, no barriers): a workgroup owns ROWS rows x 64 columns; each of its
// 16 threads owns ROWS x 4 outputs (ROWS vec4 accumulators). Every A load is the same for the whole workgroup
// (uniform vec4 of 4 k's), every B load is a vec4 of 4 adjacent columns.

const ROWS = 8u;

struct MatmulParams { m: u32, n: u32, k: u32, stride_a: u32, stride_b: u32, stride_c: u32 }
@group(0) @binding(0) var<uniform> mp: MatmulParams;
@group(0) @binding(1) var<storage, read> mm_a: array<vec4f>;
@group(0) @binding(2) var<storage, read> mm_b: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> mm_c: array<vec4f>;

@compute @workgroup_size(16)
fn matmul(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n4 = mp.n / 4u;
  let k4 = mp.k / 4u;
  let col = wid.x * 16u + lid;          // vec4 column
  if (col >= n4) { return; }
  let row0 = wid.y * ROWS;
  let a_base = wid.z * (mp.stride_a / 4u);
  let b_base = wid.z * (mp.stride_b / 4u) + col;
  var arow: array<u32, ROWS>;
  for (var r = 0u; r < ROWS; r++) { arow[r] = a_base + min(row0 + r, mp.m - 1u) * k4; }
  var acc: array<vec4f, ROWS>;
  for (var kk = 0u; kk < k4; kk++) {
    let bi = b_base + kk * 4u * n4;
    let b0 = mm_b[bi];
    let b1 = mm_b[bi + n4];
    let b2 = mm_b[bi + 2u * n4];
    let b3 = mm_b[bi + 3u * n4];
    for (var r = 0u; r < ROWS; r++) {
      let a = mm_a[arow[r] + kk];
      acc[r] += a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3;
    }
  }
  let c_base = wid.z * (mp.stride_c / 4u) + col;
  for (var r = 0u; r < ROWS; r++) {
    if (row0 + r < mp.m) { mm_c[c_base + (row0 + r) * n4] = acc[r]; }
  }
}
