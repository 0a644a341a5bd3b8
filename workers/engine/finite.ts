/**
 * A NaN or an infinity anywhere in the pipeline ends as an all-black picture that looks like
 * success (MoVQ's output is clamped to [0, 1]). Broken weights, an extreme scheduler config or a
 * GPU computing in too low a precision all do it, so each stage's output is checked once, on the
 * host, where it is anyway: never per step, never an extra readback.
 */
import { KandinskyError } from '../errors';

/** Throws NUMERIC_FAILURE naming `what` when `values` holds a NaN or an infinity. */
export function assertFinite(values: Float32Array, what: string): void {
  let bad = 0;
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) bad++;
  if (bad === 0) return;
  throw new KandinskyError(
    'NUMERIC_FAILURE',
    `${what} hold ${bad} of ${values.length} values that are not numbers (NaN or infinite), which would give a black picture. ` +
      'The model set’s weights or scheduler settings are broken, or the GPU computed in too low a precision: try another precision in the model manager, or another model set.',
  );
}
