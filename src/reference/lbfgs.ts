// Float64 CPU L-BFGS: a direct port of torch.optim.LBFGS (torch/optim/lbfgs.py) called with max_iter=1 per step(),
// state kept across calls, optionally with its strong-Wolfe line search. The GPU optimiser (src/optim/lbfgs.ts) is
// tested against it. Non-finite handling (not defined by torch, which propagates NaN) matches the GPU version:
// a non-finite loss at the iterate ends the step with done; a non-finite trial in the line search counts as +Infinity.

export interface Objective64 {
  (x: Float64Array): { f: number; g: Float64Array };
}

export interface Lbfgs64Options {
  lr?: number;
  history?: number;
  lineSearch?: 'none' | 'strong-wolfe';
  toleranceGrad?: number;
  toleranceChange?: number;
}

export interface Step64 {
  loss: number;
  done: boolean;
  reason?: string;
  evaluations: number;
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};
const amax = (a: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
};

/** torch's _cubic_interpolate (minimiser of the cubic through two points with derivatives, clamped to bounds). */
export function cubicInterpolate64(x1: number, f1: number, g1: number, x2: number, f2: number, g2: number, bounds?: [number, number]): number {
  const [lo, hi] = bounds ?? (x1 <= x2 ? [x1, x2] : [x2, x1]);
  const d1 = g1 + g2 - (3 * (f1 - f2)) / (x1 - x2);
  const d2sq = d1 * d1 - g1 * g2;
  if (d2sq >= 0) {
    const d2 = Math.sqrt(d2sq);
    const minPos = x1 <= x2 ? x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2)) : x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2));
    if (Number.isFinite(minPos)) return Math.min(Math.max(minPos, lo), hi);
  }
  return (lo + hi) / 2;
}

export class Lbfgs64 {
  readonly x: Float64Array;
  private readonly obj: Objective64;
  private readonly lr: number;
  private readonly m: number;
  private readonly ls: boolean;
  private readonly tolGrad: number;
  private readonly tolChange: number;
  private d: Float64Array = new Float64Array(0);
  private t = 0;
  private dirs: Float64Array[] = []; // y
  private stps: Float64Array[] = []; // s
  private ro: number[] = [];
  private H = 1;
  private prevG: Float64Array | undefined;
  private nIter = 0;
  private cached: { f: number; g: Float64Array } | undefined;

  constructor(obj: Objective64, x0: ArrayLike<number>, o: Lbfgs64Options = {}) {
    this.obj = obj;
    this.x = Float64Array.from(x0);
    this.lr = o.lr ?? 1;
    this.m = o.history ?? 100;
    this.ls = (o.lineSearch ?? 'none') === 'strong-wolfe';
    this.tolGrad = o.toleranceGrad ?? 1e-7;
    this.tolChange = o.toleranceChange ?? 1e-9;
  }

  reset(): void {
    this.dirs = []; this.stps = []; this.ro = []; this.H = 1; this.prevG = undefined; this.nIter = 0; this.cached = undefined;
  }

  step(): Step64 {
    let evaluations = 0;
    const cur = this.cached ?? (evaluations++, this.obj(this.x));
    this.cached = undefined;
    const loss = cur.f;
    const g = cur.g;
    if (!Number.isFinite(loss)) return { loss, done: true, reason: 'non-finite loss', evaluations };
    if (amax(g) <= this.tolGrad) return { loss, done: true, reason: 'gradient below toleranceGrad', evaluations };
    this.nIter++;
    const n = g.length;
    let d: Float64Array;
    if (this.nIter === 1) {
      d = g.map((v) => -v);
      this.dirs = []; this.stps = []; this.ro = []; this.H = 1;
    } else {
      const y = g.map((v, i) => v - this.prevG![i]);
      const s = this.d.map((v) => v * this.t);
      const ys = dot(y, s);
      if (ys > 1e-10) {
        if (this.dirs.length === this.m) { this.dirs.shift(); this.stps.shift(); this.ro.shift(); }
        this.dirs.push(y); this.stps.push(s); this.ro.push(1 / ys);
        this.H = ys / dot(y, y);
      }
      const k = this.dirs.length;
      const al = new Array<number>(k);
      const q = g.map((v) => -v);
      for (let i = k - 1; i >= 0; i--) {
        al[i] = dot(this.stps[i], q) * this.ro[i];
        for (let j = 0; j < n; j++) q[j] -= al[i] * this.dirs[i][j];
      }
      d = q.map((v) => v * this.H);
      for (let i = 0; i < k; i++) {
        const be = dot(this.dirs[i], d) * this.ro[i];
        for (let j = 0; j < n; j++) d[j] += (al[i] - be) * this.stps[i][j];
      }
    }
    this.d = d;
    this.prevG = Float64Array.from(g);
    let sumAbs = 0;
    for (const v of g) sumAbs += Math.abs(v);
    this.t = this.nIter === 1 ? Math.min(1, 1 / sumAbs) * this.lr : this.lr;
    const gtd = dot(g, d);
    if (gtd > -this.tolChange) return { loss, done: true, reason: 'directional derivative above -toleranceChange', evaluations };
    if (this.ls) {
      const r = this.strongWolfe(this.x, this.t, d, loss, g, gtd);
      this.t = r.t;
      evaluations += r.evals;
      for (let j = 0; j < n; j++) this.x[j] += r.t * d[j];
      this.cached = { f: r.f, g: r.g };
    } else {
      for (let j = 0; j < n; j++) this.x[j] += this.t * d[j];
    }
    return { loss, done: false, evaluations };
  }

  /** torch's _strong_wolfe (c1 1e-4, c2 0.9, max_ls 25). */
  private strongWolfe(x: Float64Array, t0: number, d: Float64Array, f: number, g: Float64Array, gtd: number) {
    const c1 = 1e-4, c2 = 0.9, maxLs = 25;
    const dNorm = amax(d);
    const obj = (t: number) => {
      const r = this.obj(x.map((v, i) => v + t * d[i]));
      const gd = dot(r.g, d);
      return Number.isFinite(r.f) && Number.isFinite(gd) ? { f: r.f, g: r.g, gtd: gd } : { f: Infinity, g: r.g, gtd: 0 };
    };
    let t = t0;
    let nw = obj(t);
    let evals = 1;
    let tPrev = 0, fPrev = f, gPrev = g, gtdPrev = gtd;
    let done = false;
    let lsIter = 0;
    let br: number[] = [], bf: number[] = [], bg: Float64Array[] = [], bgtd: number[] = [];
    while (lsIter < maxLs) {
      if (nw.f > f + c1 * t * gtd || (lsIter > 1 && nw.f >= fPrev)) {
        br = [tPrev, t]; bf = [fPrev, nw.f]; bg = [gPrev, nw.g]; bgtd = [gtdPrev, nw.gtd];
        break;
      }
      if (Math.abs(nw.gtd) <= -c2 * gtd) {
        br = [t]; bf = [nw.f]; bg = [nw.g]; done = true;
        break;
      }
      if (nw.gtd >= 0) {
        br = [tPrev, t]; bf = [fPrev, nw.f]; bg = [gPrev, nw.g]; bgtd = [gtdPrev, nw.gtd];
        break;
      }
      const minStep = t + 0.01 * (t - tPrev);
      const maxStep = t * 10;
      const tmp = t;
      t = cubicInterpolate64(tPrev, fPrev, gtdPrev, t, nw.f, nw.gtd, [minStep, maxStep]);
      tPrev = tmp; fPrev = nw.f; gPrev = nw.g; gtdPrev = nw.gtd;
      nw = obj(t);
      evals++;
      lsIter++;
    }
    if (lsIter === maxLs) { br = [0, t]; bf = [f, nw.f]; bg = [g, nw.g]; }
    let insufProgress = false;
    let [low, high] = bf[0] <= bf[bf.length - 1] ? [0, 1] : [1, 0];
    while (!done && lsIter < maxLs) {
      if (Math.abs(br[1] - br[0]) * dNorm < this.tolChange) break;
      t = cubicInterpolate64(br[0], bf[0], bgtd[0], br[1], bf[1], bgtd[1]);
      const bMax = Math.max(br[0], br[1]), bMin = Math.min(br[0], br[1]);
      const eps = 0.1 * (bMax - bMin);
      if (Math.min(bMax - t, t - bMin) < eps) {
        if (insufProgress || t >= bMax || t <= bMin) {
          t = Math.abs(t - bMax) < Math.abs(t - bMin) ? bMax - eps : bMin + eps;
          insufProgress = false;
        } else {
          insufProgress = true;
        }
      } else {
        insufProgress = false;
      }
      nw = obj(t);
      evals++;
      lsIter++;
      if (nw.f > f + c1 * t * gtd || nw.f >= bf[low]) {
        br[high] = t; bf[high] = nw.f; bg[high] = nw.g; bgtd[high] = nw.gtd;
        [low, high] = bf[0] <= bf[1] ? [0, 1] : [1, 0];
      } else {
        if (Math.abs(nw.gtd) <= -c2 * gtd) done = true;
        else if (nw.gtd * (br[high] - br[low]) >= 0) {
          br[high] = br[low]; bf[high] = bf[low]; bg[high] = bg[low]; bgtd[high] = bgtd[low];
        }
        br[low] = t; bf[low] = nw.f; bg[low] = nw.g; bgtd[low] = nw.gtd;
      }
    }
    return { f: bf[low], g: bg[low], t: br[low], evals };
  }
}
