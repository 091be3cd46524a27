// Float64 CPU references for the vector ops and the Adam / SGD updates (torch.optim semantics).

export function dot(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * y[i];
  return s;
}

export function asum(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += Math.abs(x[i]);
  return s;
}

export function amax(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
}

export interface AdamState64 {
  m: Float64Array;
  v: Float64Array;
  t: number;
}

/** torch.optim.Adam (no weight decay, no amsgrad): one update of x in place. */
export function adamStep(x: Float64Array, g: ArrayLike<number>, st: AdamState64, lr: number, beta1: number, beta2: number, eps: number): void {
  st.t += 1;
  const bc1 = 1 - beta1 ** st.t;
  const bc2sqrt = Math.sqrt(1 - beta2 ** st.t);
  const stepSize = lr / bc1;
  for (let i = 0; i < x.length; i++) {
    st.m[i] += (1 - beta1) * (g[i] - st.m[i]);
    st.v[i] = st.v[i] * beta2 + (1 - beta2) * g[i] * g[i];
    x[i] -= stepSize * st.m[i] / (Math.sqrt(st.v[i]) / bc2sqrt + eps);
  }
}

/** torch.optim.SGD (no weight decay): one update of x in place; buf is null before the first momentum step. */
export function sgdStep(
  x: Float64Array, g: ArrayLike<number>, buf: Float64Array | null, lr: number, momentum: number, dampening: number, nesterov: boolean,
): Float64Array | null {
  if (momentum === 0) {
    for (let i = 0; i < x.length; i++) x[i] -= lr * g[i];
    return null;
  }
  const b = buf ?? Float64Array.from(g);
  if (buf) for (let i = 0; i < x.length; i++) b[i] = momentum * b[i] + (1 - dampening) * g[i];
  for (let i = 0; i < x.length; i++) x[i] -= lr * (nesterov ? g[i] + momentum * b[i] : b[i]);
  return b;
}
