import { useEffect, useId, useRef, useState } from 'react';
import type { SizeLimits } from '../../workers/engine/settings';
import { checkCustomSize, presetIdFor, presetProblem, SIZE_PRESETS, sizeRangeText } from './size-presets';

interface Props {
  readonly width: number;
  readonly height: number;
  readonly limits: SizeLimits;
  readonly onChange: (size: { width: number; height: number }) => void;
}

/**
 * Output size: the presets Kandinsky 2.2 does best, or a custom size in steps of 64. The set's
 * range is shown up front; presets outside it are disabled and say why.
 */
export function SizePicker({ width, height, limits, onChange }: Props) {
  const id = useId();
  const [custom, setCustom] = useState(presetIdFor(width, height) === 'custom');
  const [widthText, setWidthText] = useState(String(width));
  const [heightText, setHeightText] = useState(String(height));
  /** The size last typed in the custom fields: typing a preset's size keeps the fields open. */
  const typed = useRef<{ width: number; height: number } | null>(null);
  // Follow size changes from outside (reused settings, an imported PNG, "match picture", the
  // device's defaults): a preset's size shows as that preset, any other as custom.
  useEffect(() => {
    setWidthText(String(width));
    setHeightText(String(height));
    const fromTyping = typed.current?.width === width && typed.current.height === height;
    if (presetIdFor(width, height) === 'custom') setCustom(true);
    else if (!fromTyping) setCustom(false);
  }, [width, height]);

  // A custom size typed before the model set's own limits were known (the app starts with
  // Kandinsky's) is applied as soon as the set's limits allow it, not silently dropped.
  // biome-ignore lint/correctness/useExhaustiveDependencies: only a change of limits re-applies the typed size
  useEffect(() => {
    if (!custom) return;
    const next = checkCustomSize(widthText, heightText, limits);
    const typed = { width: Number(widthText), height: Number(heightText) };
    if (next.ok && (typed.width !== width || typed.height !== height)) onChange(typed);
  }, [limits]);

  const check = checkCustomSize(widthText, heightText, limits);
  const selected = custom ? 'custom' : presetIdFor(width, height);

  const editCustom = (nextWidth: string, nextHeight: string) => {
    setWidthText(nextWidth);
    setHeightText(nextHeight);
    // The settings keep the size as typed; the request rounds it up (build-request.ts), as diffusers does.
    if (checkCustomSize(nextWidth, nextHeight, limits).ok) {
      typed.current = { width: Number(nextWidth), height: Number(nextHeight) };
      onChange(typed.current);
    }
  };

  return (
    <fieldset className="size-picker">
      <legend>Size</legend>
      <p className="hint size-range" id={`${id}-range`} data-testid="size-range">
        {sizeRangeText(limits)}
      </p>
      <div className="size-presets">
        {SIZE_PRESETS.map((preset) => {
          const problem = presetProblem(preset, limits);
          return (
            <label
              key={preset.id}
              className="size-preset"
              title={problem ?? undefined}
              data-disabled={problem !== null || undefined}
            >
              <input
                type="radio"
                name={`${id}-size`}
                value={preset.id}
                checked={selected === preset.id}
                disabled={problem !== null}
                aria-describedby={problem ? `${id}-range` : undefined}
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
          );
        })}
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
            Custom<small>rounds up to {limits.multiple}s</small>
          </span>
        </label>
      </div>
      {selected === 'custom' && (
        <div className="custom-size">
          <SideInput
            label="Width (px)"
            value={widthText}
            limits={limits}
            invalid={!check.ok && check.field === 'width'}
            errorId={!check.ok ? `${id}-size-error` : undefined}
            onChange={(value) => editCustom(value, heightText)}
          />
          <span aria-hidden="true">×</span>
          <SideInput
            label="Height (px)"
            value={heightText}
            limits={limits}
            invalid={!check.ok && check.field === 'height'}
            errorId={!check.ok ? `${id}-size-error` : undefined}
            onChange={(value) => editCustom(widthText, value)}
          />
          {!check.ok && (
            <p id={`${id}-size-error`} className="field-error" role="alert" data-testid="size-error">
              {check.message}
            </p>
          )}
          {check.ok && check.note && (
            <p className="field-note" role="status" data-testid="size-note">
              {check.note}
            </p>
          )}
        </div>
      )}
    </fieldset>
  );
}

function SideInput(props: {
  readonly label: string;
  readonly value: string;
  readonly limits: SizeLimits;
  readonly invalid: boolean;
  readonly errorId: string | undefined;
  readonly onChange: (value: string) => void;
}) {
  const { limits } = props;
  return (
    <label>
      {props.label}
      <input
        type="number"
        inputMode="numeric"
        step={limits.multiple}
        min={limits.minSide}
        max={limits.maxSide}
        value={props.value}
        aria-invalid={props.invalid}
        aria-describedby={props.errorId}
        onChange={(e) => props.onChange(e.target.value)}
      />
    </label>
  );
}
