import type { ModelSetInfo, PrecisionChoice } from '../../workers/api';
import { formatBytes } from '../../workers/format';
import { formatCosine, qualityInWords } from '../../workers/precision';

type PrecisionOptionInfo = ModelSetInfo['precision']['options'][number];

export const PRECISION_LABELS: Record<PrecisionChoice, string> = {
  auto: 'Automatic (from this GPU)',
  fp16: 'fp16 — half size, needs shader-f16',
  fp32: 'fp32 — runs everywhere, largest',
  int8: 'int8 weights — a quarter of fp32',
  int4: 'int4 weights — smallest, lower quality',
  int4c6: 'int4, 6-bit convolutions',
  searched: 'searched — bits chosen per weight for picture quality',
};

/**
 * A precision choice as the model manager's menu shows it: what it is, its text-to-image
 * download, and how its pictures compare with full precision in words (the export's `--quality`
 * figure, with its PSNR), or else its `--check` cosine where that is all the publisher recorded.
 */
export function precisionOptionLabel(
  choice: PrecisionChoice,
  option: PrecisionOptionInfo | undefined,
): string {
  let label = PRECISION_LABELS[choice];
  if (option?.textToImageBytes) label += ` · ${formatBytes(option.textToImageBytes)}`;
  if (option?.quality) {
    label += ` · pictures: ${qualityInWords(option.quality)} (PSNR ${option.quality.psnr.toFixed(1)} dB)`;
  } else if (typeof option?.checkCosine === 'number') {
    label += ` · checked: cosine ${formatCosine(option.checkCosine)}`;
  }
  if (option && !option.supported) label += ' (not on this GPU)';
  return label;
}
