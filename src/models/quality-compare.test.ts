import { describe, expect, it } from 'vitest';
import { qualityCompareText } from './quality-compare';

const digest = '0'.repeat(64);
const quality = {
  psnr: 22.254,
  ssim: 0.8,
  embeddingCosine: 0.999,
  prompts: 3,
  seeds: 2,
  steps: 25,
  priorSteps: 25,
  size: 512,
  sample: {
    prompt: 'a red cat, 4k photo',
    seed: 42,
    reference: { path: 'int4c6/quality/reference.png', bytes: 10, sha256: digest },
    picture: { path: 'int4c6/quality/picture.png', bytes: 10, sha256: digest },
  },
};

describe('qualityCompareText', () => {
  it('captions the pair with the precision, its PSNR and its words, and says what made them', () => {
    expect(qualityCompareText('int4c6', quality)).toEqual({
      button: 'Compare with full precision',
      referenceCaption: 'Full precision (fp32)',
      pictureCaption: 'int4c6 — PSNR 22.3 dB, visible differences',
      referenceAlt:
        '“a red cat, 4k photo”, seed 42, made at full precision (fp32) by the reference PyTorch pipeline',
      pictureAlt: '“a red cat, 4k photo”, seed 42, made by this model set at int4c6',
      details:
        'Both pictures: “a red cat, 4k photo”, seed 42, 512×512 px, 25 steps. The PSNR is over all 6 calibration pictures.',
    });
  });

  it('follows the figure’s words, and says when the pixels are identical or the run was one', () => {
    expect(qualityCompareText('int8', { ...quality, psnr: 41 }).pictureCaption).toBe(
      'int8 — PSNR 41.0 dB, nearly identical to full precision',
    );
    expect(qualityCompareText('fp16', { ...quality, psnr: 33.33 }).pictureCaption).toBe(
      'fp16 — PSNR 33.3 dB, small differences',
    );
    const fp32 = qualityCompareText('fp32', { ...quality, psnr: 100, prompts: 1, seeds: 1 });
    expect(fp32.pictureCaption).toBe('fp32 — PSNR 100 dB, identical pixels');
    expect(fp32.details).toMatch(/over this one calibration picture\.$/);
  });
});
