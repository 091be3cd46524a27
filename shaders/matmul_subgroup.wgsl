// Batched row-major matmul with 8-lane subgroup broadcasts: C[b] = A[b] B[b], A [M,K], B [K,N], C [M,N], batch index
// = wid.z; K % 4 == 0 and N % 4 == 0 (vec4 loads). Needs the 'subgroups' feature with subgroups of at least 8 lanes
// (src/gpu/device.ts subgroups8); a module of its own because `enable subgroups` fails to compile elsewhere.
//
// C[b][r][c] = Σ_k A[b][r][k] B[b][k][c]
//
// The blocking of shaders/matmul.wgsl's `matmul` (a workgroup of 16 lanes owns 8 rows x 64 columns, each lane 8 rows
// x one vec4 column), but the 8 rows' vec4s of A per 4 k's are loaded once per subgroup instead of once per lane: lane
// s loads row s % 8 and subgroupBroadcast hands each row to the others. On lavapipe every storage load costs alike,
// whatever the lanes' addresses (bench/gemm-limits.ts), and loads bound this kernel: 4 B + 1 A loads per 32 vec4 FMAs
// instead of 4 + 8.
enable subgroups;

const ROWS = 8u;

struct MatmulParams { m: u32, n: u32, k: u32, stride_a: u32, stride_b: u32, stride_c: u32 }
@group(0) @binding(0) var<uniform> mp: MatmulParams;
@group(0) @binding(1) var<storage, read> mm_a: array<vec4f>;
@group(0) @binding(2) var<storage, read> mm_b: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> mm_c: array<vec4f>;

fn fma4(acc: vec4f, a: vec4f, b0: vec4f, b1: vec4f, b2: vec4f, b3: vec4f) -> vec4f {
  return acc + a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3;
}

@compute @workgroup_size(16)
fn matmul_sg(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32,
             @builtin(subgroup_invocation_id) sid: u32) {
  let n4 = mp.n / 4u;
  let k4 = mp.k / 4u;
  let col = wid.x * 16u + lid;                     // vec4 column
  let b_base = wid.z * (mp.stride_b / 4u) + min(col, n4 - 1u);   // no early return: broadcasts need every lane
  let row0 = wid.y * ROWS;
  let a_row = wid.z * (mp.stride_a / 4u) + min(row0 + (sid & 7u), mp.m - 1u) * k4;   // this lane's row of A
  var acc: array<vec4f, ROWS>;
  for (var kk = 0u; kk < k4; kk++) {
    let bi = b_base + kk * 4u * n4;
    let b0 = mm_b[bi];
    let b1 = mm_b[bi + n4];
    let b2 = mm_b[bi + 2u * n4];
    let b3 = mm_b[bi + 3u * n4];
    let mine = mm_a[a_row + kk];
    acc[0] = fma4(acc[0], subgroupBroadcast(mine, 0u), b0, b1, b2, b3);
    acc[1] = fma4(acc[1], subgroupBroadcast(mine, 1u), b0, b1, b2, b3);
    acc[2] = fma4(acc[2], subgroupBroadcast(mine, 2u), b0, b1, b2, b3);
    acc[3] = fma4(acc[3], subgroupBroadcast(mine, 3u), b0, b1, b2, b3);
    acc[4] = fma4(acc[4], subgroupBroadcast(mine, 4u), b0, b1, b2, b3);
    acc[5] = fma4(acc[5], subgroupBroadcast(mine, 5u), b0, b1, b2, b3);
    acc[6] = fma4(acc[6], subgroupBroadcast(mine, 6u), b0, b1, b2, b3);
    acc[7] = fma4(acc[7], subgroupBroadcast(mine, 7u), b0, b1, b2, b3);
  }
  if (col >= n4) { return; }
  let c_base = wid.z * (mp.stride_c / 4u) + col;
  for (var r = 0u; r < ROWS; r++) {
    if (row0 + r < mp.m) { mm_c[c_base + (row0 + r) * n4] = acc[r]; }
  }
}
