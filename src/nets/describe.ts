// Networks as data. A description is a list of named layers in an order where every layer comes after the layers it
// reads. A layer reads its predecessor unless it names its `inputs` (skip connections, concatenation); the first
// layer reads the image. The executor (executor.ts) plans buffers for an image size, records the forward steps and,
// by walking the list in reverse with each op's hand-derived backward rule (gradients of a tensor read by several
// layers summed), the backward w.r.t. the input. Tensors are float32 [C,H,W], batch 1.
//
// Ops:
//   normalize  y = (x − mean_c) / std_c                      (torchvision's input statistics)
//   conv       k×k convolution; stride (default 1) and zero padding (default (k−1)/2, "same"), or reflection padding
//              of (k−1)/2 at stride 1; bias: false for convs without one (ResNet, DenseNet); weights by layer name
//   batchnorm  inference batch norm y = γ (x − μ)/√(σ² + ε) + β with running statistics; folded into the conv it
//              directly follows when nothing else reads that conv, else a per-channel affine op
//   relu       y = max(x, 0)
//   pool       mode max|avg (absent: the plan's choice, Gatys' --pooling); kernel/stride (default 2/2), zero-size
//              padding (max pools pad with −∞, as PyTorch); ceil: PyTorch's ceil_mode
//   upsample   nearest-neighbour ×2
//   add        y = a + b                                     (residual connections; inputs: two layers)
//   concat     y = [x₁; x₂; …] along channels                (DenseNet; inputs: two or more layers)

export type PadMode = 'zeros' | 'reflect';
export type PoolMode = 'max' | 'avg';

type Op =
  | { op: 'normalize'; mean: number[]; std: number[] }
  | { op: 'conv'; cout: number; k: number; pad: PadMode; stride?: number; padding?: number; bias?: boolean }
  | { op: 'batchnorm'; eps?: number }
  | { op: 'relu' }
  | { op: 'pool'; mode?: PoolMode; ceil?: boolean; kernel?: number; stride?: number; padding?: number }
  | { op: 'upsample' }
  | { op: 'add' }
  | { op: 'concat' };

/** One layer: its op and parameters, its name, and (when not just the previous layer) the layers it reads. */
export type LayerSpec = Op & { name: string; inputs?: string[] };

export type OpName = LayerSpec['op'];

export interface NetDescription {
  /** Short name, e.g. 'vgg19', 'vgg19-16x/enc5'. */
  name: string;
  /** Input channels (3: RGB in [0, 1]). */
  inputChannels: number;
  layers: LayerSpec[];
  /** Other names of layers (torchvision's module paths where two name one output, e.g. `layer3.5` for `layer3`). */
  aliases?: Record<string, string>;
}

/** One convolution's parameters: weight [cout, cin, k, k] (PyTorch OIHW), bias [cout] (zeros for a conv without). */
export interface ConvParams {
  name: string;
  cin: number;
  cout: number;
  k: number;
  weight: Float32Array;
  bias: Float32Array;
}

/** Inference batch norm's parameters (PyTorch's weight, bias, running_mean, running_var), each [C]. */
export interface NormParams {
  name: string;
  channels: number;
  weight: Float32Array;
  bias: Float32Array;
  mean: Float32Array;
  variance: Float32Array;
  eps: number;
}

/** A description with its parameters: the convolutions (and batch norms) by layer name. */
export interface NetWeights {
  convs: Map<string, ConvParams>;
  norms?: Map<string, NormParams>;
  /** Trained weights (false for seeded random ones). */
  pretrained: boolean;
  /** Human description of where the weights came from. */
  source: string;
}
