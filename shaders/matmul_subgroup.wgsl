// ---- matmul_sg: batched row-major matmul with 8-lane subgroup broadcasts ------------------------------------------
// Not a module on its own: src/ops/matmul.ts compiles it appended to shaders/matmul.wgsl (its mp, mm_a, mm_b, mm_c and
// ROWS) behind `enable subgroups;` (the 'subgroups' feature with subgroups of at least 8 lanes, src/gpu/device.ts
// subgroups8). C[b] = A[b] B[b] as there, K % 4 == 0 and N % 4 == 0.
//
// The blocking of shaders/matmul.wgsl's `matmul` (a workgroup of 16 lanes owns 8 rows x 64 columns, each lane 8 rows
// x one vec4 column), but the 8 rows' vec4s of A per 4 k's are loaded once per subgroup instead of once per lane: lane
// s loads row s % 8 and subgroupBroadcast hands each row to the others. On lavapipe every storage load costs alike,
// whatever the lanes' addresses (bench/gemm-limits.ts), and loads bound this kernel: 4 B + 1 A loads per 32 vec4 FMAs
// instead of 4 + 8.
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
