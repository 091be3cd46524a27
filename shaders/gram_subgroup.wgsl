// ---- gram_sg: gram_quad's partials with the 8 rows shared through subgroup broadcasts ------------------------------
// Not a module on its own: src/ops/gram.ts compiles it appended to shaders/gram.wgsl (its gp, F, part and load4) behind
// `enable subgroups;` (the 'subgroups' feature, subgroups of at least 8 lanes). Workgroup of 8 lanes, block b = ib *
// njb + jb as in gram_quad: rows i0..i0+7, columns j0..j0+31, lane l owns the 4 columns jb*32 + 4l .. +3. Per vec4
// step along m, lane s loads row i0 + s % 8 once and subgroupBroadcast hands it to the other lanes: 4 + 1 loads per 32
// dot products instead of 4 + 8 (on lavapipe every storage load costs alike, and the loads bound this kernel).
fn dot4(a: vec4f, f0: vec4f, f1: vec4f, f2: vec4f, f3: vec4f) -> vec4f {
  return vec4f(dot(a, f0), dot(a, f1), dot(a, f2), dot(a, f3));
}

@compute @workgroup_size(8)
fn gram_sg(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32,
           @builtin(subgroup_invocation_id) sid: u32) {
  let b = wid.x + wid.z * nwg.x;
  let ib = b / gp.njb;
  let jb = b % gp.njb;
  let i0 = ib * 8u;
  if (i0 >= gp.N) { return; }                  // uniform: the whole workgroup leaves
  if ((jb + 1u) * 32u <= i0) { return; }
  let j0 = (jb * 8u + lid) * 4u;
  let last = gp.N - 1u;
  let jc = min(vec4u(j0) + vec4u(0u, 1u, 2u, 3u), vec4u(last));
  let mine = min(i0 + (sid & 7u), last);
  let begin = wid.y * gp.chunk4;
  let end = min(begin + gp.chunk4, gp.M4);
  var acc: array<vec4f, 8>;
  for (var m4 = begin; m4 < end; m4++) {
    let f0 = load4(jc.x, m4);
    let f1 = load4(jc.y, m4);
    let f2 = load4(jc.z, m4);
    let f3 = load4(jc.w, m4);
    let a = load4(mine, m4);
    acc[0] += dot4(subgroupBroadcast(a, 0u), f0, f1, f2, f3);
    acc[1] += dot4(subgroupBroadcast(a, 1u), f0, f1, f2, f3);
    acc[2] += dot4(subgroupBroadcast(a, 2u), f0, f1, f2, f3);
    acc[3] += dot4(subgroupBroadcast(a, 3u), f0, f1, f2, f3);
    acc[4] += dot4(subgroupBroadcast(a, 4u), f0, f1, f2, f3);
    acc[5] += dot4(subgroupBroadcast(a, 5u), f0, f1, f2, f3);
    acc[6] += dot4(subgroupBroadcast(a, 6u), f0, f1, f2, f3);
    acc[7] += dot4(subgroupBroadcast(a, 7u), f0, f1, f2, f3);
  }
  let base = wid.y * gp.N * gp.N;
  for (var q = 0u; q < 8u; q++) {
    let i = i0 + q;
    if (i >= gp.N) { break; }
    for (var c = 0u; c < 4u; c++) {
      if (j0 + c < gp.N) { part[base + i * gp.N + j0 + c] = acc[q][c]; }
    }
  }
}
