import { type SetStateAction, useCallback, useState } from 'react';
import type { GenerationSettings } from '../../workers/api';
import type { SourceImage } from '../image-input/load-image';
import { EMPTY_MASK, type MaskDrawing } from '../inpaint/mask';
import type { MixDraft } from '../mix/mix';
import { usePersistentState } from '../use-persistent-state';
import type { Tab } from './build-request';
import { DEFAULT_FORM, FORM_STORAGE_KEY, restoreForm, type StoredForm } from './form-storage';

/**
 * Everything on the generate screen; lifted to the app so the gallery can fill it in. The mode,
 * settings and seed choice survive a reload (form-storage.ts); pictures and the mask don't.
 */
export function useGenerateForm() {
  const [stored, setStored] = usePersistentState<StoredForm>(FORM_STORAGE_KEY, DEFAULT_FORM, restoreForm);
  const { tab, settings, randomSeed } = stored;
  const [source, setSourceState] = useState<SourceImage | null>(null);
  const [depthSource, setDepthSource] = useState<'photo' | 'depth-map'>('photo');
  const [mask, setMask] = useState<MaskDrawing>(EMPTY_MASK);
  const [mixDrafts, setMixDrafts] = useState<readonly MixDraft[]>([
    { id: 'mix-1', kind: 'prompt', prompt: '', weight: 1 },
    { id: 'mix-2', kind: 'prompt', prompt: '', weight: 1 },
  ]);

  const setTab = useCallback(
    (next: Tab) => setStored((previous) => ({ ...previous, tab: next })),
    [setStored],
  );
  const setRandomSeed = useCallback(
    (next: SetStateAction<boolean>) =>
      setStored((previous) => ({
        ...previous,
        randomSeed: typeof next === 'function' ? next(previous.randomSeed) : next,
      })),
    [setStored],
  );
  const update = useCallback(
    (patch: Partial<GenerationSettings>) =>
      setStored((previous) => ({ ...previous, settings: { ...previous.settings, ...patch } })),
    [setStored],
  );

  /**
   * `patch` only if the settings at the moment of the update pass `when`: a decision made from a
   * rendered form must not undo a change that landed in between (an imported PNG, a click).
   */
  const updateIf = useCallback(
    (when: (current: GenerationSettings) => boolean, patch: Partial<GenerationSettings>) =>
      setStored((previous) =>
        when(previous.settings) ? { ...previous, settings: { ...previous.settings, ...patch } } : previous,
      ),
    [setStored],
  );

  /** A new picture starts a new mask: strokes drawn on another picture mean nothing here. */
  const setSource = useCallback((next: SourceImage | null) => {
    setSourceState((previous) => {
      if (previous && previous !== next) previous.bitmap.close();
      return next;
    });
    setMask(EMPTY_MASK);
  }, []);

  /** "Reuse settings": everything as it was, including the seed (so random is switched off). */
  const reuseSettings = useCallback(
    (reused: GenerationSettings) => setStored({ tab: reused.mode, settings: reused, randomSeed: false }),
    [setStored],
  );

  /** Every setting back to its default (the pictures and the mask stay). */
  const reset = useCallback(() => setStored(DEFAULT_FORM), [setStored]);

  return {
    tab,
    setTab,
    settings,
    update,
    updateIf,
    randomSeed,
    setRandomSeed,
    source,
    setSource,
    depthSource,
    setDepthSource,
    mask,
    setMask,
    mixDrafts,
    setMixDrafts,
    reuseSettings,
    reset,
  };
}

export type GenerateForm = ReturnType<typeof useGenerateForm>;
