// What the library exports in every environment (node.ts and browser.ts add the environment's GPU and I/O).
// The public types use WebGPU's global types (GPUDevice, GPUBuffer...): the shipped declarations keep this reference
// so that users' TypeScript loads them (preserve: TypeScript 5.5+ drops reference directives from .d.ts otherwise).
/// <reference types="@webgpu/types" preserve="true" />
export { Painterly, engineSettings, toRgbImage, type CreateOptions, type PainterlyHooks, type PainterlyResult, type PixelInput, type ImageInput } from './painterly.ts';
export { Gpu, PainterlyError, type OpenOptions } from './gpu/device.ts';
export { resolveStylizeOptions, type StylizeInput, type StylizeOptions } from './style/options.ts';
export type { EvaluationRecord, ProgressInfo, StylizeResult, EngineSettings } from './style/engine.ts';
export type { LossTerms, LossConfig } from './style/objective.ts';
export { decodeImage, encodeImage, fromRgba, toRgba, resize, fitLongestSide, type RgbImage } from './image/index.ts';
export { VGG19_LAYER_NAMES } from './nets/vgg19.ts';
export { loadVgg19Weights, type VggWeights } from './weights/vgg19-weights.ts';
export {
  adapterKey, chooseVariant, configureTuning, fixVariant, measureVariants, settleTuning, tuneChoices, tuneMode, tuneStandard,
  type Tunable, type TuneFile, type TuneMode, type TuneOptions, type TuneRecord, type TuneRow, type Variant,
} from './gpu/tune.ts';
export { TUNABLES } from './ops/tunables.ts';
