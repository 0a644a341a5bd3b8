import { useEffect, useMemo, useRef, useState } from 'react';
import type { ModelSetInfo, Precision, QualitySample } from '../../workers/api';
import { toWireError, type WireError } from '../../workers/errors';
import { useObjectUrl } from '../use-object-url';
import { qualityCompareText } from './quality-compare';

type PrecisionOptionInfo = ModelSetInfo['precision']['options'][number];

interface Props {
  readonly precision: Precision;
  readonly quality: NonNullable<PrecisionOptionInfo['quality']>;
  /** Reads the option's two pictures (the worker's readQualitySample); null: it has none. */
  readonly load: (precision: Precision) => Promise<QualitySample | null>;
  readonly disabled: boolean;
}

type Pair = { readonly reference: Blob; readonly picture: Blob };

/**
 * "Compare with full precision": a precision option's quality sample (the fp32 PyTorch picture
 * and the option's own, of the export's first calibration run) side by side, loaded only when
 * asked for. The pictures live as object URLs while shown and are revoked after.
 */
export function QualityCompare({ precision, quality, load, disabled }: Props) {
  const [state, setState] = useState<'idle' | 'loading' | 'shown'>('idle');
  const [pair, setPair] = useState<Pair | null>(null);
  const [error, setError] = useState<WireError | null>(null);
  const live = useRef(true);
  useEffect(() => {
    live.current = true;
    return () => {
      live.current = false;
    };
  }, []);
  const referenceUrl = useObjectUrl(pair?.reference);
  const pictureUrl = useObjectUrl(pair?.picture);
  const sample = quality.sample;
  const text = useMemo(
    () => (sample ? qualityCompareText(precision, { ...quality, sample }) : null),
    [precision, quality, sample],
  );
  if (!text) return null;

  const show = async () => {
    setState('loading');
    setError(null);
    try {
      const read = await load(precision);
      if (!live.current) return;
      if (!read) {
        setError({ code: 'INVALID_INPUT', message: `The ${precision} option records no sample pictures.` });
        setState('idle');
        return;
      }
      setPair({
        reference: new Blob([read.reference], { type: 'image/png' }),
        picture: new Blob([read.picture], { type: 'image/png' }),
      });
      setState('shown');
    } catch (e) {
      if (!live.current) return;
      setError(toWireError(e));
      setState('idle');
    }
  };

  return (
    <div className="quality-compare" data-testid="quality-compare" data-precision={precision}>
      {state === 'shown' ? (
        <button
          type="button"
          className="secondary"
          onClick={() => {
            setPair(null);
            setState('idle');
          }}
        >
          Hide the comparison
        </button>
      ) : (
        <button
          type="button"
          className="secondary"
          disabled={disabled || state === 'loading'}
          aria-busy={state === 'loading'}
          onClick={() => void show()}
          data-testid="quality-compare-load"
        >
          {state === 'loading' ? 'Loading the pictures…' : text.button}
        </button>
      )}
      {error && (
        <p className="error" role="alert" data-code={error.code}>
          {error.message}
        </p>
      )}
      {state === 'shown' && referenceUrl && pictureUrl && (
        <>
          <div className="quality-pair">
            <figure>
              <img src={referenceUrl} alt={text.referenceAlt} data-testid="quality-reference" />
              <figcaption>{text.referenceCaption}</figcaption>
            </figure>
            <figure>
              <img src={pictureUrl} alt={text.pictureAlt} data-testid="quality-picture" />
              <figcaption>{text.pictureCaption}</figcaption>
            </figure>
          </div>
          <p className="detail">{text.details}</p>
        </>
      )}
    </div>
  );
}
