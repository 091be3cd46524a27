// Vector ops over flat float32 vectors of n elements (any tensor viewed as 1-D; buffers are padded to 16 bytes, so
// they are read as vec4 and the lanes past n are masked in reductions; elementwise kernels also write the padding).
// Elementwise kernels: 64 invocations x one vec4 = 256 elements per workgroup, grid folded (see kernel.ts fold()).
//
// Coefficients: a = coef(mode, c, i, j) with sc = a small "scalars" buffer on the GPU, so that a chain of dependent
// reductions and axpys (the L-BFGS two-loop recursion) runs in one submit without reading anything back:
//   mode 0: c    1: c*sc[i]    2: c*sc[i]/sc[j]    3: c*(sc[i]-sc[j])    4: c*sc[i]*sc[j]
// Reductions are deterministic: fixed-order two-stage sums, no atomics.

const NONE: u32 = 0xffffffffu;
const WG: u32 = 64u;

fn lin(wid: vec3u, nwg: vec3u, lid: u32) -> u32 { return (wid.x + wid.y * nwg.x) * WG + lid; }
fn n4(n: u32) -> u32 { return (n + 3u) / 4u; }

struct VecParams { n: u32, mode: u32, i: u32, j: u32, c: f32, b: f32 }
@group(0) @binding(0) var<uniform> u: VecParams;
@group(0) @binding(1) var<storage, read> sc: array<f32>;
@group(0) @binding(2) var<storage, read_write> ay: array<vec4f>;
@group(0) @binding(2) var<storage, read> bx: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> by: array<vec4f>;
@group(0) @binding(3) var<storage, read> cy: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> cout: array<vec4f>;

fn coef() -> f32 {
  switch u.mode {
    case 0u: { return u.c; }
    case 1u: { return u.c * sc[u.i]; }
    case 2u: { return u.c * sc[u.i] / sc[u.j]; }
    case 3u: { return u.c * (sc[u.i] - sc[u.j]); }
    default: { return u.c * sc[u.i] * sc[u.j]; }
  }
}

// y = a
@compute @workgroup_size(64)
fn vec_fill(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = lin(wid, nwg, lid);
  if (i >= n4(u.n)) { return; }
  ay[i] = vec4f(coef());
}

// y = a * y
@compute @workgroup_size(64)
fn vec_scale_inplace(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = lin(wid, nwg, lid);
  if (i >= n4(u.n)) { return; }
  ay[i] = coef() * ay[i];
}

// y = a * x   (a = 1: copy, exact)
@compute @workgroup_size(64)
fn vec_scale(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = lin(wid, nwg, lid);
  if (i >= n4(u.n)) { return; }
  by[i] = coef() * bx[i];
}

// y += a * x. a == 0 leaves y untouched (also when x holds non-finite values): masked L-BFGS pairs cost no traffic.
@compute @workgroup_size(64)
fn vec_axpy(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = lin(wid, nwg, lid);
  let a = coef();
  if (i >= n4(u.n) || a == 0.0) { return; }
  by[i] = by[i] + a * bx[i];
}

// out = a * x + b * y   (b a plain constant)
@compute @workgroup_size(64)
fn vec_axpby(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = lin(wid, nwg, lid);
  if (i >= n4(u.n)) { return; }
  cout[i] = coef() * bx[i] + u.b * cy[i];
}

// ---- reductions: stage 1 -------------------------------------------------------------------------------------------
// kind 0: sum x*y   1: sum |x|   2: max |x|. Workgroup w covers vec4s [w*4096, (w+1)*4096); invocation l sums
// vec4s w*4096 + l + 64k in order and writes partial [w*64 + l]. No shared memory, no barriers.
const CHUNK: u32 = 64u; // vec4s per invocation

struct RedParams { n: u32, kind: u32 }
@group(0) @binding(0) var<uniform> ru: RedParams;
@group(0) @binding(1) var<storage, read> rx: array<vec4f>;
@group(0) @binding(2) var<storage, read> ry: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> rpart: array<f32>;

fn lanes_in(i: u32, n: u32) -> vec4<bool> {
  return vec4u(i * 4u) + vec4u(0u, 1u, 2u, 3u) < vec4u(n);
}

@compute @workgroup_size(64)
fn vec_reduce_partial(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let w = wid.x + wid.y * nwg.x;
  let m = n4(ru.n);
  let base = w * WG * CHUNK;
  if (base >= m) { return; }
  let full = (base + WG * CHUNK) * 4u <= ru.n; // workgroup-uniform: every lane of the chunk is < n
  var acc = vec4f(0.0);
  for (var k = 0u; k < CHUNK; k++) {
    let i = base + lid + k * WG;
    if (!full && i >= m) { break; }
    var v: vec4f;
    if (ru.kind == 0u) { v = rx[i] * ry[i]; } else { v = abs(rx[i]); }
    if (!full) { v = select(vec4f(0.0), v, lanes_in(i, ru.n)); }
    if (ru.kind == 2u) { acc = max(acc, v); } else { acc += v; }
  }
  var r: f32;
  if (ru.kind == 2u) { r = max(max(acc.x, acc.y), max(acc.z, acc.w)); } else { r = (acc.x + acc.y) + (acc.z + acc.w); }
  rpart[w * WG + lid] = r;
}

// ---- reductions: stage 2 (one workgroup) -----------------------------------------------------------------------------
// sc[dst] = c * r, times sc[mul] unless mul is NONE (exactly 0 when sc[mul] == 0, so a masked pair stays masked).
struct FinParams { count: u32, kind: u32, dst: u32, mul: u32, c: f32 }
@group(0) @binding(0) var<uniform> fu: FinParams;
@group(0) @binding(1) var<storage, read> fpart: array<f32>;
@group(0) @binding(2) var<storage, read_write> fsc: array<f32>;

var<workgroup> red: array<f32, 64>;

@compute @workgroup_size(64)
fn vec_reduce_finish(@builtin(local_invocation_index) lid: u32) {
  var acc = 0.0;
  for (var k = lid; k < fu.count; k += WG) {
    if (fu.kind == 2u) { acc = max(acc, fpart[k]); } else { acc += fpart[k]; }
  }
  red[lid] = acc;
  workgroupBarrier();
  if (lid != 0u) { return; }
  var r = 0.0;
  for (var k = 0u; k < WG; k++) {
    if (fu.kind == 2u) { r = max(r, red[k]); } else { r += red[k]; }
  }
  var out = fu.c * r;
  if (fu.mul != NONE) {
    let m = fsc[fu.mul];
    out = select(out * m, 0.0, m == 0.0);
  }
  fsc[fu.dst] = out;
}

// ---- scalar select (one invocation) -----------------------------------------------------------------------------------
// sc[dst] = (ld(ci) CMP c0) ? k1 * ld(a) / ld(b) : k2 * ld(e),  ld(NONE) = 1, CMP = [>, >=, <, <=][cmp].
// Enough to keep optimiser decisions (accept a pair, first step size, move or not) on the GPU.
struct SelParams { dst: u32, ci: u32, cmp: u32, a: u32, b: u32, e: u32, c0: f32, k1: f32, k2: f32 }
@group(0) @binding(0) var<uniform> su: SelParams;
@group(0) @binding(1) var<storage, read_write> ssc: array<f32>;

fn ld(i: u32) -> f32 { if (i == NONE) { return 1.0; } return ssc[i]; }

@compute @workgroup_size(1)
fn scalar_select() {
  let v = ld(su.ci);
  var cond: bool;
  switch su.cmp {
    case 0u: { cond = v > su.c0; }
    case 1u: { cond = v >= su.c0; }
    case 2u: { cond = v < su.c0; }
    default: { cond = v <= su.c0; }
  }
  var out: f32;
  if (cond) { out = su.k1 * ld(su.a) / ld(su.b); } else { out = su.k2 * ld(su.e); }
  ssc[su.dst] = out;
}

// ---- Adam (torch.optim.Adam, no weight decay, no amsgrad) ----------------------------------------------------------------
// m += (1-b1)(g - m);  v = b2 v + (1-b2) g^2;  x -= stepSize * m / (sqrt(v)/bc2sqrt + eps)
// with stepSize = lr / (1 - b1^t), bc2sqrt = sqrt(1 - b2^t) computed in float64 on the CPU.
struct AdamParams { n: u32, b2: f32, omb1: f32, omb2: f32, stepSize: f32, bc2sqrt: f32, eps: f32 }
@group(0) @binding(0) var<uniform> adu: AdamParams;
@group(0) @binding(1) var<storage, read> ag: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> am: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> av: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> ax: array<vec4f>;

@compute @workgroup_size(64)
fn adam_update(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = lin(wid, nwg, lid);
  if (i >= n4(adu.n)) { return; }
  let g = ag[i];
  let m = am[i] + adu.omb1 * (g - am[i]);
  let v = av[i] * adu.b2 + adu.omb2 * (g * g);
  am[i] = m;
  av[i] = v;
  ax[i] = ax[i] - adu.stepSize * (m / (sqrt(v) / adu.bc2sqrt + adu.eps));
}

// ---- SGD with momentum (torch.optim.SGD, no weight decay) ---------------------------------------------------------------
// buf = first ? g : mu buf + (1-dampening) g;  d = nesterov ? g + mu buf : buf;  x -= lr d
struct SgdParams { n: u32, first: u32, nesterov: u32, lr: f32, mu: f32, omd: f32 }
@group(0) @binding(0) var<uniform> sgu: SgdParams;
@group(0) @binding(1) var<storage, read> sg: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> sbuf: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> sx: array<vec4f>;

@compute @workgroup_size(64)
fn sgd_momentum_update(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = lin(wid, nwg, lid);
  if (i >= n4(sgu.n)) { return; }
  let g = sg[i];
  var b: vec4f;
  if (sgu.first != 0u) { b = g; } else { b = sgu.mu * sbuf[i] + sgu.omd * g; }
  sbuf[i] = b;
  var d = b;
  if (sgu.nesterov != 0u) { d = g + sgu.mu * b; }
  sx[i] = sx[i] + (-sgu.lr) * d;
}
