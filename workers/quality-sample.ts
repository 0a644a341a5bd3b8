/**
 * A precision option's quality sample (models/CONTRACT.md, `quality.sample`): the fp32 PyTorch
 * picture and the option's own picture of the first calibration run, read on demand through the
 * set's own source (its origin policy, redirects and picked folders apply as to model files), at
 * most the bytes the manifest lists, checked against its sha256 and for a PNG signature. A
 * failure is a KandinskyError with a stable code, never a picture other than the one listed.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import type { ManifestSamplePicture } from '../models/manifest';
import { KandinskyError } from './errors';
import type { ModelSource } from './store';
import { toHex } from './store/file-download';

/** The eight bytes every PNG starts with. */
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] as const;

export function isPng(bytes: Uint8Array): boolean {
  return bytes.byteLength > PNG_SIGNATURE.length && PNG_SIGNATURE.every((b, i) => bytes[i] === b);
}

const REPUBLISH =
  "the set's host does not serve the pictures its manifest lists; its publisher must publish them again";

/**
 * One sample picture's bytes from `source`: exactly `file.bytes` of them (reading stops past
 * that, SIZE_MISMATCH), hashing to `file.sha256` (INTEGRITY_MISMATCH), starting with the PNG
 * signature (MANIFEST_INVALID: the manifest names something that is no picture). The source's
 * own failures (SOURCE_FORBIDDEN, SOURCE_FILE_MISSING, SOURCE_UNREACHABLE, HTTP_ERROR, …) pass
 * through with their codes.
 */
export async function readSamplePicture(
  source: ModelSource,
  file: ManifestSamplePicture,
  signal?: AbortSignal,
): Promise<Uint8Array<ArrayBuffer>> {
  const range = await source.openRange(file.path, 0, signal);
  const reader = range.body.getReader();
  const sizeError = (what: string) =>
    new KandinskyError(
      'SIZE_MISMATCH',
      `The quality picture ${file.path} ${what}; the manifest lists ${file.bytes} bytes: ${REPUBLISH}.`,
    );
  try {
    // Asked from offset 0 without a Range header: a body that starts elsewhere is not this file.
    if (range.start !== 0) throw sizeError(`came from byte ${range.start} on, not from its start`);
    if (range.declaredBytes !== null && range.declaredBytes !== file.bytes) {
      throw sizeError(`is ${range.declaredBytes} bytes`);
    }
    const bytes = new Uint8Array(file.bytes);
    let filled = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (filled + value.byteLength > file.bytes) throw sizeError('is longer');
      bytes.set(value, filled);
      filled += value.byteLength;
    }
    if (filled !== file.bytes) throw sizeError(`ended after ${filled} bytes`);
    const digest = toHex(sha256(bytes));
    if (digest !== file.sha256) {
      throw new KandinskyError(
        'INTEGRITY_MISMATCH',
        `The quality picture ${file.path} hashes to ${digest}, the manifest says ${file.sha256}: ${REPUBLISH}.`,
      );
    }
    if (!isPng(bytes)) {
      throw new KandinskyError(
        'MANIFEST_INVALID',
        `The manifest lists ${file.path} as a quality picture, but it is not a PNG: its publisher must export it again.`,
      );
    }
    return bytes;
  } catch (error) {
    await reader.cancel().catch(() => undefined);
    throw error;
  } finally {
    reader.releaseLock();
  }
}
