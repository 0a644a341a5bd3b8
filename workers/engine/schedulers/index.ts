/**
 * Schedulers built from a model set's scheduler config, carried verbatim from diffusers'
 * scheduler_config.json (`_class_name` picks the class; `_`-prefixed and unknown fields are ignored,
 * and missing fields take each class's own diffusers default, as `from_config` does).
 */

import type { DecoderSchedulerName } from '../settings';
import { SchedulerError } from './common';
import { DDIMScheduler, type DDIMSchedulerConfig } from './ddim';
import { DDPMScheduler, type DDPMSchedulerConfig } from './ddpm';
import { DPMSolverMultistepScheduler, type DPMSolverMultistepSchedulerConfig } from './dpm-solver-multistep';
import { UnCLIPScheduler, type UnCLIPSchedulerConfig } from './unclip';

export * from './common';
export * from './ddim';
export * from './ddpm';
export * from './dpm-solver-multistep';
export * from './step-coefficients';
export * from './unclip';

export type DecoderScheduler = DDPMScheduler | DDIMScheduler | DPMSolverMultistepScheduler;
/** A decoder scheduler's diffusers class name, as `_class_name` in scheduler_config.json. */
export type DecoderSchedulerClass = 'DDPMScheduler' | 'DDIMScheduler' | 'DPMSolverMultistepScheduler';

/** The diffusers class behind each scheduler a person can pick (settings.ts). */
export const DECODER_SCHEDULER_CLASSES: Readonly<Record<DecoderSchedulerName, DecoderSchedulerClass>> = {
  ddpm: 'DDPMScheduler',
  ddim: 'DDIMScheduler',
  'dpmpp-2m': 'DPMSolverMultistepScheduler',
};

/** A scheduler_config.json as parsed from the manifest; enum fields are checked by each constructor. */
export type SchedulerConfigJson = Readonly<Record<string, unknown>>;

/**
 * A decoder scheduler of class `name` from the model set's decoder config. Passing another class than the
 * config's own is how a user picks DDIM or DPM++ 2M over the stock DDPM: explicit config fields carry over
 * (beta schedule, steps_offset, set_alpha_to_one...), the rest take the chosen class's defaults.
 */
export function createDecoderScheduler(
  config: SchedulerConfigJson,
  name: DecoderSchedulerClass = (config._class_name as DecoderSchedulerClass | undefined) ?? 'DDPMScheduler',
): DecoderScheduler {
  switch (name) {
    case 'DDPMScheduler':
      return new DDPMScheduler(config as DDPMSchedulerConfig);
    case 'DDIMScheduler':
      return new DDIMScheduler(config as DDIMSchedulerConfig);
    case 'DPMSolverMultistepScheduler':
      return new DPMSolverMultistepScheduler(config as DPMSolverMultistepSchedulerConfig);
    default:
      throw new SchedulerError('unsupported-config', `Unknown decoder scheduler class '${String(name)}'`);
  }
}

export function createPriorScheduler(config: SchedulerConfigJson): UnCLIPScheduler {
  if (config._class_name !== undefined && config._class_name !== 'UnCLIPScheduler') {
    throw new SchedulerError(
      'unsupported-config',
      `The prior needs UnCLIPScheduler, got '${String(config._class_name)}'`,
    );
  }
  return new UnCLIPScheduler(config as UnCLIPSchedulerConfig);
}
