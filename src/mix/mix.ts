/**
 * Image mixing ("interpolate" in diffusers' Kandinsky 2.2 prior): several prompts and pictures,
 * each with a weight, blended into one image embedding that the text→image decoder then draws.
 * The worker runs it from GenerateRequest's `mix` (workers/engine/stages/mix.ts reproduces diffusers).
 */
import type { GenerateRequest, MixItem, RgbaImage } from '../../workers/api';

export type { MixItem };

/** A generation request with a mix (GenerateRequest's `mix` field). */
export type MixGenerateRequest = GenerateRequest;

/** A row in the mix editor: a prompt, or a picture (not yet loaded: image null). */
export type MixDraft =
  | { readonly id: string; readonly kind: 'prompt'; readonly prompt: string; readonly weight: number }
  | {
      readonly id: string;
      readonly kind: 'image';
      readonly image: RgbaImage | null;
      readonly weight: number;
    };

export type MixCheck =
  | { readonly ok: true; readonly items: readonly MixItem[] }
  | { readonly ok: false; readonly message: string };

/**
 * Checks the rows and turns them into MixItems with weights summing to 1 (diffusers' interpolate
 * takes the weights as given; normalising here makes "1 and 3" mean "25% and 75%" as people expect).
 */
export function buildMix(drafts: readonly MixDraft[]): MixCheck {
  if (drafts.length < 2) return { ok: false, message: 'A mix needs at least two prompts or images.' };
  for (const [index, draft] of drafts.entries()) {
    const row = `Mix item ${index + 1}`;
    if (!Number.isFinite(draft.weight) || draft.weight < 0) {
      return { ok: false, message: `${row}: the weight must be zero or more.` };
    }
    if (draft.kind === 'prompt' && draft.prompt.trim() === '') {
      return { ok: false, message: `${row}: write a prompt or remove the row.` };
    }
    if (draft.kind === 'image' && draft.image === null) {
      return { ok: false, message: `${row}: choose a picture or remove the row.` };
    }
  }
  const total = drafts.reduce((sum, d) => sum + d.weight, 0);
  if (total <= 0) return { ok: false, message: 'At least one weight must be above zero.' };
  const items = drafts.map((draft): MixItem => {
    const weight = draft.weight / total;
    return draft.kind === 'prompt'
      ? { kind: 'prompt', prompt: draft.prompt, weight }
      : { kind: 'image', image: draft.image as RgbaImage, weight };
  });
  return { ok: true, items };
}
