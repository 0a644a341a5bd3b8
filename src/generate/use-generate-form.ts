import { useCallback, useState } from 'react';
import type { GenerationSettings } from '../../workers/api';
import { DEFAULT_SETTINGS } from '../../workers/engine/settings';
import type { SourceImage } from '../image-input/load-image';
import { EMPTY_MASK, type MaskDrawing } from '../inpaint/mask';
import type { MixDraft } from '../mix/mix';
import type { Tab } from './build-request';

/** Everything on the generate screen; lifted to the app so the gallery can fill it in. */
export function useGenerateForm() {
  const [tab, setTab] = useState<Tab>('txt2img');
  const [settings, setSettings] = useState<GenerationSettings>(DEFAULT_SETTINGS);
  const [randomSeed, setRandomSeed] = useState(true);
  const [source, setSourceState] = useState<SourceImage | null>(null);
  const [depthSource, setDepthSource] = useState<'photo' | 'depth-map'>('photo');
  const [mask, setMask] = useState<MaskDrawing>(EMPTY_MASK);
  const [mixDrafts, setMixDrafts] = useState<readonly MixDraft[]>([
    { id: 'mix-1', kind: 'prompt', prompt: '', weight: 1 },
    { id: 'mix-2', kind: 'prompt', prompt: '', weight: 1 },
  ]);

  const update = useCallback((patch: Partial<GenerationSettings>) => {
    setSettings((previous) => ({ ...previous, ...patch }));
  }, []);

  /** A new picture starts a new mask: strokes drawn on another picture mean nothing here. */
  const setSource = useCallback((next: SourceImage | null) => {
    setSourceState((previous) => {
      if (previous && previous !== next) previous.bitmap.close();
      return next;
    });
    setMask(EMPTY_MASK);
  }, []);

  /** "Reuse settings": everything as it was, including the seed (so random is switched off). */
  const reuseSettings = useCallback((reused: GenerationSettings) => {
    setSettings(reused);
    setTab(reused.mode);
    setRandomSeed(false);
  }, []);

  return {
    tab,
    setTab,
    settings,
    update,
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
  };
}

export type GenerateForm = ReturnType<typeof useGenerateForm>;
