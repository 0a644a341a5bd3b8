import { useState } from 'react';
import type { RgbaImage } from '../../workers/api';
import { ImagePicker } from '../image-input/ImagePicker';
import { fitToSize, type SourceImage } from '../image-input/load-image';
import type { MixDraft } from './mix';

interface Props {
  readonly drafts: readonly MixDraft[];
  readonly onDrafts: (drafts: readonly MixDraft[]) => void;
}

/** Mixed pictures are encoded by the CLIP image encoder, which takes 224×224. */
const MIX_IMAGE_SIZE = 224;
let nextId = 0;

/** Two or more prompts and pictures, each with a weight, blended into one image. */
export function MixEditor({ drafts, onDrafts }: Props) {
  const total = drafts.reduce((sum, d) => sum + (Number.isFinite(d.weight) ? Math.max(0, d.weight) : 0), 0);
  const replace = (id: string, next: MixDraft) => onDrafts(drafts.map((d) => (d.id === id ? next : d)));
  const add = (kind: MixDraft['kind']) => {
    nextId += 1;
    const id = `mix-added-${nextId}`;
    onDrafts([
      ...drafts,
      kind === 'prompt' ? { id, kind, prompt: '', weight: 1 } : { id, kind, image: null, weight: 1 },
    ]);
  };
  return (
    <div className="mix-editor">
      <ol className="mix-items">
        {drafts.map((draft, index) => (
          <li key={draft.id} className="mix-item">
            <div className="mix-input">
              {draft.kind === 'prompt' ? (
                <label>
                  Prompt {index + 1}
                  <textarea
                    rows={2}
                    value={draft.prompt}
                    onChange={(e) => replace(draft.id, { ...draft, prompt: e.target.value })}
                  />
                </label>
              ) : (
                <MixImage index={index} onImage={(image) => replace(draft.id, { ...draft, image })} />
              )}
            </div>
            <label className="mix-weight">
              Weight of item {index + 1}
              <input
                type="number"
                min={0}
                step={0.1}
                value={Number.isFinite(draft.weight) ? draft.weight : ''}
                onChange={(e) => replace(draft.id, { ...draft, weight: e.target.valueAsNumber })}
              />
              <small>{total > 0 ? `${Math.round((Math.max(0, draft.weight) / total) * 100)}%` : '—'}</small>
            </label>
            <button
              type="button"
              className="link"
              disabled={drafts.length <= 2}
              onClick={() => onDrafts(drafts.filter((d) => d.id !== draft.id))}
              aria-label={`Remove item ${index + 1}`}
            >
              Remove
            </button>
          </li>
        ))}
      </ol>
      <div className="button-row">
        <button type="button" className="secondary" onClick={() => add('prompt')}>
          Add a prompt
        </button>
        <button type="button" className="secondary" onClick={() => add('image')}>
          Add a picture
        </button>
      </div>
    </div>
  );
}

function MixImage({
  index,
  onImage,
}: {
  readonly index: number;
  readonly onImage: (image: RgbaImage | null) => void;
}) {
  const [source, setSource] = useState<SourceImage | null>(null);
  return (
    <ImagePicker
      label={`Picture ${index + 1}`}
      source={source}
      acceptPaste={false}
      width={MIX_IMAGE_SIZE}
      height={MIX_IMAGE_SIZE}
      onSource={(next) => {
        setSource(next);
        onImage(next ? fitToSize(next, MIX_IMAGE_SIZE, MIX_IMAGE_SIZE) : null);
      }}
    />
  );
}
