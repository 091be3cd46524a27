// torch's strong-Wolfe line search (torch/optim/lbfgs.py _strong_wolfe / _cubic_interpolate, from torch7 lswolfe.lua)
// on the CPU over scalars; gradients stay on the GPU as opaque handles G. The objective maps a non-finite trial to
// f = +Infinity (it then fails sufficient decrease and is never returned).

export interface LsPoint<G> {
  f: number;
  /** Directional derivative g(x + t d) . d */
  gtd: number;
  g: G;
}

/** Minimiser of the cubic through (x1, f1, g1), (x2, f2, g2), clamped to bounds; bisection when undefined. */
export function cubicInterpolate(x1: number, f1: number, g1: number, x2: number, f2: number, g2: number, bounds?: [number, number]): number {
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

/**
 * obj(t, keep) evaluates at x + t d into a gradient handle other than those in `keep` (still referenced).
 * Returns the accepted point: f, its gradient handle, t and the number of evaluations.
 */
export async function strongWolfe<G>(
  obj: (t: number, keep: G[]) => Promise<LsPoint<G>>,
  t: number, f: number, g: G, gtd: number, dNorm: number, toleranceChange: number,
  c1 = 1e-4, c2 = 0.9, maxLs = 25,
): Promise<{ f: number; g: G; t: number; evals: number }> {
  let nw = await obj(t, [g]);
  let evals = 1;
  let tPrev = 0, fPrev = f, gPrev = g, gtdPrev = gtd;
  let done = false;
  let lsIter = 0;
  let br: number[] = [], bf: number[] = [], bg: G[] = [], bgtd: number[] = [];
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
    // extrapolate
    const minStep = t + 0.01 * (t - tPrev);
    const maxStep = t * 10;
    const tmp = t;
    t = cubicInterpolate(tPrev, fPrev, gtdPrev, t, nw.f, nw.gtd, [minStep, maxStep]);
    tPrev = tmp; fPrev = nw.f; gPrev = nw.g; gtdPrev = nw.gtd;
    nw = await obj(t, [g, gPrev]);
    evals++;
    lsIter++;
  }
  if (lsIter === maxLs) { br = [0, t]; bf = [f, nw.f]; bg = [g, nw.g]; }

  // zoom: shrink the bracket until a point satisfies the strong Wolfe conditions
  let insufProgress = false;
  let [low, high] = bf[0] <= bf[bf.length - 1] ? [0, 1] : [1, 0];
  while (!done && lsIter < maxLs) {
    if (Math.abs(br[1] - br[0]) * dNorm < toleranceChange) break;
    t = cubicInterpolate(br[0], bf[0], bgtd[0], br[1], bf[1], bgtd[1]);
    // too close to an end of the bracket twice in a row (or outside it): move 10 % of its length inside
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
    nw = await obj(t, [g, ...bg]);
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
