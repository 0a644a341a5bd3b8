import { describe, expect, it } from 'vitest';
import { formatBytes } from '../../workers/format';
import { precisionOptionLabel } from './precision-label';

const quality = {
  psnr: 34.56,
  ssim: 0.97,
  embeddingCosine: 0.9999,
  prompts: 3,
  seeds: 2,
  steps: 25,
  priorSteps: 25,
  size: 512,
};
const option = (extra: Partial<Parameters<typeof precisionOptionLabel>[1] & object> = {}) => ({
  precision: 'int4c6' as const,
  requiredFeatures: [],
  supported: true,
  textToImageBytes: 1_973_736_048,
  checkCosine: 0.9993,
  quality: null,
  ...extra,
});

describe('precisionOptionLabel', () => {
  it('shows the size and the end-to-end figure in words, in preference to the --check cosine', () => {
    expect(precisionOptionLabel('int4c6', option({ quality }))).toBe(
      `int4, 6-bit convolutions · ${formatBytes(1_973_736_048)} · pictures: small differences (PSNR 34.6 dB)`,
    );
    expect(precisionOptionLabel('int4c6', option({ quality: { ...quality, psnr: 12.2 } }))).toMatch(
      /pictures: visible differences \(PSNR 12\.2 dB\)$/,
    );
    expect(
      precisionOptionLabel('fp16', option({ precision: 'fp16', quality: { ...quality, psnr: 48 } })),
    ).toMatch(/· pictures: nearly identical to full precision \(PSNR 48\.0 dB\)$/);
  });

  it('names a searched set by what it is: bits per weight chosen for the pictures', () => {
    expect(
      precisionOptionLabel('searched', option({ precision: 'searched', checkCosine: null, quality })),
    ).toBe(
      `searched — bits chosen per weight for picture quality · ${formatBytes(1_973_736_048)} · pictures: small differences (PSNR 34.6 dB)`,
    );
  });

  it('falls back to the --check cosine, and says when the GPU cannot run it', () => {
    expect(precisionOptionLabel('int4c6', option())).toBe(
      `int4, 6-bit convolutions · ${formatBytes(1_973_736_048)} · checked: cosine 0.9993`,
    );
    expect(
      precisionOptionLabel('fp16', option({ precision: 'fp16', checkCosine: null, supported: false })),
    ).toBe(`fp16 — half size, needs shader-f16 · ${formatBytes(1_973_736_048)} (not on this GPU)`);
    expect(precisionOptionLabel('auto', undefined)).toBe('Automatic (from this GPU)');
  });
});
