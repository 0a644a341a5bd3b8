/** Small numeric helpers that several stages share, each matching the Python it stands for. */

/** numpy's and Python's round (half to even), which diffusers and transformers use. */
export function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** The element count of a tensor of `shape`; throws on a dimension that is not a whole number ≥ 0. */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const dim of shape) {
    if (!Number.isInteger(dim) || dim < 0) {
      throw new RangeError(`Tensor dimension must be a non-negative integer, got ${dim}`);
    }
    n *= dim;
  }
  return n;
}
