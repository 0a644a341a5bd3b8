/** Float comparisons for parity checks against recorded reference tensors (Node and browser). */

/** Largest |actual − expected| and the largest of it relative to max(|expected|, floor). */
export function compareFloat32(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  relativeFloor = 1,
): { maxAbs: number; maxRel: number; worstIndex: number } {
  if (actual.length !== expected.length) {
    throw new Error(`length mismatch: ${actual.length} vs ${expected.length}`);
  }
  let maxAbs = 0;
  let maxRel = 0;
  let worstIndex = -1;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i] as number;
    const e = expected[i] as number;
    const bothNaN = Number.isNaN(a) && Number.isNaN(e);
    const difference = a === e || bothNaN ? 0 : Math.abs(a - e);
    const abs = Number.isNaN(difference) ? Number.POSITIVE_INFINITY : difference;
    const rel = abs / Math.max(Math.abs(e), relativeFloor);
    if (rel > maxRel || worstIndex < 0) worstIndex = i;
    maxAbs = Math.max(maxAbs, abs);
    maxRel = Math.max(maxRel, rel);
  }
  return { maxAbs, maxRel, worstIndex };
}
