/**
 * Schedulers built from a model set's scheduler config: the checkpoint's scheduler_config.json as
 * the manifest carries it (`class_name`, or diffusers' own `_class_name`, picks the class; other
 * `_`-prefixed fields are ignored, and missing fields take each class's own diffusers default, as
 * `from_config` does). The manifest has already refused values no class here runs.
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

/** The class a config names: the manifest's `class_name`, or `_class_name` as diffusers saves it. */
function classNameOf(config: SchedulerConfigJson): unknown {
  return config.class_name ?? config._class_name;
}

/**
 * The scheduler a person picks that is the config's own class (what runs when they pick none).
 * Throws for a class no decoder scheduler here implements.
 */
export function ownDecoderScheduler(config: SchedulerConfigJson): DecoderSchedulerName {
  const own = classNameOf(config) ?? 'DDPMScheduler';
  const entry = Object.entries(DECODER_SCHEDULER_CLASSES).find(([, className]) => className === own);
  if (!entry) {
    throw new SchedulerError(
      'unsupported-config',
      `The decoder's scheduler class ${JSON.stringify(own)} is not one this engine runs (${Object.values(DECODER_SCHEDULER_CLASSES).join(', ')})`,
    );
  }
  return entry[0] as DecoderSchedulerName;
}

/**
 * A decoder scheduler of class `name` from the model set's decoder config: by default the config's
 * own class (the checkpoint's scheduler). Another class is how a person picks DDPM, DDIM or DPM++ 2M
 * over it, built as diffusers' `from_config` builds it: the config's fields that class has carry
 * over (beta schedule, steps_offset, set_alpha_to_one...), the rest take the class's defaults.
 */
export function createDecoderScheduler(
  config: SchedulerConfigJson,
  name: DecoderSchedulerClass = DECODER_SCHEDULER_CLASSES[ownDecoderScheduler(config)],
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
  const className = classNameOf(config);
  if (className !== undefined && className !== 'UnCLIPScheduler') {
    throw new SchedulerError(
      'unsupported-config',
      `The prior needs UnCLIPScheduler, got '${String(className)}'`,
    );
  }
  return new UnCLIPScheduler(config as UnCLIPSchedulerConfig);
}
