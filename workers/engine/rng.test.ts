import { describe, expect, it } from 'vitest';
import { compareFloat32, readFixtureFloat32, readFixtureJson } from '../../test-support/fixtures.node';
import { numel } from './math';
import { randnTensor, TorchGenerator, VECTORISED_NORMAL_MIN_NUMEL } from './rng';

interface Draw {
  op: 'randn' | 'rand';
  shape: number[];
  offset: number;
}
interface RngFixture {
  torch_version: string;
  values_file: string;
  cases: { seed: string; draws: Draw[] }[];
  generator_list_cases: { seeds: string[]; shape: number[]; offset: number }[];
  default_generator_case: { shape: number[]; offset: number };
}

const fixture = readFixtureJson<RngFixture>('torch_rng.json');
const torchValues = readFixtureFloat32(fixture.values_file).data;
const expectedAt = (offset: number, shape: readonly number[]) =>
  torchValues.subarray(offset, offset + numel(shape));

/*
 * Tolerances. Uniforms and the scalar (< 16 elements) path are plain integer and double arithmetic:
 * they must match torch exactly. The vectorised path runs Box–Muller in float32 with SLEEF's log/sin/cos
 * (≤ 1 ulp each), so values may differ from ours by a few float32 ulp: we allow 8 ulp relative to the
 * value (8 · 2⁻²³ ≈ 9.5e-7 · |x|), with |x| floored at 0.5 since the ulp of radius·cos(θ) is set by radius.
 */
const VECTORISED_RELATIVE_TOLERANCE = 8 * 2 ** -23;
const RELATIVE_FLOOR = 0.5;

function seedOf(text: string): bigint {
  return BigInt(text);
}

describe('TorchGenerator against torch.randn / torch.rand on the CPU', () => {
  let worstVectorised = { maxAbs: 0, maxRel: 0 };
  let vectorisedValues = 0;
  let exactVectorised = 0;

  it.each(
    fixture.cases.map((c, i) => ({
      ...c,
      name: `#${i} seed ${c.seed}: ${c.draws.map((d) => `${d.op}[${d.shape}]`).join(' → ')}`,
    })),
  )('$name', ({ seed, draws }) => {
    const generator = new TorchGenerator(seedOf(seed));
    for (const draw of draws) {
      const expected = expectedAt(draw.offset, draw.shape);
      const actual = draw.op === 'randn' ? generator.randn(draw.shape) : generator.rand(draw.shape);
      const exactPath = draw.op === 'rand' || expected.length < VECTORISED_NORMAL_MIN_NUMEL;
      if (exactPath) {
        expect(Array.from(actual), `${draw.op}[${draw.shape}]`).toEqual(Array.from(expected));
      } else {
        const { maxAbs, maxRel } = compareFloat32(actual, expected, RELATIVE_FLOOR);
        expect(maxRel, `${draw.op}[${draw.shape}] max abs ${maxAbs}`).toBeLessThanOrEqual(
          VECTORISED_RELATIVE_TOLERANCE,
        );
        worstVectorised = {
          maxAbs: Math.max(worstVectorised.maxAbs, maxAbs),
          maxRel: Math.max(worstVectorised.maxRel, maxRel),
        };
        vectorisedValues += expected.length;
        exactVectorised += actual.filter((v, i) => v === expected[i]).length;
      }
    }
  });

  it('reports the measured error of the vectorised path', () => {
    expect(vectorisedValues).toBeGreaterThan(10_000);
    // Most values must be bit-identical: a systematic error (wrong θ precision, wrong u1/u2 order)
    // would stay inside the ulp tolerance for some values but make exact matches rare.
    expect(exactVectorised / vectorisedValues).toBeGreaterThan(0.75);
    console.info(
      `torch ${fixture.torch_version} randn (vectorised path): ${vectorisedValues} values, ` +
        `${((100 * exactVectorised) / vectorisedValues).toFixed(1)}% bit-identical, ` +
        `worst abs ${worstVectorised.maxAbs.toExponential(2)}, worst rel ${worstVectorised.maxRel.toExponential(2)}`,
    );
  });

  it('starts from torch.Generator()’s default seed without manualSeed', () => {
    const { shape, offset } = fixture.default_generator_case;
    const { maxRel } = compareFloat32(
      new TorchGenerator().randn(shape),
      expectedAt(offset, shape),
      RELATIVE_FLOOR,
    );
    expect(maxRel).toBeLessThanOrEqual(VECTORISED_RELATIVE_TOLERANCE);
  });

  it('drops the cached spare normal when reseeded, like torch', () => {
    const firstDraw = fixture.cases.find(
      (c) => c.draws[0]?.op === 'randn' && c.draws[0].shape.join() === '1',
    );
    if (!firstDraw?.draws[0]) throw new Error('fixture lacks a randn([1]) case');
    const generator = new TorchGenerator(seedOf(firstDraw.seed));
    generator.randn([1]); // leaves the sine half cached
    generator.manualSeed(seedOf(firstDraw.seed));
    expect(Array.from(generator.randn([1]))).toEqual(Array.from(expectedAt(firstDraw.draws[0].offset, [1])));
  });
});

describe('randnTensor (diffusers) with a list of generators', () => {
  it.each(fixture.generator_list_cases)('seeds $seeds, shape $shape', ({ seeds, shape, offset }) => {
    const generators = seeds.map((s) => new TorchGenerator(seedOf(s)));
    const actual = randnTensor(shape, generators);
    const expected = expectedAt(offset, shape);
    const itemNumel = numel(shape.slice(1));
    if (itemNumel < VECTORISED_NORMAL_MIN_NUMEL) {
      expect(Array.from(actual)).toEqual(Array.from(expected));
    } else {
      expect(compareFloat32(actual, expected, RELATIVE_FLOOR).maxRel).toBeLessThanOrEqual(
        VECTORISED_RELATIVE_TOLERANCE,
      );
    }
  });

  it('needs one generator per batch item', () => {
    expect(() => randnTensor([3, 4], [new TorchGenerator(1), new TorchGenerator(2)])).toThrow(RangeError);
  });
});

describe('TorchGenerator.manualSeed', () => {
  it('accepts the 64-bit range torch accepts, negative seeds as two’s complement', () => {
    expect(new TorchGenerator(-1).initialSeed()).toBe(2n ** 64n - 1n);
    expect(new TorchGenerator(2n ** 64n - 1n).initialSeed()).toBe(2n ** 64n - 1n);
    expect(new TorchGenerator(42).initialSeed()).toBe(42n);
  });

  it('rejects seeds torch rejects and numbers that lost precision', () => {
    expect(() => new TorchGenerator(2n ** 64n)).toThrow(RangeError);
    expect(() => new TorchGenerator(-(2n ** 63n) - 1n)).toThrow(RangeError);
    expect(() => new TorchGenerator(2 ** 53)).toThrow(RangeError);
    expect(() => new TorchGenerator(1.5)).toThrow(RangeError);
  });

  it('rejects negative or fractional dimensions', () => {
    expect(() => new TorchGenerator(0).randn([2, -1])).toThrow(RangeError);
    expect(() => new TorchGenerator(0).randn([2.5])).toThrow(RangeError);
  });
});
