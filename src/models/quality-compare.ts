import type { ManifestQuality, ManifestQualitySample, Precision } from '../../models/manifest';
import { qualityInWords } from '../../workers/precision';

/** The words around the model manager's side-by-side pictures of a precision's quality sample. */
export interface QualityCompareText {
  /** The button that loads the pair. */
  readonly button: string;
  readonly referenceCaption: string;
  readonly pictureCaption: string;
  readonly referenceAlt: string;
  readonly pictureAlt: string;
  /** What both pictures were made from, and what the PSNR is measured over. */
  readonly details: string;
}

/** The manifest's PSNR cap: identical pictures (models/export/quality.py, PSNR_CAP). */
const IDENTICAL_PSNR = 100;

/**
 * The text for comparing a precision's picture with full precision's, from the option's `quality`
 * (its PSNR over every calibration run, and the first run's prompt and seed, which the pictures
 * show). Pure: the model manager shows it, a test reads it.
 */
export function qualityCompareText(
  precision: Precision,
  quality: ManifestQuality & { readonly sample: ManifestQualitySample },
): QualityCompareText {
  const { sample, psnr } = quality;
  const figure =
    psnr >= IDENTICAL_PSNR
      ? `PSNR ${IDENTICAL_PSNR} dB, identical pixels`
      : `PSNR ${psnr.toFixed(1)} dB, ${qualityInWords(quality)}`;
  const runs = quality.prompts * quality.seeds;
  const made = `“${sample.prompt}”, seed ${sample.seed}`;
  return {
    button: 'Compare with full precision',
    referenceCaption: 'Full precision (fp32)',
    pictureCaption: `${precision} — ${figure}`,
    referenceAlt: `${made}, made at full precision (fp32) by the reference PyTorch pipeline`,
    pictureAlt: `${made}, made by this model set at ${precision}`,
    details:
      `Both pictures: ${made}, ${quality.size}×${quality.size} px, ${quality.steps} steps. ` +
      `The PSNR is over ${runs === 1 ? 'this one calibration picture' : `all ${runs} calibration pictures`}.`,
  };
}
