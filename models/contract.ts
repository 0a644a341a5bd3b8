// The component I/O contract of a Kandinsky Web model set, as data (CONTRACT.md is the prose).
// Used by the fixture test, the engine (input names, size rules) and the manifest validator.
// Runs in workers and the browser: no Node APIs here.

export const CONTRACT_VERSION = '1';

export const FEATURES = [
  'text-to-image',
  'image-to-image',
  'inpainting',
  'depth-control',
  'image-prompt',
  // Depth control from a photo: the depth map is estimated on the device and the photo is the
  // image-to-image start (diffusers' KandinskyV22ControlnetImg2ImgPipeline).
  'depth-from-photo',
] as const;
export type Feature = (typeof FEATURES)[number];

export const GRAPH_COMPONENTS = [
  'text_encoder',
  'prior',
  'image_encoder',
  'unet',
  'unet_inpaint',
  'unet_depth',
  'movq_decoder',
  'movq_encoder',
  'depth_estimator',
] as const;
export type GraphComponentId = (typeof GRAPH_COMPONENTS)[number];

export const TENSOR_COMPONENTS = ['prior_clip_mean', 'prior_clip_std', 'negative_image_embeds'] as const;
export type TensorComponentId = (typeof TENSOR_COMPONENTS)[number];

export const COMPONENT_IDS = ['tokenizer', ...GRAPH_COMPONENTS, ...TENSOR_COMPONENTS] as const;
export type ComponentId = (typeof COMPONENT_IDS)[number];

export type ComponentKind = 'tokenizer' | 'onnx' | 'tensor';

export function componentKind(id: ComponentId): ComponentKind {
  if (id === 'tokenizer') return 'tokenizer';
  return (TENSOR_COMPONENTS as readonly string[]).includes(id) ? 'tensor' : 'onnx';
}

/** Components every set must have (text-to-image end to end). */
export const REQUIRED_COMPONENTS: readonly ComponentId[] = [
  'tokenizer',
  'text_encoder',
  'prior',
  'prior_clip_mean',
  'prior_clip_std',
  'negative_image_embeds',
  'unet',
  'movq_decoder',
];

/** Tokenizer files the engine reads (others, e.g. vocab.json and merges.txt, may also be listed). */
export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json'] as const;

export type TensorDType = 'float32' | 'int64' | 'bool';

/** Dynamic ONNX dims (their `dim_param` names in the graphs). */
export const DYNAMIC_AXES = [
  'batch',
  'height',
  'width',
  'height_px',
  'width_px',
  // The depth estimator's input size in pixels (multiples of DEPTH_PATCH_SIZE, any aspect).
  'depth_height',
  'depth_width',
] as const;
export type DynamicAxis = (typeof DYNAMIC_AXES)[number];

/** Dims fixed per model set, given in the manifest's `dims`. */
export type ModelDim =
  | 'textMaxLength'
  | 'textHiddenSize'
  | 'imageEmbedDim'
  | 'imageEncoderSize'
  | 'latentChannels';

/** A tensor dimension: a fixed size, a dynamic axis, or a per-set size (`$` + manifest `dims` key). */
export type Dim = number | DynamicAxis | `$${ModelDim}`;

export interface TensorSpec {
  readonly name: string;
  readonly dtype: TensorDType;
  readonly shape: readonly Dim[];
}

export interface GraphContract {
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
}

const timestep: TensorSpec = { name: 'timestep', dtype: 'float32', shape: ['batch'] };
const latents: TensorSpec = {
  name: 'sample',
  dtype: 'float32',
  shape: ['batch', '$latentChannels', 'height', 'width'],
};
const decoderEmbeds: TensorSpec = {
  name: 'image_embeds',
  dtype: 'float32',
  shape: ['batch', '$imageEmbedDim'],
};
const noisePred: TensorSpec = {
  name: 'noise_pred',
  dtype: 'float32',
  shape: ['batch', 8, 'height', 'width'],
};

export const GRAPH_CONTRACTS: Record<GraphComponentId, GraphContract> = {
  text_encoder: {
    inputs: [{ name: 'input_ids', dtype: 'int64', shape: ['batch', '$textMaxLength'] }],
    outputs: [
      { name: 'text_embeds', dtype: 'float32', shape: ['batch', '$imageEmbedDim'] },
      { name: 'last_hidden_state', dtype: 'float32', shape: ['batch', '$textMaxLength', '$textHiddenSize'] },
    ],
  },
  prior: {
    inputs: [
      { name: 'latents', dtype: 'float32', shape: ['batch', '$imageEmbedDim'] },
      timestep,
      { name: 'proj_embedding', dtype: 'float32', shape: ['batch', '$imageEmbedDim'] },
      {
        name: 'encoder_hidden_states',
        dtype: 'float32',
        shape: ['batch', '$textMaxLength', '$textHiddenSize'],
      },
      { name: 'attention_mask', dtype: 'bool', shape: ['batch', '$textMaxLength'] },
    ],
    outputs: [{ name: 'predicted_image_embedding', dtype: 'float32', shape: ['batch', '$imageEmbedDim'] }],
  },
  image_encoder: {
    inputs: [
      {
        name: 'pixel_values',
        dtype: 'float32',
        shape: ['batch', 3, '$imageEncoderSize', '$imageEncoderSize'],
      },
    ],
    outputs: [{ name: 'image_embeds', dtype: 'float32', shape: ['batch', '$imageEmbedDim'] }],
  },
  unet: { inputs: [latents, timestep, decoderEmbeds], outputs: [noisePred] },
  unet_inpaint: {
    inputs: [
      latents,
      timestep,
      decoderEmbeds,
      {
        name: 'masked_image_latents',
        dtype: 'float32',
        shape: ['batch', '$latentChannels', 'height', 'width'],
      },
      { name: 'mask', dtype: 'float32', shape: ['batch', 1, 'height', 'width'] },
    ],
    outputs: [noisePred],
  },
  unet_depth: {
    inputs: [
      latents,
      timestep,
      decoderEmbeds,
      { name: 'hint', dtype: 'float32', shape: ['batch', 3, 'height_px', 'width_px'] },
    ],
    outputs: [noisePred],
  },
  movq_decoder: {
    inputs: [{ name: 'latents', dtype: 'float32', shape: ['batch', '$latentChannels', 'height', 'width'] }],
    outputs: [{ name: 'sample', dtype: 'float32', shape: ['batch', 3, 'height_px', 'width_px'] }],
  },
  movq_encoder: {
    inputs: [{ name: 'image', dtype: 'float32', shape: ['batch', 3, 'height_px', 'width_px'] }],
    outputs: [{ name: 'latents', dtype: 'float32', shape: ['batch', '$latentChannels', 'height', 'width'] }],
  },
  depth_estimator: {
    inputs: [{ name: 'pixel_values', dtype: 'float32', shape: ['batch', 3, 'depth_height', 'depth_width'] }],
    outputs: [{ name: 'predicted_depth', dtype: 'float32', shape: ['batch', 'depth_height', 'depth_width'] }],
  },
};

/**
 * The depth estimator's preprocessing (transformers' DPTImageProcessor as Depth Anything ships it):
 * resize with Pillow's bicubic to about `dims.depthImageSize` keeping the aspect ratio, each side
 * rounded to a multiple of the ViT patch, then `/255` and ImageNet mean/std. Fixed by the contract;
 * only the target size is per set.
 */
export const DEPTH_PATCH_SIZE = 14;
export const DEPTH_IMAGE_MEAN = [0.485, 0.456, 0.406] as const;
export const DEPTH_IMAGE_STD = [0.229, 0.224, 0.225] as const;

export const TENSOR_CONTRACTS: Record<TensorComponentId, TensorSpec> = {
  prior_clip_mean: { name: 'prior_clip_mean', dtype: 'float32', shape: [1, '$imageEmbedDim'] },
  prior_clip_std: { name: 'prior_clip_std', dtype: 'float32', shape: [1, '$imageEmbedDim'] },
  negative_image_embeds: { name: 'negative_image_embeds', dtype: 'float32', shape: [1, '$imageEmbedDim'] },
};

export type ModelDims = Record<ModelDim, number>;

/** The fixed size of a dim for a given set, or null for a dynamic axis. */
export function resolveDim(dim: Dim, dims: ModelDims): number | null {
  if (typeof dim === 'number') return dim;
  if (dim.startsWith('$')) return dims[dim.slice(1) as ModelDim];
  return null;
}
