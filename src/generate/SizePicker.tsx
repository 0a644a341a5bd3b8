import { useEffect, useId, useState } from 'react';
import type { SizeLimits } from '../../workers/engine/settings';
import { checkCustomSize, presetIdFor, SIZE_PRESETS } from './size-presets';

interface Props {
  readonly width: number;
  readonly height: number;
  readonly limits: SizeLimits;
  readonly onChange: (size: { width: number; height: number }) => void;
}

/** Output size: the presets Kandinsky 2.2 does best, or a custom size in steps of 64. */
export function SizePicker({ width, height, limits, onChange }: Props) {
  const id = useId();
  const [custom, setCustom] = useState(presetIdFor(width, height) === 'custom');
  const [widthText, setWidthText] = useState(String(width));
  const [heightText, setHeightText] = useState(String(height));
  // Follow size changes from outside (reused settings, "match picture").
  useEffect(() => {
    setWidthText(String(width));
    setHeightText(String(height));
    if (presetIdFor(width, height) === 'custom') setCustom(true);
  }, [width, height]);

  const check = checkCustomSize(widthText, heightText, limits);
  const selected = custom ? 'custom' : presetIdFor(width, height);

  const editCustom = (nextWidth: string, nextHeight: string) => {
    setWidthText(nextWidth);
    setHeightText(nextHeight);
    const next = checkCustomSize(nextWidth, nextHeight, limits);
    if (next.ok) onChange({ width: next.width, height: next.height });
  };

  return (
    <fieldset className="size-picker">
      <legend>Size</legend>
      <div className="size-presets">
        {SIZE_PRESETS.map((preset) => (
          <label key={preset.id} className="size-preset">
            <input
              type="radio"
              name={`${id}-size`}
              value={preset.id}
              checked={selected === preset.id}
              onChange={() => {
                setCustom(false);
                onChange({ width: preset.width, height: preset.height });
              }}
            />
            <span
              className="size-shape"
              aria-hidden="true"
              // The preset's shape, fitted in a 1.5rem box: wide ones short, tall ones narrow.
              style={{
                width: `${1.5 * Math.min(1, preset.width / preset.height)}rem`,
                height: `${1.5 * Math.min(1, preset.height / preset.width)}rem`,
                marginInline: `${(1.5 - 1.5 * Math.min(1, preset.width / preset.height)) / 2}rem`,
              }}
            />
            <span>
              {preset.label}
              <small>
                {preset.width}×{preset.height}
              </small>
            </span>
          </label>
        ))}
        <label className="size-preset">
          <input
            type="radio"
            name={`${id}-size`}
            value="custom"
            checked={selected === 'custom'}
            onChange={() => setCustom(true)}
          />
          <span className="size-shape custom" aria-hidden="true" />
          <span>
            Custom<small>steps of {limits.multiple}</small>
          </span>
        </label>
      </div>
      {selected === 'custom' && (
        <div className="custom-size">
          <label>
            Width (px)
            <input
              type="number"
              inputMode="numeric"
              step={limits.multiple}
              min={limits.minSide}
              max={limits.maxSide}
              value={widthText}
              aria-invalid={!check.ok && check.field === 'width'}
              aria-describedby={!check.ok ? `${id}-size-error` : undefined}
              onChange={(e) => editCustom(e.target.value, heightText)}
            />
          </label>
          <span aria-hidden="true">×</span>
          <label>
            Height (px)
            <input
              type="number"
              inputMode="numeric"
              step={limits.multiple}
              min={limits.minSide}
              max={limits.maxSide}
              value={heightText}
              aria-invalid={!check.ok && check.field === 'height'}
              aria-describedby={!check.ok ? `${id}-size-error` : undefined}
              onChange={(e) => editCustom(widthText, e.target.value)}
            />
          </label>
          {!check.ok && (
            <p id={`${id}-size-error`} className="field-error" role="alert" data-testid="size-error">
              {check.message}
            </p>
          )}
        </div>
      )}
    </fieldset>
  );
}
