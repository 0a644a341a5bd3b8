/** Row arithmetic on batched float32 tensors held on the host (row = first dimension). */

/** Rows `[a; b; …]` of tensors with the same row size (torch `cat` on dim 0). */
export function concatRows(...parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** `times` copies of one row block, one after another (torch `repeat` on dim 0). */
export function repeatRows(block: Float32Array, times: number): Float32Array {
  return concatRows(...Array.from({ length: times }, () => block));
}

/**
 * Classifier-free guidance on a batch `[uncond; cond]`: `u + s · (c − u)` in float32, for `count`
 * values; `pick(i)` is where value i sits in each half, `halfLength` the size of a half.
 */
export function guide(
  batched: Float32Array,
  halfLength: number,
  pick: (i: number) => number,
  count: number,
  scale: number,
): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const at = pick(i);
    const u = batched[at] ?? 0;
    const c = batched[halfLength + at] ?? 0;
    out[i] = Math.fround(u + Math.fround(scale * Math.fround(c - u)));
  }
  return out;
}
