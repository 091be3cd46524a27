// Float64 CPU tensors for the references: plain arrays with a shape, NCHW with N = 1.
export interface T64 {
  data: Float64Array;
  shape: number[];
}

export function t64(shape: number[], data?: ArrayLike<number>): T64 {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float64Array(n);
  if (data) {
    if (data.length !== n) throw new Error(`t64: ${data.length} values for shape [${shape}]`);
    d.set(data);
  }
  return { data: d, shape: [...shape] };
}
