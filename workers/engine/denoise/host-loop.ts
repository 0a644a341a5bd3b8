/**
 * The host form of the denoising loop ('cpu' residency): each step sends the latents up as new
 * tensors and does guidance and the scheduler step in JavaScript, in diffusers' float32 order.
 * The step graphs of the device forms repeat exactly these operations.
 */
import { type InferenceSession, readFloat32, requiredOutput, type Tensor, TensorScope } from '../ort';
import { concatRows, guide } from '../rows';
import { blendKept } from './inpaint-blend';
import type { DenoiseInput, LoopForm } from './loop';

export function openHostLoop(input: DenoiseInput, unet: InferenceSession): LoopForm {
  const { models, scheduler, generator, timesteps, inpaint } = input;
  const shape = input.latents.dims;
  const [n = 1, channels = 4, h = 0, w = 0] = shape;
  const plane = h * w;
  const latentLength = n * channels * plane;
  const guided = input.guidance > 1;
  const batch = guided ? 2 * n : n;
  let latents = input.latents.data;

  // The constants go up once per run.
  const scope = new TensorScope(models.ort);
  const fixed: Record<string, Tensor> = {};
  for (const [name, { data, dims }] of Object.entries(input.unetConstants))
    fixed[name] = scope.float32(data, dims);

  return {
    async step(i, t) {
      const stepScope = new TensorScope(models.ort);
      try {
        const modelInput = guided ? concatRows(latents, latents) : latents;
        const out = await stepScope.run(unet, {
          ...fixed,
          sample: stepScope.float32(scheduler.scaleModelInput(modelInput, t), [batch, channels, h, w]),
          timestep: stepScope.float32(new Float32Array(batch).fill(t), [batch]),
        });
        const noisePred = await readFloat32(requiredOutput(out, 'noise_pred'));
        // Channels 0–3 are ε; 4–7 (learned variance) are unused with the fixed_small DDPM schedule.
        const outChannels = noisePred.length / (batch * plane);
        const epsilonAt = (k: number) => {
          const image = Math.floor(k / (channels * plane));
          return image * outChannels * plane + (k % (channels * plane));
        };
        const epsilon = guided
          ? guide(noisePred, n * outChannels * plane, epsilonAt, latentLength, input.guidance)
          : Float32Array.from({ length: latentLength }, (_, k) => noisePred[epsilonAt(k)] ?? 0);
        latents = scheduler.step(epsilon, t, latents, { shape, generator }).prevSample;
        if (inpaint) latents = blendKept(scheduler, inpaint, latents, timesteps[i + 1], shape);
      } finally {
        stepScope.disposeAll();
      }
    },
    async read() {
      return latents;
    },
    close() {
      scope.disposeAll();
    },
  };
}
