// L-BFGS on the GPU with torch.optim.LBFGS semantics, called with max_iter=1 per step() (state kept across calls):
// history of m pairs (s, y) skipped when y.s <= 1e-10, H_diag = s.y / y.y, first step t = min(1, 1/|g|_1) lr,
// two-loop recursion, stop on max|g| <= toleranceGrad or g.d > -toleranceChange, optional strong-Wolfe line search.
//
// Control flow is on the CPU; vectors, dots and axpys on the GPU. After the objective's evaluation one submit does
// everything (candidate pair, accept test, two-loop recursion over ring + candidate, g.d, the masked move) with the
// decisions themselves made on the GPU by scalar selects, then ONE readback of 16 scalars tells the CPU what happened
// so it can update its bookkeeping. To make that possible the candidate pair lives in a spare slot (m + 1 slots in
// all) and the would-be-evicted oldest pair is masked through its ro; t and H_diag are double-buffered so a step
// that ends early (converged, non-finite) leaves the state as it was.
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { encodeSteps, setUniforms, type Step } from '../gpu/kernel.ts';
import { createTensor, destroyTensors, type Tensor } from '../gpu/tensor.ts';
import {
  createReduceWork, createScalars, scalarSelect, vecAmax, vecAsum, vecAxpby, vecAxpy, vecCopy, vecDot, vecScale,
  vecScaleInPlace, writeScalars, type Scalars,
} from '../ops/vector.ts';
import { strongWolfe, type LsPoint } from './line-search.ts';
import { checkObjective, guardStep, numOpt, type Objective, type Optimizer, type StepResult } from './types.ts';

export interface LbfgsOptions {
  lr?: number;
  history?: number;
  lineSearch?: 'none' | 'strong-wolfe';
  toleranceGrad?: number;
  toleranceChange?: number;
  /** Budget for the (s, y) pairs, the candidate pair included: (m + 1) 2 n 4 bytes. Default 1 GiB. */
  maxHistoryBytes?: number;
  onMessage?: (m: string) => void;
}

// Scalars buffer layout. The first READ slots come back to the CPU once per step.
const MAXABS = 0, SUMABS = 1, YS = 2, YY = 3, GTD = 4, ACC = 5, ROTMP = 6, BE = 7, M1 = 8, MOVE = 9, DNORM = 10,
  GTDNEW = 11, T = 12 /* T, T+1 */, H = 14 /* H, H+1 */, READ = 16;

/**
 * Behaviour beyond torch's: a non-finite loss (or gradient) ends the step with done and changes nothing (call
 * reset() and/or move x before going on); the strong-Wolfe search treats a non-finite trial as +Infinity. With the
 * line search, the accepted point's loss and gradient are reused by the next step instead of evaluated again.
 */
export function createLbfgs(gpu: Gpu, objective: Objective, x: Tensor, opts: LbfgsOptions = {}): Optimizer {
  return new Lbfgs(gpu, objective, x, opts);
}

class Lbfgs implements Optimizer {
  readonly x: Tensor;
  private readonly gpu: Gpu;
  private readonly objective: Objective;
  private readonly n: number;
  private readonly lr: number;
  private readonly m: number;
  private readonly ls: boolean;
  private readonly tolGrad: number;
  private readonly tolChange: number;
  private readonly sc: Scalars;
  private readonly work: Tensor;
  private readonly staging: GPUBuffer;
  private readonly ro: number; // first RO slot; AL follows
  private readonly al: number;
  private g: Tensor;
  private prevG: Tensor;
  private d: Tensor;
  private dn: Tensor;
  private readonly ys: (Tensor | undefined)[];
  private readonly ss: (Tensor | undefined)[];
  private ring: number[] = []; // physical slots, oldest first
  private spare = 0;
  private parity = 0; // T + parity, H + parity hold the current t and H_diag
  private nIter = 0;
  private cachedLoss: number | undefined; // line search: f at x, gradient already in this.g
  private xT: Tensor | undefined;
  private pool: Tensor[] = [];
  private readonly steps = new Map<string, Step | Step[]>();
  private readonly state = { busy: false };
  private destroyed = false;

  constructor(gpu: Gpu, objective: Objective, x: Tensor, o: LbfgsOptions) {
    const what = 'L-BFGS';
    checkObjective(what, objective, x);
    this.gpu = gpu;
    this.objective = objective;
    this.x = x;
    this.n = x.size;
    this.lr = numOpt(what, 'lr', o.lr, 1, (v) => v > 0, '> 0');
    const history = numOpt(what, 'history', o.history, 100, (v) => Number.isInteger(v) && v >= 1, 'an integer >= 1');
    this.tolGrad = numOpt(what, 'toleranceGrad', o.toleranceGrad, 1e-7, (v) => v >= 0, '>= 0');
    this.tolChange = numOpt(what, 'toleranceChange', o.toleranceChange, 1e-9, (v) => v >= 0, '>= 0');
    const budget = numOpt(what, 'maxHistoryBytes', o.maxHistoryBytes, 2 ** 30, (v) => v > 0, '> 0');
    const ls = o.lineSearch ?? 'none';
    if (ls !== 'none' && ls !== 'strong-wolfe') throw new PainterlyError(`${what}: lineSearch must be 'none' or 'strong-wolfe', got '${ls}'`);
    this.ls = ls === 'strong-wolfe';
    const pairBytes = 2 * this.n * 4;
    const fit = Math.floor(budget / pairBytes) - 1; // one pair is the candidate
    this.m = Math.max(1, Math.min(history, fit));
    if (this.m < history) {
      o.onMessage?.(`L-BFGS history capped at m=${this.m} (memory budget ${fmtBytes(budget)}, ${fmtBytes(pairBytes)} per pair)`);
    }
    this.ro = READ;
    this.al = READ + this.m + 1;
    this.sc = createScalars(gpu, READ + 2 * (this.m + 1), 'lbfgs.scalars');
    writeScalars(gpu, this.sc, [this.lr, this.lr, 1, 1], T);
    this.work = createReduceWork(gpu, this.n, 'lbfgs.work');
    this.staging = gpu.device.createBuffer({ label: 'lbfgs.read', size: READ * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const vec = (label: string) => createTensor(gpu, [this.n], label);
    this.g = vec('lbfgs.g0');
    this.prevG = vec('lbfgs.g1');
    this.d = vec('lbfgs.d0');
    this.dn = vec('lbfgs.d1');
    this.ys = new Array(this.m + 1).fill(undefined);
    this.ss = new Array(this.m + 1).fill(undefined);
  }

  step(): Promise<StepResult> {
    if (this.destroyed) return Promise.reject(new PainterlyError('L-BFGS: step() after destroy()'));
    return guardStep('L-BFGS', this.state, () => this.iterate());
  }

  reset(): void {
    this.ring = [];
    this.spare = 0;
    this.nIter = 0;
    this.cachedLoss = undefined;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    destroyTensors(this.g, this.prevG, this.d, this.dn, this.work, this.xT, ...this.pool, ...this.ys, ...this.ss);
    this.sc.buffer.destroy();
    this.staging.destroy();
    for (const s of this.steps.values()) for (const st of Array.isArray(s) ? s : [s]) st.uniformBuffer?.destroy();
  }

  /** Steps are bound once and re-encoded (bind groups and uniform buffers are the CPU cost worth saving). */
  private cached<S extends Step | Step[]>(key: string, make: () => S): S {
    let s = this.steps.get(key) as S | undefined;
    if (!s) { s = make(); this.steps.set(key, s); }
    return s;
  }

  private slot(i: number): [Tensor, Tensor] {
    this.ys[i] ??= createTensor(this.gpu, [this.n], `lbfgs.y${i}`);
    this.ss[i] ??= createTensor(this.gpu, [this.n], `lbfgs.s${i}`);
    return [this.ys[i]!, this.ss[i]!];
  }

  /** One submit: steps, then a copy of the first READ scalars; one map. */
  private async submitAndRead(steps: Step[], label: string): Promise<Float32Array> {
    const enc = this.gpu.device.createCommandEncoder({ label });
    const pass = enc.beginComputePass({ label });
    encodeSteps(pass, steps);
    pass.end();
    enc.copyBufferToBuffer(this.sc.buffer, 0, this.staging, 0, READ * 4);
    this.gpu.device.queue.submit([enc.finish()]);
    await this.staging.mapAsync(GPUMapMode.READ);
    this.gpu.checkAlive();
    const r = new Float32Array(this.staging.getMappedRange().slice(0));
    this.staging.unmap();
    return r;
  }

  private submit(steps: Step[], label: string): void {
    const enc = this.gpu.device.createCommandEncoder({ label });
    const pass = enc.beginComputePass({ label });
    encodeSteps(pass, steps);
    pass.end();
    this.gpu.device.queue.submit([enc.finish()]);
  }

  /** Everything after the evaluation, up to and including the (masked) move when there is no line search. */
  private directionSteps(): Step[] {
    const { gpu, sc: s, g, prevG, d, dn, work } = this;
    const first = this.nIter === 0;
    const To = T + this.parity, Tn = T + 1 - this.parity, Ho = H + this.parity, Hn = H + 1 - this.parity;
    const c = <S extends Step | Step[]>(key: string, make: () => S) => this.cached(key, make);
    const out: Step[] = [...c(`amax ${g.label}`, () => vecAmax(gpu, g, { s, i: MAXABS }, work))];
    if (first) {
      out.push(
        ...c(`asum ${g.label}`, () => vecAsum(gpu, g, { s, i: SUMABS }, work)),
        c(`neg ${g.label} ${dn.label}`, () => vecScale(gpu, g, dn, -1)),
        // t = min(1, 1/|g|_1) lr; H_diag = 1
        c(`t1 ${Tn}`, () => scalarSelect(gpu, s, Tn, { test: SUMABS, cmp: '>', c0: 1, k1: this.lr, b: SUMABS, k2: this.lr })),
        c(`h1 ${Hn}`, () => scalarSelect(gpu, s, Hn, { test: undefined, cmp: '>', c0: 0, k1: 1, k2: 1 })),
      );
    } else {
      const sp = this.spare;
      const [y, sv] = this.slot(sp);
      const full = this.ring.length === this.m;
      const oldest = this.ring[0];
      const ro = (i: number) => (full && i === oldest ? ROTMP : this.ro + i);
      out.push(
        // candidate pair y = g - g_prev, s = t d; accepted when y.s > 1e-10
        c(`y ${sp} ${g.label} ${prevG.label}`, () => vecAxpby(gpu, 1, g, -1, prevG, y)),
        c(`s ${sp} ${d.label} ${To}`, () => vecScale(gpu, d, sv, { s, i: To })),
        ...c(`ys ${sp}`, () => vecDot(gpu, y, sv, { s, i: YS }, work)),
        ...c(`yy ${sp}`, () => vecDot(gpu, y, y, { s, i: YY }, work)),
        c('acc', () => scalarSelect(gpu, s, ACC, { test: YS, cmp: '>', c0: 1e-10, k1: 1, k2: 0 })),
        c(`ro ${sp}`, () => scalarSelect(gpu, s, this.ro + sp, { test: YS, cmp: '>', c0: 1e-10, k1: 1, b: YS, k2: 0 })),
        c(`h ${Hn}`, () => scalarSelect(gpu, s, Hn, { test: YS, cmp: '>', c0: 1e-10, k1: 1, a: YS, b: YY, k2: 1, e: Ho })),
      );
      // the oldest pair drops out exactly when the candidate is accepted into a full history
      if (full) out.push(c(`rotmp ${oldest}`, () => scalarSelect(gpu, s, ROTMP, { test: YS, cmp: '>', c0: 1e-10, k1: 0, k2: 1, e: this.ro + oldest })));
      const pairs = [...this.ring, sp];
      out.push(c(`neg ${g.label} ${dn.label}`, () => vecScale(gpu, g, dn, -1)));
      for (let k = pairs.length - 1; k >= 0; k--) {
        const i = pairs[k];
        const [yi, si] = this.slot(i);
        const r = ro(i);
        out.push(
          ...c(`al ${i} ${r} ${dn.label}`, () => vecDot(gpu, si, dn, { s, i: this.al + i, mul: r }, work)),
          c(`q ${i} ${dn.label}`, () => vecAxpy(gpu, { s, i: this.al + i, c: -1 }, yi, dn)),
        );
      }
      out.push(c(`hq ${Hn} ${dn.label}`, () => vecScaleInPlace(gpu, dn, { s, i: Hn })));
      for (const i of pairs) {
        const [yi, si] = this.slot(i);
        const r = ro(i);
        out.push(
          ...c(`be ${i} ${r} ${dn.label}`, () => vecDot(gpu, yi, dn, { s, i: BE, mul: r }, work)),
          c(`r ${i} ${dn.label}`, () => vecAxpy(gpu, { s, i: this.al + i, j: BE, op: 'sub' }, si, dn)),
        );
      }
      out.push(c(`t ${Tn}`, () => scalarSelect(gpu, s, Tn, { test: undefined, cmp: '>', c0: 0, k1: this.lr, k2: this.lr })));
    }
    out.push(
      ...c(`gtd ${g.label} ${dn.label}`, () => vecDot(gpu, g, dn, { s, i: GTD }, work)),
      // move only if max|g| > toleranceGrad and g.d <= -toleranceChange (torch returns / breaks otherwise)
      c('m1', () => scalarSelect(gpu, s, M1, { test: GTD, cmp: '<=', c0: -this.tolChange, k1: 1, k2: 0 })),
      c('move', () => scalarSelect(gpu, s, MOVE, { test: MAXABS, cmp: '>', c0: this.tolGrad, k1: 1, a: M1, k2: 0 })),
    );
    if (this.ls) out.push(...c(`dnorm ${dn.label}`, () => vecAmax(gpu, dn, { s, i: DNORM }, work)));
    else out.push(c(`move ${Tn} ${dn.label}`, () => vecAxpy(gpu, { s, i: Tn, j: MOVE, op: 'mul' }, dn, this.x)));
    return out;
  }

  private async iterate(): Promise<StepResult> {
    let evaluations = 0;
    let loss: number;
    if (this.cachedLoss !== undefined) {
      loss = this.cachedLoss;
      this.cachedLoss = undefined;
    } else {
      loss = await this.objective.evaluate(this.x, this.g);
      evaluations++;
    }
    if (!Number.isFinite(loss)) return { loss, done: true, reason: 'non-finite loss', evaluations };
    const first = this.nIter === 0;
    const r = await this.submitAndRead(this.directionSteps(), 'lbfgs.direction');
    const maxAbs = r[MAXABS], gtd = r[GTD];
    if (maxAbs <= Math.fround(this.tolGrad)) {
      return { loss, done: true, reason: `gradient below toleranceGrad (max|g| ${maxAbs})`, evaluations };
    }
    if (!Number.isFinite(maxAbs) || !Number.isFinite(gtd)) {
      return { loss, done: true, reason: 'non-finite gradient', evaluations };
    }
    // commit what the GPU decided
    if (!first && r[ACC] === 1) {
      this.ring.push(this.spare);
      this.spare = this.ring.length > this.m ? this.ring.shift()! : this.ring.length;
    }
    [this.d, this.dn] = [this.dn, this.d];
    [this.g, this.prevG] = [this.prevG, this.g];
    this.parity = 1 - this.parity;
    this.nIter++;
    if (r[MOVE] !== 1) {
      return { loss, done: true, reason: `directional derivative above -toleranceChange (g.d ${gtd})`, evaluations };
    }
    if (!this.ls) return { loss, done: false, evaluations };

    // strong-Wolfe line search along d from x; g(x) is now in prevG
    const t0 = r[T + this.parity];
    const res = await strongWolfe<Tensor>((t, keep) => this.trial(t, keep), t0, loss, this.prevG, gtd, r[DNORM], this.tolChange);
    evaluations += res.evals;
    this.moveTo(res.t);
    writeScalars(this.gpu, this.sc, [res.t], T + this.parity);
    // reuse the accepted evaluation as the next step's f(x), g(x)
    if (res.g === this.prevG) {
      this.submit([this.cached(`keep ${this.prevG.label} ${this.g.label}`, () => vecCopy(this.gpu, this.prevG, this.g))], 'lbfgs.keep');
    } else {
      const k = this.pool.indexOf(res.g);
      this.pool[k] = this.g;
      this.g = res.g;
    }
    this.cachedLoss = res.f;
    return { loss, done: false, evaluations };
  }

  /** x + t d into xT, exactly as moveTo computes it, so the accepted trial's evaluation is the new iterate's. */
  private trialStep(t: number): Step {
    this.xT ??= createTensor(this.gpu, [this.n], 'lbfgs.xt');
    const st = this.cached(`xt ${this.d.label}`, () => vecAxpby(this.gpu, t, this.d, 1, this.x, this.xT!));
    setUniforms(this.gpu, st, { n: this.n, mode: 0, i: 0, j: 0, c: t, b: 1 });
    return st;
  }

  private async trial(t: number, keep: Tensor[]): Promise<LsPoint<Tensor>> {
    let gt = this.pool.find((p) => !keep.includes(p));
    if (!gt) {
      gt = createTensor(this.gpu, [this.n], `lbfgs.gt${this.pool.length}`);
      this.pool.push(gt);
    }
    this.submit([this.trialStep(t)], 'lbfgs.trial');
    const f = await this.objective.evaluate(this.xT!, gt);
    const gp = gt;
    const r = await this.submitAndRead(this.cached(`gtdnew ${gp.label} ${this.d.label}`,
      () => vecDot(this.gpu, gp, this.d, { s: this.sc, i: GTDNEW }, this.work)), 'lbfgs.gtd');
    const gtd = r[GTDNEW];
    return Number.isFinite(f) && Number.isFinite(gtd) ? { f, gtd, g: gt } : { f: Infinity, gtd: 0, g: gt };
  }

  private moveTo(t: number): void {
    if (t === 0) return;
    this.submit([this.trialStep(t), this.cached(`commit ${this.x.label}`, () => vecCopy(this.gpu, this.xT!, this.x))], 'lbfgs.move');
  }
}

function fmtBytes(b: number): string {
  return b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(2)} GiB` : `${(b / 2 ** 20).toFixed(1)} MiB`;
}
