/**
 * The generate form as it is kept across reloads: the mode, the settings and whether the seed is
 * random. Pictures and the mask are not kept (they can be large, and are the person's own files).
 */
import {
  DECODER_SCHEDULERS,
  DEFAULT_SETTINGS,
  type GenerationSettings,
  MODES,
} from '../../workers/engine/settings';
import { TABS, type Tab } from './build-request';

export const FORM_STORAGE_KEY = 'kandinsky-web:form';

export interface StoredForm {
  readonly tab: Tab;
  readonly settings: GenerationSettings;
  readonly randomSeed: boolean;
}

export const DEFAULT_FORM: StoredForm = { tab: 'txt2img', settings: DEFAULT_SETTINGS, randomSeed: true };

const TEXT_FIELDS = ['prompt', 'negativePrompt'] as const;
const NUMBER_FIELDS = [
  'seed',
  'width',
  'height',
  'priorSteps',
  'priorGuidance',
  'steps',
  'guidance',
  'numImages',
  'strength',
] as const;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function oneOf<T extends string>(values: readonly T[], value: unknown): value is T {
  return typeof value === 'string' && (values as readonly string[]).includes(value);
}

/**
 * The form a stored value describes, field by field: each field of the wrong type (or missing, or
 * from an older version) takes its default, so one bad field never loses the rest. Range checks are
 * left to the form, which shows them next to the field as it does for typed values.
 */
export function restoreForm(stored: unknown): StoredForm | undefined {
  if (!isRecord(stored)) return undefined;
  const saved = isRecord(stored.settings) ? stored.settings : {};
  const settings: { -readonly [K in keyof GenerationSettings]: GenerationSettings[K] } = {
    ...DEFAULT_SETTINGS,
  };
  for (const field of TEXT_FIELDS) {
    const value = saved[field];
    if (typeof value === 'string') settings[field] = value;
  }
  for (const field of NUMBER_FIELDS) {
    const value = saved[field];
    if (typeof value === 'number' && Number.isFinite(value)) settings[field] = value;
  }
  if (oneOf(MODES, saved.mode)) settings.mode = saved.mode;
  if (oneOf(DECODER_SCHEDULERS, saved.scheduler)) settings.scheduler = saved.scheduler;
  // 'combined' is the default and is stored as an absent field, as the form does.
  if (saved.seedMode === 'separate') settings.seedMode = 'separate';
  if (typeof saved.priorStrength === 'number' && Number.isFinite(saved.priorStrength)) {
    settings.priorStrength = saved.priorStrength;
  }
  return {
    tab: oneOf(TABS, stored.tab) ? stored.tab : DEFAULT_FORM.tab,
    settings,
    randomSeed: typeof stored.randomSeed === 'boolean' ? stored.randomSeed : DEFAULT_FORM.randomSeed,
  };
}
