/**
 * A bit-for-bit port of PyTorch's CPU random generator (`torch.Generator()` / `torch.manual_seed`),
 * so a seed typed in the app gives the same initial noise as diffusers on the CPU.
 *
 * Three behaviours of torch's CPU kernels matter and are reproduced here:
 * - seeding: only the low 32 bits of the 64-bit seed reach mt19937 (torch's `init_with_uint32`);
 * - `randn` of 16 or more float32 elements: every 24-bit float uniform is drawn first, then Box–Muller
 *   runs over blocks of 16 (first half = u1, second half = u2); when the size is not a multiple of 16
 *   the last 16 slots are overwritten from 16 fresh uniforms;
 * - `randn` of fewer than 16 elements: double-precision Box–Muller from 53-bit uniforms, one value per
 *   element, the spare sine value cached in the generator and consumed by the next small draw.
 */

const STATE_SIZE = 624;
const SHIFT_SIZE = 397;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;
const MATRIX_A = 0x9908b0df;

const UINT64_MAX = (1n << 64n) - 1n;
const INT64_MIN = -(1n << 63n);

/** Float32 2π as torch's AVX2 Box–Muller multiplies it (a float constant, not double). */
const TWO_PI_F32 = Math.fround(2 * Math.PI);
/** 2^-24: a float32 uniform keeps 24 random bits (float's mantissa digits). */
const FLOAT_UNIFORM_SCALE = 2 ** -24;

/** 2^-53: a float64 uniform keeps 53 random bits. */
import { numel } from './math';

const DOUBLE_UNIFORM_SCALE = 2 ** -53;

/** Below this element count torch uses the scalar double-precision path (and its normal cache). */
export const VECTORISED_NORMAL_MIN_NUMEL = 16;

/**
 * torch.Generator on the CPU: mt19937 plus the cached spare normal of the scalar Box–Muller path.
 */
export class TorchGenerator {
  private readonly state = new Uint32Array(STATE_SIZE);
  private index = STATE_SIZE;
  private seedValue = 0n;
  /** Spare sine half of the last double Box–Muller pair; torch keeps it across calls. */
  private cachedDoubleNormal: number | undefined;

  constructor(seed: number | bigint = 67280421310721n) {
    // torch.Generator() starts from default_rng_seed_val = 67280421310721.
    this.manualSeed(seed);
  }

  /**
   * Same as `generator.manual_seed(seed)`: accepts 0..2^64-1, and negative seeds down to -2^63 which torch
   * reinterprets as their two's-complement uint64. Number seeds must be safe integers (use a bigint beyond
   * 2^53 so no digit is silently rounded away).
   */
  manualSeed(seed: number | bigint): this {
    let big: bigint;
    if (typeof seed === 'number') {
      if (!Number.isSafeInteger(seed)) {
        throw new RangeError(`Seed must be a safe integer (use a bigint above 2^53), got ${seed}`);
      }
      big = BigInt(seed);
    } else {
      big = seed;
    }
    if (big > UINT64_MAX || big < INT64_MIN) {
      throw new RangeError(`Seed must fit in 64 bits (-2^63 .. 2^64-1), got ${big}`);
    }
    this.seedValue = BigInt.asUintN(64, big);
    this.cachedDoubleNormal = undefined;
    // torch's mt19937 constructor takes a uint64 but initialises from its low 32 bits only, so seeds
    // that differ only above bit 31 (5 and 2^32+5) give identical streams: documented torch behaviour.
    const state = this.state;
    state[0] = Number(this.seedValue & 0xffffffffn);
    for (let i = 1; i < STATE_SIZE; i++) {
      const prev = state[i - 1] as number;
      state[i] = Math.imul(1812433253, prev ^ (prev >>> 30)) + i;
    }
    this.index = STATE_SIZE;
    return this;
  }

  /** The seed as `generator.initial_seed()` reports it (uint64). */
  initialSeed(): bigint {
    return this.seedValue;
  }

  /** Next raw 32-bit output of mt19937 (torch's `random()`). */
  nextUint32(): number {
    if (this.index >= STATE_SIZE) this.twist();
    let y = this.state[this.index++] as number;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** Uniform in [0, 1) with float32's 24 bits, as torch's uniform_real_distribution<float>. */
  nextFloatUniform(): number {
    return (this.nextUint32() & 0xffffff) * FLOAT_UNIFORM_SCALE;
  }

  /**
   * Uniform in [0, 1) with 53 bits, as torch's uniform_real_distribution<double>: torch's random64() puts
   * the first 32-bit draw in the high word, and the 53-bit mask keeps its low 21 bits.
   */
  nextDoubleUniform(): number {
    const high = this.nextUint32() & 0x1fffff;
    const low = this.nextUint32();
    return (high * 2 ** 32 + low) * DOUBLE_UNIFORM_SCALE;
  }

  /** One standard normal from torch's scalar (double) Box–Muller, honouring and refilling the cache. */
  nextDoubleNormal(): number {
    const cached = this.cachedDoubleNormal;
    if (cached !== undefined) {
      this.cachedDoubleNormal = undefined;
      return cached;
    }
    const u1 = this.nextDoubleUniform();
    const u2 = this.nextDoubleUniform();
    const radius = Math.sqrt(-2 * Math.log1p(-u2));
    const theta = 2 * Math.PI * u1;
    this.cachedDoubleNormal = radius * Math.sin(theta);
    return radius * Math.cos(theta);
  }

  /** `torch.randn(shape, generator=g, dtype=torch.float32)` on the CPU. */
  randn(shape: readonly number[]): Float32Array {
    const count = numel(shape);
    const out = new Float32Array(count);
    if (count < VECTORISED_NORMAL_MIN_NUMEL) {
      for (let i = 0; i < count; i++) out[i] = this.nextDoubleNormal();
      return out;
    }
    for (let i = 0; i < count; i++) out[i] = this.nextFloatUniform();
    for (let start = 0; start + 16 <= count; start += 16) boxMullerBlock16(out, start);
    if (count % 16 !== 0) {
      const tail = count - 16;
      for (let i = 0; i < 16; i++) out[tail + i] = this.nextFloatUniform();
      boxMullerBlock16(out, tail);
    }
    return out;
  }

  /** `torch.rand(shape, generator=g, dtype=torch.float32)` on the CPU: one 24-bit uniform per element. */
  rand(shape: readonly number[]): Float32Array {
    const count = numel(shape);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = this.nextFloatUniform();
    return out;
  }

  private twist(): void {
    const state = this.state;
    for (let i = 0; i < STATE_SIZE; i++) {
      const y = ((state[i] as number) & UPPER_MASK) | ((state[(i + 1) % STATE_SIZE] as number) & LOWER_MASK);
      state[i] = (state[(i + SHIFT_SIZE) % STATE_SIZE] as number) ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    this.index = 0;
  }
}

/**
 * Box–Muller over 16 float uniforms in place, in float32 arithmetic like torch's AVX2 kernel
 * (float 2π, float radius). torch evaluates log/sin/cos with SLEEF's 1-ulp float functions, so
 * values can differ from this by a few ulp; the tests state that tolerance.
 */
function boxMullerBlock16(data: Float32Array, start: number): void {
  for (let j = 0; j < 8; j++) {
    const u1 = 1 - (data[start + j] as number); // (0, 1]: never log(0)
    const u2 = data[start + j + 8] as number;
    const radius = Math.fround(Math.sqrt(Math.fround(-2 * Math.fround(Math.log(u1)))));
    const theta = Math.fround(TWO_PI_F32 * u2);
    data[start + j] = radius * Math.fround(Math.cos(theta));
    data[start + j + 8] = radius * Math.fround(Math.sin(theta));
  }
}

/**
 * diffusers' `randn_tensor` with CPU generators: one generator draws the whole shape at once; a list of
 * generators (one per batch item) draws each item as its own (1, ...rest) tensor, so the per-item numel
 * decides which torch path each draw takes. A list of length 1 behaves like a single generator.
 */
export function randnTensor(
  shape: readonly number[],
  generator: TorchGenerator | readonly TorchGenerator[],
): Float32Array {
  if (!Array.isArray(generator) || generator.length === 1) {
    const single = Array.isArray(generator)
      ? (generator[0] as TorchGenerator)
      : (generator as TorchGenerator);
    return single.randn(shape);
  }
  const generators = generator as readonly TorchGenerator[];
  const batch = shape[0];
  if (batch === undefined || generators.length < batch) {
    throw new RangeError(
      `randnTensor needs one generator per batch item: ${generators.length} for shape [${shape}]`,
    );
  }
  const itemShape = [1, ...shape.slice(1)];
  const itemNumel = numel(itemShape);
  const out = new Float32Array(batch * itemNumel);
  for (let b = 0; b < batch; b++) {
    out.set((generators[b] as TorchGenerator).randn(itemShape), b * itemNumel);
  }
  return out;
}
