export {
  init,
  isInitialized,
  type InitOptions,
  memoryInfo,
  type MemoryInfo,
  releaseMemory,
  relaxedSimdSupported,
  type SimdFlavour,
  simdFlavour,
  threadCount,
  type WasmSource,
} from './backend.js';
export {
  DataTypeError,
  AutogradError,
  DisposedError,
  ImageError,
  type ImageErrorReason,
  InceptionWasmError,
  NotInitializedError,
  OutOfMemoryError,
  type Pair,
  ShapeError,
  StateDictError,
  ValueError,
  WasmFaultError,
  WasmLoadError,
  WorkerError,
} from './errors.js';
export { Tensor, type TensorOptions } from './tensor.js';
export {
  Module,
  type LayerRow,
  type LoadOptions,
  type ParameterInfo,
  type ParameterKind,
  type StateDictInput,
  type StateTensor,
} from './nn/module.js';
export { Parameter } from './nn/parameter.js';
export { initParameters, manualSeed, type InitOptions as ParameterInitOptions } from './nn/init.js';
export { BatchNorm2d, type BatchNorm2dOptions } from './nn/batchnorm.js';
export { type Activation, BasicConv2d, type BasicConv2dOptions, Conv2d, type ConvAlgorithm, type Conv2dOptions } from './nn/conv.js';
export { AdaptiveAvgPool2d, AvgPool2d, type AvgPool2dOptions, MaxPool2d, type Pool2dOptions } from './nn/pool.js';
export { Linear, type LinearOptions } from './nn/linear.js';
export { Dropout, Flatten, ReLU } from './nn/activation.js';
export { Sequential } from './nn/container.js';
export { Inception, type InceptionOptions } from './nn/inception.js';
export { crossEntropy, type GoogLeNetLoss, googlenetLoss } from './nn/loss.js';
export { Adam, AdamW, type AdamOptions, type Hyperparameters, Optimizer, type OptimizerStateDict, SGD, type SGDOptions } from './optim.js';
export {
  GoogLeNet,
  type GoogLeNetOptions,
  type GoogLeNetOutputs,
  type GoogLeNetVariant,
  type GoogLeNetWeights,
  INCEPTION_CONFIG,
  InceptionAux,
} from './nn/googlenet.js';
export { bottleneck, convWeightCount, GRAY_WEIGHTS, rgbToGray, spindle, type TwoStageOptions } from './nn/blocks.js';
export { summary, type Summary } from './summary.js';
export { loadSafetensors, readSafetensors, type SafetensorsContents, SafetensorsError, saveSafetensors, type SaveOptions } from './safetensors.js';
export { loadPth, PthError } from './pth/index.js';
export { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
export { concat, topk } from './ops.js';
export { decodeImage, type DecodedImage, type DecodeOptions } from './image/decode.js';
export { IMAGENET_MEAN, IMAGENET_STD, preprocess, type PreprocessOptions, type Size } from './image/preprocess.js';
export type { BrowserImage, EncodedImage, ImageInput, RawImage } from './image/source.js';
export { classify, type ClassifyOptions, type Prediction, softmax } from './classify.js';
export { IMAGENET_CLASSES } from './imagenet-classes.js';
