/**
 * The resident form of the denoising loop ('gpu' residency, plain UNet session): UNet → step graph
 * → UNet, where the step graph (step-graphs.ts) does classifier-free guidance, the scheduler step
 * and the inpainting blend on the same device as the UNet. Per step only small tensors go up
 * (timestep, the step's scalars, the DDPM noise drawn by our torch generator on the CPU); nothing
 * comes down unless the loop reads the latents (previews, traces, the end).
 */
import { type InferenceSession, requiredOutput, type Tensor, TensorScope } from '../ort';
import {
  doubled,
  downloadResident,
  inpaintConstants,
  loopShape,
  stepInputs,
  timestepsOf,
  uploadResident,
} from './device-step';
import type { DenoiseInput, LoopForm } from './loop';
import { buildStepGraph, STEP_GRAPH, type StepGraphSpec, stepGraphKey } from './step-graphs';

/** Each step's tensors are new ORT tensors, handed from step to step. */
export async function openResidentLoop(
  input: DenoiseInput,
  unet: InferenceSession,
  spec: StepGraphSpec,
): Promise<LoopForm> {
  const { models } = input;
  const { shape, channels, h, w, guided, batch } = loopShape(input);
  const initial = input.latents.data;
  const stepSession = await models.runtimeSession(stepGraphKey(spec), () => buildStepGraph(spec), 'device');

  // Lives for the whole loop: constants and the state carried from step to step.
  const scope = new TensorScope(models.ort);
  const unetConstants: Record<string, Tensor> = {};
  const stepConstants: Record<string, Tensor> = {};
  try {
    for (const [name, host] of Object.entries(input.unetConstants)) {
      unetConstants[name] = await uploadResident(models, scope, host);
    }
    for (const [name, host] of Object.entries(inpaintConstants(input))) {
      stepConstants[name] = await uploadResident(models, scope, host);
    }
  } catch (error) {
    scope.disposeAll();
    throw error;
  }

  // The first step's inputs go up as CPU tensors (ORT copies them); later ones are step outputs.
  let latents = scope.float32(initial, shape);
  let modelInput = guided ? scope.float32(doubled(initial), [batch, channels, h, w]) : latents;
  let previousX0 =
    spec.scheduler === 'dpmpp-2m' ? scope.float32(new Float32Array(initial.length), shape) : null;

  return {
    async step(i, t) {
      const stepScope = new TensorScope(models.ort);
      try {
        // scaleModelInput is the identity for DDPM, DDIM and DPM-Solver++, so the sample goes as is.
        const unetOut = await stepScope.run(unet, {
          ...unetConstants,
          sample: modelInput,
          timestep: stepScope.float32(timestepsOf(batch, t), [batch]),
        });
        const feeds: Record<string, Tensor> = {
          ...stepConstants,
          ...stepInputs(input, spec, i, t, stepScope),
          [STEP_GRAPH.noisePred]: requiredOutput(unetOut, 'noise_pred'),
          [STEP_GRAPH.latents]: latents,
        };
        if (previousX0) feeds[STEP_GRAPH.previousX0] = previousX0;
        const stepOut = await stepScope.run(stepSession, feeds);

        // Hand the new state to the loop's scope and drop the old one.
        const old = [latents, modelInput, previousX0];
        latents = stepScope.transfer(requiredOutput(stepOut, STEP_GRAPH.latentsNext), scope);
        modelInput = guided
          ? stepScope.transfer(requiredOutput(stepOut, STEP_GRAPH.modelInputNext), scope)
          : latents;
        if (previousX0) previousX0 = stepScope.transfer(requiredOutput(stepOut, STEP_GRAPH.x0Next), scope);
        for (const tensor of new Set(old)) if (tensor) scope.dispose(tensor);
      } finally {
        stepScope.disposeAll();
      }
    },
    read: () => downloadResident(models, latents),
    close() {
      scope.disposeAll();
    },
  };
}
