// Final step of the losses' deterministic two-level sums: scalars[slot] = factor * Σ_t partial[t], t ascending,
// in one invocation (at most a few thousand partials; a fixed serial order is what makes the value bit-identical).

struct FinalParams { T: u32, slot: u32, factor: f32 }
@group(0) @binding(0) var<uniform> fp: FinalParams;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> scalars: array<f32>;

@compute @workgroup_size(1)
fn reduce_final() {
  // Four interleaved accumulators: a shorter dependency chain, same fixed order every run.
  var acc = vec4f(0.0);
  let t4 = fp.T / 4u;
  for (var t = 0u; t < t4; t++) {
    acc += vec4f(partial[4u * t], partial[4u * t + 1u], partial[4u * t + 2u], partial[4u * t + 3u]);
  }
  var tail = 0.0;
  for (var t = 4u * t4; t < fp.T; t++) { tail += partial[t]; }
  scalars[fp.slot] = fp.factor * (((acc.x + acc.y) + (acc.z + acc.w)) + tail);
}
