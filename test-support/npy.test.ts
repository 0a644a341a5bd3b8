import { describe, expect, it } from 'vitest';
import { readFixtureBytes, readFixtureJson } from './fixtures.node';
import { NpyFormatError, parseNpy, parseNpyFloat32 } from './npy';

interface Sample {
  file: string;
  dtype: string;
  shape: number[];
  fortran_order: boolean;
  values: (number | string | boolean)[];
}

// Written by numpy's own np.lib.format.write_array (models/export/reference_schedulers.py).
const samples = readFixtureJson<Sample[]>('npy_samples.json');
const readable = samples.filter((s) => !s.fortran_order && ['<f4', '<i4', '<i8', '|b1'].includes(s.dtype));

const expectedValue = (dtype: string, v: number | string | boolean) => {
  if (dtype === '<i8') return BigInt(v as string);
  if (dtype === '|b1') return v ? 1 : 0;
  return typeof v === 'string' ? Number(v.replace('inf', 'Infinity')) : v;
};

describe('parseNpy on files numpy wrote', () => {
  it('covers every supported dtype and header version 2', () => {
    expect(new Set(readable.map((s) => s.dtype))).toEqual(new Set(['<f4', '<i4', '<i8', '|b1']));
    expect(readFixtureBytes('npy_f4_v2.npy')[6]).toBe(2);
  });

  it.each(readable)('$file', (sample) => {
    const array = parseNpy(readFixtureBytes(sample.file));
    expect(array.dtype).toBe(sample.dtype);
    expect(array.shape).toEqual(sample.shape);
    expect(Array.from(array.data as ArrayLike<number | bigint>)).toEqual(
      sample.values.map((v) => expectedValue(sample.dtype, v)),
    );
  });

  it('keeps -0 and float32 rounding exactly', () => {
    const { data } = parseNpyFloat32(readFixtureBytes('npy_f4_2x3.npy'));
    expect(Object.is(data[4], -0)).toBe(true);
    expect(data[2]).toBe(Math.fround(3e-8));
  });

  it('refuses Fortran order and dtypes it does not read, naming them', () => {
    expect(() => parseNpy(readFixtureBytes('npy_f4_fortran.npy'))).toThrow(/Fortran/);
    expect(() => parseNpy(readFixtureBytes('npy_f8_2.npy'))).toThrow(/'<f8'/);
    expect(() => parseNpyFloat32(readFixtureBytes('npy_i4_2x2.npy'))).toThrow(NpyFormatError);
  });

  it('refuses non-npy and truncated bytes', () => {
    const good = readFixtureBytes('npy_f4_2x3.npy');
    expect(() => parseNpy(new TextEncoder().encode('{"not": "npy"}'))).toThrow(NpyFormatError);
    expect(() => parseNpy(good.subarray(0, good.length - 1))).toThrow(/truncated/);
    expect(() => parseNpy(good.subarray(0, 20))).toThrow(NpyFormatError);
  });

  it('reads an array that starts at an odd offset inside a larger buffer', () => {
    const file = readFixtureBytes('npy_i8_3.npy');
    const padded = new Uint8Array(file.length + 3);
    padded.set(file, 3);
    const recorded = samples.find((s) => s.file === 'npy_i8_3.npy')?.values ?? [];
    expect(Array.from(parseNpy(padded.subarray(3)).data as BigInt64Array)).toEqual(
      recorded.map((v) => expectedValue('<i8', v)),
    );
  });
});
