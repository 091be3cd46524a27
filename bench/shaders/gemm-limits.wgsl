enable subgroups;

// What bounds the Winograd GEMM on an adapter (bench/gemm-limits.ts): shaders/matmul.wgsl's `matmul` kernel (8 rows x
// one vec4 column per lane) taken apart. Same bindings, grid and loop trip counts in all three:
//   full:       the kernel as it is: per 4 k, 4 lane-varying vec4 loads of B, 8 uniform vec4 loads of A, 32 vec4 FMAs
//   full_inline: A's row offsets computed in the loop instead of kept in a per-lane array
//   full_2col: 8 rows x two vec4 columns per lane: 8 A + 8 B loads per 64 vec4 FMAs (against 8 + 4 per 32)
//   full_sg:   lane s of each 8-lane subgroup loads A's row s; subgroupBroadcast hands it to the others: 4 B + 1 A
//              loads per 32 vec4 FMAs
//   loads_only: the same loads, summed with 12 vec4 adds instead of the 32 FMAs
//   b_only:     only the 4 lane-varying loads of B (and 4 adds);  a_only: only the 8 uniform loads of A (and 8 adds)
//   a_only_varying: a_only with each lane reading another row (lane-varying addresses): is a same-address load cheaper?
//   fma_only:   the same 32 vec4 FMAs on values loaded once before the loop (4 vec4 multiplies per step keep them
//               changing, so nothing can be hoisted)
const ROWS = 8u;
struct P { m: u32, n: u32, k: u32, stride_a: u32, stride_b: u32, stride_c: u32 }
@group(0) @binding(0) var<uniform> mp: P;
@group(0) @binding(1) var<storage, read> mm_a: array<vec4f>;
@group(0) @binding(2) var<storage, read> mm_b: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> mm_c: array<vec4f>;

@compute @workgroup_size(16)
fn full(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n4 = mp.n / 4u; let k4 = mp.k / 4u;
  let col = wid.x * 16u + lid;
  if (col >= n4) { return; }
  let row0 = wid.y * ROWS;
  let a_base = wid.z * (mp.stride_a / 4u);
  let b_base = wid.z * (mp.stride_b / 4u) + col;
  var arow: array<u32, ROWS>;
  for (var r = 0u; r < ROWS; r++) { arow[r] = a_base + min(row0 + r, mp.m - 1u) * k4; }
  var acc: array<vec4f, ROWS>;
  for (var kk = 0u; kk < k4; kk++) {
    let bi = b_base + kk * 4u * n4;
    let b0 = mm_b[bi]; let b1 = mm_b[bi + n4]; let b2 = mm_b[bi + 2u * n4]; let b3 = mm_b[bi + 3u * n4];
    for (var r = 0u; r < ROWS; r++) {
      let a = mm_a[arow[r] + kk];
      acc[r] += a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3;
    }
  }
  let c_base = wid.z * (mp.stride_c / 4u) + col;
  for (var r = 0u; r < ROWS; r++) { if (row0 + r < mp.m) { mm_c[c_base + (row0 + r) * n4] = acc[r]; } }
}

@compute @workgroup_size(16)
fn full_inline(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n4 = mp.n / 4u; let k4 = mp.k / 4u;
  let col = wid.x * 16u + lid;
  if (col >= n4) { return; }
  let row0 = wid.y * ROWS;
  let a_base = wid.z * (mp.stride_a / 4u);
  let b_base = wid.z * (mp.stride_b / 4u) + col;
  var acc: array<vec4f, ROWS>;
  for (var kk = 0u; kk < k4; kk++) {
    let bi = b_base + kk * 4u * n4;
    let b0 = mm_b[bi]; let b1 = mm_b[bi + n4]; let b2 = mm_b[bi + 2u * n4]; let b3 = mm_b[bi + 3u * n4];
    for (var r = 0u; r < ROWS; r++) {
      let a = mm_a[a_base + min(row0 + r, mp.m - 1u) * k4 + kk];
      acc[r] += a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3;
    }
  }
  let c_base = wid.z * (mp.stride_c / 4u) + col;
  for (var r = 0u; r < ROWS; r++) { if (row0 + r < mp.m) { mm_c[c_base + (row0 + r) * n4] = acc[r]; } }
}

@compute @workgroup_size(16)
fn full_2col(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n4 = mp.n / 4u; let k4 = mp.k / 4u;
  let col = (wid.x * 16u + lid) * 2u;               // two adjacent vec4 columns per lane (grid x halved)
  if (col >= n4) { return; }
  let col1 = min(col + 1u, n4 - 1u);
  let row0 = wid.y * ROWS;
  let a_base = wid.z * (mp.stride_a / 4u);
  let b_base = wid.z * (mp.stride_b / 4u);
  var acc: array<vec4f, ROWS>;
  var acd: array<vec4f, ROWS>;
  for (var kk = 0u; kk < k4; kk++) {
    let bi = b_base + kk * 4u * n4;
    let b0 = mm_b[bi + col]; let b1 = mm_b[bi + n4 + col]; let b2 = mm_b[bi + 2u * n4 + col]; let b3 = mm_b[bi + 3u * n4 + col];
    let d0 = mm_b[bi + col1]; let d1 = mm_b[bi + n4 + col1]; let d2 = mm_b[bi + 2u * n4 + col1]; let d3 = mm_b[bi + 3u * n4 + col1];
    for (var r = 0u; r < ROWS; r++) {
      let a = mm_a[a_base + min(row0 + r, mp.m - 1u) * k4 + kk];
      acc[r] += a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3;
      acd[r] += a.x * d0 + a.y * d1 + a.z * d2 + a.w * d3;
    }
  }
  let c_base = wid.z * (mp.stride_c / 4u);
  for (var r = 0u; r < ROWS; r++) {
    if (row0 + r < mp.m) {
      mm_c[c_base + (row0 + r) * n4 + col] = acc[r];
      if (col + 1u < n4) { mm_c[c_base + (row0 + r) * n4 + col + 1u] = acd[r]; }
    }
  }
}

@compute @workgroup_size(16)
fn full_sg(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32,
           @builtin(subgroup_invocation_id) sid: u32) {
  let n4 = mp.n / 4u; let k4 = mp.k / 4u;
  let col = wid.x * 16u + lid;
  let colc = min(col, n4 - 1u);                    // no early return: broadcasts need the whole subgroup
  let row0 = wid.y * ROWS;
  let a_base = wid.z * (mp.stride_a / 4u);
  let b_base = wid.z * (mp.stride_b / 4u) + colc;
  let arow = a_base + min(row0 + (sid & 7u), mp.m - 1u) * k4;
  var acc: array<vec4f, ROWS>;
  for (var kk = 0u; kk < k4; kk++) {
    let bi = b_base + kk * 4u * n4;
    let b0 = mm_b[bi]; let b1 = mm_b[bi + n4]; let b2 = mm_b[bi + 2u * n4]; let b3 = mm_b[bi + 3u * n4];
    let mine = mm_a[arow + kk];
    var a = subgroupBroadcast(mine, 0u); acc[0] += a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3;
    a = subgroupBroadcast(mine, 1u); acc[1] += a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3;
    a = subgroupBroadcast(mine, 2u); acc[2] += a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3;
    a = subgroupBroadcast(mine, 3u); acc[3] += a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3;
    a = subgroupBroadcast(mine, 4u); acc[4] += a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3;
    a = subgroupBroadcast(mine, 5u); acc[5] += a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3;
    a = subgroupBroadcast(mine, 6u); acc[6] += a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3;
    a = subgroupBroadcast(mine, 7u); acc[7] += a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3;
  }
  if (col >= n4) { return; }
  let c_base = wid.z * (mp.stride_c / 4u) + col;
  for (var r = 0u; r < ROWS; r++) { if (row0 + r < mp.m) { mm_c[c_base + (row0 + r) * n4] = acc[r]; } }
}

@compute @workgroup_size(16)
fn loads_only(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n4 = mp.n / 4u; let k4 = mp.k / 4u;
  let col = wid.x * 16u + lid;
  if (col >= n4) { return; }
  let row0 = wid.y * ROWS;
  let a_base = wid.z * (mp.stride_a / 4u);
  let b_base = wid.z * (mp.stride_b / 4u) + col;
  var arow: array<u32, ROWS>;
  for (var r = 0u; r < ROWS; r++) { arow[r] = a_base + min(row0 + r, mp.m - 1u) * k4; }
  var acc = vec4f(0.0);
  for (var kk = 0u; kk < k4; kk++) {
    let bi = b_base + kk * 4u * n4;
    acc += mm_b[bi] + mm_b[bi + n4] + mm_b[bi + 2u * n4] + mm_b[bi + 3u * n4];
    for (var r = 0u; r < ROWS; r++) { acc += mm_a[arow[r] + kk]; }
  }
  let c_base = wid.z * (mp.stride_c / 4u) + col;
  for (var r = 0u; r < ROWS; r++) { if (row0 + r < mp.m) { mm_c[c_base + (row0 + r) * n4] = acc; } }
}

@compute @workgroup_size(16)
fn b_only(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n4 = mp.n / 4u; let k4 = mp.k / 4u;
  let col = wid.x * 16u + lid;
  if (col >= n4) { return; }
  let row0 = wid.y * ROWS;
  let a_base = wid.z * (mp.stride_a / 4u);
  let b_base = wid.z * (mp.stride_b / 4u) + col;
  var arow: array<u32, ROWS>;
  for (var r = 0u; r < ROWS; r++) { arow[r] = a_base + min(row0 + r, mp.m - 1u) * k4; }
  var acc = mm_a[a_base];   // A bound but not loaded in the loop
  for (var kk = 0u; kk < k4; kk++) {
    let bi = b_base + kk * 4u * n4;
    acc += mm_b[bi] + mm_b[bi + n4] + mm_b[bi + 2u * n4] + mm_b[bi + 3u * n4];
  }
  let c_base = wid.z * (mp.stride_c / 4u) + col;
  for (var r = 0u; r < ROWS; r++) { if (row0 + r < mp.m) { mm_c[c_base + (row0 + r) * n4] = acc; } }
}

@compute @workgroup_size(16)
fn a_only(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n4 = mp.n / 4u; let k4 = mp.k / 4u;
  let col = wid.x * 16u + lid;
  if (col >= n4) { return; }
  let row0 = wid.y * ROWS;
  let a_base = wid.z * (mp.stride_a / 4u);
  let b_base = wid.z * (mp.stride_b / 4u) + col;
  var arow: array<u32, ROWS>;
  for (var r = 0u; r < ROWS; r++) { arow[r] = a_base + min(row0 + r, mp.m - 1u) * k4; }
  var acc = mm_b[b_base];   // B bound but not loaded in the loop
  for (var kk = 0u; kk < k4; kk++) {
    let bi = b_base + kk * 4u * n4;
    acc += vec4f(f32(bi));
    for (var r = 0u; r < ROWS; r++) { acc += mm_a[arow[r] + kk]; }
  }
  let c_base = wid.z * (mp.stride_c / 4u) + col;
  for (var r = 0u; r < ROWS; r++) { if (row0 + r < mp.m) { mm_c[c_base + (row0 + r) * n4] = acc; } }
}

@compute @workgroup_size(16)
fn a_only_varying(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n4 = mp.n / 4u; let k4 = mp.k / 4u;
  let col = wid.x * 16u + lid;
  if (col >= n4) { return; }
  let row0 = wid.y * ROWS;
  let a_base = wid.z * (mp.stride_a / 4u);
  let b_base = wid.z * (mp.stride_b / 4u) + col;
  var arow: array<u32, ROWS>;
  for (var r = 0u; r < ROWS; r++) { arow[r] = a_base + min(row0 + r, mp.m - 1u) * k4; }
  var acc = mm_b[b_base];   // B bound but not loaded in the loop
  for (var kk = 0u; kk < k4; kk++) {
    let bi = b_base + kk * 4u * n4;
    acc += vec4f(f32(bi));
    for (var r = 0u; r < ROWS; r++) { acc += mm_a[arow[r] + kk + lid * k4]; }
  }
  let c_base = wid.z * (mp.stride_c / 4u) + col;
  for (var r = 0u; r < ROWS; r++) { if (row0 + r < mp.m) { mm_c[c_base + (row0 + r) * n4] = acc; } }
}

@compute @workgroup_size(16)
fn fma_only(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n4 = mp.n / 4u; let k4 = mp.k / 4u;
  let col = wid.x * 16u + lid;
  if (col >= n4) { return; }
  let row0 = wid.y * ROWS;
  let a_base = wid.z * (mp.stride_a / 4u);
  let b_base = wid.z * (mp.stride_b / 4u) + col;
  var av: array<vec4f, ROWS>;
  for (var r = 0u; r < ROWS; r++) { av[r] = mm_a[a_base + min(row0 + r, mp.m - 1u) * k4]; }
  var b0 = mm_b[b_base]; var b1 = mm_b[b_base + n4]; var b2 = mm_b[b_base + 2u * n4]; var b3 = mm_b[b_base + 3u * n4];
  var acc: array<vec4f, ROWS>;
  for (var kk = 0u; kk < k4; kk++) {
    b0 *= 0.999; b1 *= 1.001; b2 *= 0.999; b3 *= 1.001;
    for (var r = 0u; r < ROWS; r++) {
      let a = av[r];
      acc[r] += a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3;
    }
  }
  let c_base = wid.z * (mp.stride_c / 4u) + col;
  for (var r = 0u; r < ROWS; r++) { if (row0 + r < mp.m) { mm_c[c_base + (row0 + r) * n4] = acc[r]; } }
}
