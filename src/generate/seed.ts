/** A fresh seed for "random each time": 32 random bits, short enough to read out and type back. */
export function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0] ?? 0;
}
