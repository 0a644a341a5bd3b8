import { describe, expect, it } from 'vitest';
import { largestBufferBytes, memoryWarning } from './memory-estimate';

const GiB = 2 ** 30;
const base = { width: 1024, height: 1024, numImages: 1, guided: true, bytesPerValue: 2 };

describe('memory estimate', () => {
  it('sizes the first attention score matrix: batch × 12 heads × T × (T + 10)', () => {
    // 1024² → 4096 tokens; CFG batch 2; fp16.
    expect(largestBufferBytes(base)).toBe(2 * 12 * 4096 * 4106 * 2);
    expect(largestBufferBytes({ ...base, bytesPerValue: 4 })).toBe(2 * largestBufferBytes(base));
    expect(largestBufferBytes({ ...base, guided: false })).toBe(largestBufferBytes(base) / 2);
  });

  it('is quiet when the size fits and says what would fit when it does not', () => {
    // 1280² at fp16 with guidance: 2 × 12 × 6400 × 6410 × 2 B = 1.83 GiB, the largest square under 2 GiB.
    expect(memoryWarning(base, 2 * GiB)).toBeNull();
    expect(memoryWarning({ ...base, width: 2048, height: 2048 }, 2 * GiB)).toMatch(
      /^2048×2048 needs a 12\.0 GiB GPU buffer; this device allows 2\.0 GiB\. Try 1280×1280 or smaller\.$/,
    );
    expect(memoryWarning({ ...base, numImages: 4 }, 1 * GiB)).toMatch(
      /Make one image at a time, or try \d+×\d+\.$/,
    );
  });
});
