// Loss kernels on float32 [C,H,W] (batch 1). Each invocation t of T handles elements t, t+T, t+2T, ... : it
// ACCUMULATES weight * dLoss/dInput into grad (grad +=, since the tapped activation also gets gradient from above)
// and writes its share of the loss sum to partial[t]; reduce_final (reduce.wgsl) adds the partials in fixed order.

fn linear_id(wid: vec3u, nwg: vec3u, lid: u32) -> u32 { return (wid.x + wid.y * nwg.x) * 256u + lid; }

// ---- content: L = 1/2 Σ (F - P)², grad += weight (F - P)  (the 1/2 is reduce_final's factor) -------------------
struct ContentParams { n: u32, T: u32, weight: f32 }
@group(0) @binding(0) var<uniform> cp: ContentParams;
@group(0) @binding(1) var<storage, read> cF: array<f32>;
@group(0) @binding(2) var<storage, read> cP: array<f32>;
@group(0) @binding(3) var<storage, read_write> cgrad: array<f32>;
@group(0) @binding(4) var<storage, read_write> cpartial: array<f32>;

@compute @workgroup_size(256)
fn content_loss(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let t = linear_id(wid, nwg, lid);
  if (t >= cp.T) { return; }
  var s = 0.0;
  for (var e = t; e < cp.n; e += cp.T) {
    let d = cF[e] - cP[e];
    cgrad[e] += cp.weight * d;
    s += d * d;
  }
  cpartial[t] = s;
}

// ---- style, after G' = F Fᵀ / (N M) (gram.wgsl): the loss E = 1/(4 N² M²) Σ (G - A)² = 1/4 Σ (G' - A/(NM))²
// (the 1/4 is reduce_final's factor), and D = G' - (A + Aᵀ) / (2 N M), so that sym_matmul's
// grad += weight/(NM) · D F is weight · dE/dF = weight/(N² M²) (G - A) F (A symmetrised: exact for any A).
struct StyleParams { N: u32, T: u32, inv: f32 }
@group(0) @binding(0) var<uniform> stp: StyleParams;
@group(0) @binding(1) var<storage, read> sG: array<f32>;
@group(0) @binding(2) var<storage, read> sA: array<f32>;
@group(0) @binding(3) var<storage, read_write> sD: array<f32>;
@group(0) @binding(4) var<storage, read_write> spartial: array<f32>;

@compute @workgroup_size(256)
fn style_diff(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let t = linear_id(wid, nwg, lid);
  if (t >= stp.T) { return; }
  let nn = stp.N * stp.N;
  var s = 0.0;
  for (var e = t; e < nn; e += stp.T) {
    let i = e / stp.N;
    let j = e % stp.N;
    let d = sG[e] - sA[e] * stp.inv;
    s += d * d;
    sD[e] = sG[e] - 0.5 * (sA[e] + sA[j * stp.N + i]) * stp.inv;
  }
  spartial[t] = s;
}

// ---- total variation: L = Σ (x[c,i+1,j] - x[c,i,j])² + Σ (x[c,i,j+1] - x[c,i,j])²
// dL/dx[c,i,j] = 2 (2-4 neighbour differences): + (x - up) + (x - left) - (down - x) - (right - x), each if present.
// Each element owns the loss terms to its lower and right neighbours.
struct TvParams { n: u32, T: u32, H: u32, W: u32, weight: f32 }
@group(0) @binding(0) var<uniform> tp: TvParams;
@group(0) @binding(1) var<storage, read> tx: array<f32>;
@group(0) @binding(2) var<storage, read_write> tgrad: array<f32>;
@group(0) @binding(3) var<storage, read_write> tpartial: array<f32>;

@compute @workgroup_size(256)
fn tv_loss(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let t = linear_id(wid, nwg, lid);
  if (t >= tp.T) { return; }
  var s = 0.0;
  for (var e = t; e < tp.n; e += tp.T) {
    let j = e % tp.W;
    let i = (e / tp.W) % tp.H;
    let v = tx[e];
    var g = 0.0;
    if (i + 1u < tp.H) { let d = tx[e + tp.W] - v; s += d * d; g -= d; }
    if (j + 1u < tp.W) { let d = tx[e + 1u] - v; s += d * d; g -= d; }
    if (i > 0u) { g += v - tx[e - tp.W]; }
    if (j > 0u) { g += v - tx[e - 1u]; }
    tgrad[e] += tp.weight * 2.0 * g;
  }
  tpartial[t] = s;
}
