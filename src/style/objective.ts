// The loss of Gatys et al. (2016) and its gradient w.r.t. the image, as one recorded GPU program:
//   L = α Σ_c L_content(c) + β Σ_l w_l E_l + γ L_tv
//   L_content = ½ Σ (F − P)²                       at each content layer
//   E_l = 1/(4 N_l² M_l²) Σ (G_l − A_l)²,  G_l = F_l F_lᵀ   at each style layer
// One evaluate() is one submit (forward, losses, backward) and one readback of the loss terms.
import { PainterlyError, type Gpu } from '../gpu/device.ts';
import { encodeSteps, type Step } from '../gpu/kernel.ts';
import { createTensor, destroyTensors, readBuffers, type Tensor } from '../gpu/tensor.ts';
import { settleTuning } from '../gpu/tune.ts';
import { backwardInto, deepest, forwardFrom, planNetwork, type BackwardProgram, type Network, type NetPlan } from '../nets/executor.ts';
import type { NetDescription } from '../nets/describe.ts';
import type { Pooling } from '../nets/vgg19.ts';
import { contentLoss, createScalars, styleLoss, tvLoss } from '../ops/loss.ts';
import { mattingGuide, mattingSteps, type MattingGuide, type MattingSteps } from '../ops/matting.ts';
import { softmaxChannelsBackward } from '../ops/softmax.ts';
import { vecAxpy, vecFill } from '../ops/vector.ts';
import { featureTransformOf, transformForward, type FeatureTransform, type FeatureTransformName } from './transform.ts';
import { maskedScratch, maskedStyleLoss, regionWeight, type MaskedRegion } from '../ops/mask.ts';

/** The first feature layer of a network (what a plan computes when no loss taps anything). */
export function firstFeature(desc: NetDescription): string {
  return desc.layers.find((l) => l.op === 'relu')?.name ?? desc.layers[0].name;
}

export type LossNormalization = 'paper' | 'scale-free';

export interface LossConfig {
  contentLayers: string[];
  styleLayers: string[];
  /** w_l per style layer (same length as styleLayers). */
  styleLayerWeights: number[];
  contentWeight: number;
  styleWeight: number;
  tvWeight: number;
  /**
   * 'paper': the sums above. 'scale-free': the content term is divided by its element count N·M, and the TV term by
   * the image's pixel count, so weights keep their meaning across image sizes (E_l is already size-normalised).
   */
  normalization: LossNormalization;
  /**
   * λ_m of Luan et al.'s photorealism regulariser λ_m Σ_c V_cᵀ M V_c (M: the content image's matting Laplacian,
   * ops/matting.ts); 0 or absent = off. 'scale-free' divides it by the pixel count, like the TV term.
   */
  mattingWeight?: number;
  /** Transform of the tapped features before the losses (transform.ts); targets must be made with the same. */
  featureTransform?: FeatureTransformName;
  /** T of the softmax transform (default 1). */
  softmaxTemperature?: number;
}

export interface LossTerms {
  /** Raw (unweighted) sums: Σ over content layers of L_content, Σ_l w_l E_l, L_tv. */
  content: number;
  style: number;
  tv: number;
  /** Σ_c V_cᵀ M V_c when the matting regulariser is on. */
  matting?: number;
  /** α·content + β·style + γ·tv (with the normalisation applied). */
  total: number;
}

export interface Targets {
  /** Content features P per content layer, at the output size. */
  content: Map<string, Tensor>;
  /** Target Gram A per style layer (blended and size-scaled by the caller). */
  style: Map<string, Tensor>;
  /**
   * Semantic masks (Luan et al. 2017; ops/mask.ts, targets.ts maskedStyleTargets): per style layer, its matched
   * regions; such a layer's style term is Σ_r E_r over them instead of E_l.
   */
  masked?: Map<string, MaskedRegion[]>;
}

interface Slot { kind: 'content' | 'style' | 'tv' | 'matting'; layer: string; weight: number; region?: MaskedRegion }

/** A style layer's loss slots: one, or with semantic masks one per matched region (weighted so that it reports w·E_r). */
function styleSlots(layer: string, weight: number, masked: Targets['masked']): Slot[] {
  const regions = masked?.get(layer);
  if (!regions) return [{ kind: 'style', layer, weight }];
  return regions.map((region) => ({ kind: 'style', layer, weight: regionWeight(weight, region), region }));
}

interface Program { x: GPUBuffer; grad: GPUBuffer; steps: Step[]; forwardSteps: number }

export class GatysObjective {
  readonly n: number;
  readonly plan: NetPlan;
  last: LossTerms | undefined;
  private readonly gpu: Gpu;
  private readonly cfg: LossConfig;
  private readonly scalars: GPUBuffer;
  /** Loss-term slots in the scalars buffer: content layers, then style layers, then TV. */
  private readonly slots: Slot[];
  private readonly lossSteps = new Map<string, Step[]>();
  private readonly programs: Program[] = [];
  private readonly matting: { guide: MattingGuide; steps: MattingSteps[] } | undefined;
  private readonly transform: FeatureTransform | undefined;
  /** Per tapped layer with a transform: S = transform(F) and its gradient (turned in place into F's part). */
  private readonly transformed = new Map<string, { S: Tensor; dS: Tensor }>();

  /** `guide`: the content image at h x w, needed when cfg.mattingWeight is set. */
  constructor(gpu: Gpu, net: Network, h: number, w: number, pooling: Pooling, cfg: LossConfig, private readonly targets: Targets,
    guide?: { data: Float32Array; width: number; height: number }) {
    if (cfg.styleLayers.length !== cfg.styleLayerWeights.length) {
      throw new PainterlyError(`style layer weights: ${cfg.styleLayerWeights.length} given for ${cfg.styleLayers.length} style layers`);
    }
    this.gpu = gpu;
    this.cfg = cfg;
    this.n = 3 * h * w;
    const contentLayers = cfg.contentWeight !== 0 ? cfg.contentLayers : [];
    const styleLayers = cfg.styleWeight !== 0 ? cfg.styleLayers : [];
    const pixels = h * w;
    this.slots = [
      ...contentLayers.map((layer) => ({ kind: 'content' as const, layer, weight: cfg.contentWeight })),
      ...styleLayers.flatMap((layer) => styleSlots(layer, cfg.styleWeight * cfg.styleLayerWeights[cfg.styleLayers.indexOf(layer)], targets.masked)),
      ...(cfg.tvWeight !== 0 ? [{ kind: 'tv' as const, layer: 'image', weight: cfg.tvWeight / (cfg.normalization === 'scale-free' ? pixels : 1) }] : []),
    ];
    const taps = [...contentLayers, ...styleLayers];
    this.plan = planNetwork(gpu, net, { h, w, pooling, upTo: deepest(net.desc, taps.length ? taps : [firstFeature(net.desc)]), taps, backward: true });
    if (cfg.normalization === 'scale-free') {
      for (const s of this.slots) if (s.kind === 'content') s.weight /= this.plan.acts.get(s.layer)!.size;
    }
    if (cfg.mattingWeight) {
      if (!guide || guide.width !== w || guide.height !== h) throw new PainterlyError(`matting regulariser: needs the ${w}x${h} content image as its guide`);
      this.slots.push({ kind: 'matting', layer: 'image', weight: cfg.mattingWeight / (cfg.normalization === 'scale-free' ? pixels : 1) });
      this.matting = { guide: mattingGuide(gpu, guide), steps: [] };
    }
    this.scalars = createScalars(gpu, Math.max(1, this.slots.length));
    this.transform = featureTransformOf(cfg);
  }

  /** Loss steps at a layer, built once (the plan's tensors never move). */
  private lossAt(layer: string, act: Tensor, grad: Tensor): Step[] {
    let steps = this.lossSteps.get(layer);
    if (steps) return steps;
    steps = [];
    const T = this.transform;
    let F = act;
    let g = grad;
    if (T) {
      // The losses see S = transform(F) and add into dS; then dF = (∂S/∂F)ᵀ dS is added into the layer's gradient.
      const t = { S: createTensor(this.gpu, act.shape, `S.${layer}`), dS: createTensor(this.gpu, act.shape, `dS.${layer}`) };
      this.transformed.set(layer, t);
      steps.push(...transformForward(this.gpu, T, act, t.S), vecFill(this.gpu, t.dS, 0));
      F = t.S;
      g = t.dS;
    }
    let scratch: ReturnType<typeof maskedScratch> | undefined;
    this.slots.forEach((s, slot) => {
      if (s.layer !== layer) return;
      const common = { grad: g, weight: s.weight, scalars: this.scalars, slot };
      if (s.kind === 'content') steps!.push(...contentLoss(this.gpu, { F, P: this.targets.content.get(layer)!, ...common }).steps);
      else if (s.kind === 'style' && s.region) steps!.push(...maskedStyleLoss(this.gpu, { F, region: s.region, ...common, ...(scratch ??= maskedScratch(this.gpu, F)) }));
      else if (s.kind === 'style') steps!.push(...styleLoss(this.gpu, { F, A: this.targets.style.get(layer)!, ...common }).steps);
    });
    if (T) {
      const t = this.transformed.get(layer)!;
      steps.push(...softmaxChannelsBackward(this.gpu, t.S, t.dS, t.dS, T.temperature), vecAxpy(this.gpu, 1, t.dS, grad));
    }
    this.lossSteps.set(layer, steps);
    return steps;
  }

  /** The recorded program for an (x, grad) pair of buffers; optimisers use one or two such pairs. */
  private programFor(x: Tensor, grad: Tensor): Program {
    const hit = this.programs.find((p) => p.x === x.buffer && p.grad === grad.buffer);
    if (hit) return hit;
    // Optimisers hand flat vectors of n; view them as the image they are.
    for (const t of [x, grad]) {
      if (t.size !== this.n) throw new PainterlyError(`${t.label}: expected ${this.n} values (3x${this.plan.h}x${this.plan.w}), got ${t.size}`);
    }
    const shape = [3, this.plan.h, this.plan.w];
    x = { ...x, shape };
    grad = { ...grad, shape };
    const back: BackwardProgram = backwardInto(this.gpu, this.plan, (l, a, g) => this.lossAt(l, a, g), grad);
    const fwd = forwardFrom(this.gpu, this.plan, x);
    const steps = [...fwd, ...back.steps];
    const tvSlot = this.slots.findIndex((s) => s.kind === 'tv');
    if (tvSlot >= 0) steps.push(...tvLoss(this.gpu, { x, grad, weight: this.slots[tvSlot].weight, scalars: this.scalars, slot: tvSlot }).steps);
    const mSlot = this.slots.findIndex((s) => s.kind === 'matting');
    if (mSlot >= 0 && this.matting) {
      // Gradient of λ Σ_c V_cᵀ M V_c: 2λ M V_c, accumulated into grad.
      const m = mattingSteps(this.gpu, this.matting.guide, { v: x, out: grad, scale: 2 * this.slots[mSlot].weight, accumulate: true, scalars: this.scalars, slot: mSlot });
      this.matting.steps.push(m);
      steps.push(...m.steps);
    }
    const p = { x: x.buffer, grad: grad.buffer, steps, forwardSteps: fwd.length };
    this.programs.push(p);
    return p;
  }

  /**
   * The program split for benchmarks: the forward alone, the loss steps (which read only forward activations), and
   * the whole evaluation. Timing forward, forward+losses and all gives the three parts by difference.
   */
  stages(x: Tensor, grad: Tensor): { forward: Step[]; losses: Step[]; all: Step[] } {
    const p = this.programFor(x, grad);
    const forward = p.steps.slice(0, p.forwardSteps);
    const losses = [...this.lossSteps.values()].flat();
    return { forward, losses, all: p.steps };
  }

  /** Records the whole evaluation into `enc` (forward, losses, backward; gradient into `grad`). */
  encode(enc: GPUCommandEncoder, x: Tensor, grad: Tensor): void {
    const p = this.programFor(x, grad);
    const pass = enc.beginComputePass({ label: 'gatys' });
    encodeSteps(pass, p.steps);
    pass.end();
  }

  /** f(x), with ∇f written into grad: one submit, one readback of the loss terms. */
  async evaluate(x: Tensor, grad: Tensor): Promise<number> {
    this.programFor(x, grad);
    await settleTuning(this.gpu); // first evaluation: time the kernel variants of shapes not tuned yet (mode 'on')
    const enc = this.gpu.device.createCommandEncoder({ label: 'evaluate' });
    this.encode(enc, x, grad);
    this.gpu.device.queue.submit([enc.finish()]);
    const [vals] = await readBuffers(this.gpu, [{ buffer: this.scalars, bytes: this.slots.length * 4 }]);
    const t: LossTerms = { content: 0, style: 0, tv: 0, total: 0 };
    const c = this.cfg;
    this.slots.forEach((s, i) => {
      const v = vals[i];
      if (s.kind === 'content') t.content += v;
      else if (s.kind === 'style') t.style += (s.weight / c.styleWeight) * v;
      else if (s.kind === 'matting') t.matting = v;
      else t.tv += v;
      t.total += s.weight * v;
    });
    this.last = t;
    return t.total;
  }

  destroy(): void {
    this.plan.destroy();
    for (const t of this.transformed.values()) destroyTensors(t.S, t.dS);
    this.scalars.destroy();
    this.matting?.steps.forEach((m) => m.destroy());
    this.matting?.guide.destroy();
  }
}
