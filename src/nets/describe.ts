// Networks as data. A description is a list of named layers, each reading the previous layer's output (the first
// reads the image). The executor (executor.ts) plans buffers for an image size, records the forward steps and, by
// walking the list in reverse with each op's hand-derived backward rule, the backward w.r.t. the input.
// Tensors are float32 [C,H,W], batch 1.
//
// Ops:
//   normalize  y = (x − mean_c) / std_c                      (torchvision's input statistics)
//   conv       k×k convolution, stride 1, "same" size, zero or reflection padding of (k−1)/2; weights by layer name
//   relu       y = max(x, 0)
//   pool       2×2 stride 2; mode max|avg (absent: the plan's choice, Gatys' --pooling); ceil: PyTorch's ceil_mode
//   upsample   nearest-neighbour ×2
// Room for graphs: a layer may later name its inputs (skip connections, concatenation); today every layer reads its
// predecessor, and the executor refuses anything else.

export type PadMode = 'zeros' | 'reflect';
export type PoolMode = 'max' | 'avg';

export type LayerSpec =
  | { name: string; op: 'normalize'; mean: number[]; std: number[] }
  | { name: string; op: 'conv'; cout: number; k: number; pad: PadMode }
  | { name: string; op: 'relu' }
  | { name: string; op: 'pool'; mode?: PoolMode; ceil?: boolean }
  | { name: string; op: 'upsample' };

export type OpName = LayerSpec['op'];

export interface NetDescription {
  /** Short name, e.g. 'vgg19', 'vgg19-16x/enc5'. */
  name: string;
  /** Input channels (3: RGB in [0, 1]). */
  inputChannels: number;
  layers: LayerSpec[];
}

/** One convolution's parameters: weight [cout, cin, k, k] (PyTorch OIHW), bias [cout]. */
export interface ConvParams {
  name: string;
  cin: number;
  cout: number;
  k: number;
  weight: Float32Array;
  bias: Float32Array;
}

/** A description with its parameters: the convolutions by layer name. */
export interface NetWeights {
  convs: Map<string, ConvParams>;
  /** Trained weights (false for seeded random ones). */
  pretrained: boolean;
  /** Human description of where the weights came from. */
  source: string;
}
