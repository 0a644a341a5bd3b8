/**
 * Will this size fit the GPU? WebGPU caps every single buffer (`maxBufferSize`), and the largest
 * buffer of a Kandinsky 2.2 generation is the UNet's first self-attention score matrix:
 * [batch × heads, tokens, tokens + context] with tokens = (H/16)·(W/16) — the attention of the
 * real decoder UNet starts at half the latent resolution, with 768 channels in heads of 64
 * (diffusers' kandinsky-2-2-decoder config), and a few image-embedding tokens join the keys.
 */

const FIRST_ATTENTION_HEADS = 768 / 64;
/** Image-embedding tokens the UNet's attention adds to its keys (encoder_hid_proj). */
const CONTEXT_TOKENS = 10;

export interface MemoryInput {
  readonly width: number;
  readonly height: number;
  readonly numImages: number;
  /** Classifier-free guidance doubles the UNet batch. */
  readonly guided: boolean;
  /** Bytes per activation value: 2 for fp16 graphs, 4 otherwise. */
  readonly bytesPerValue: number;
}

/** Bytes of the largest single buffer a generation at this size needs (the attention scores). */
export function largestBufferBytes(input: MemoryInput): number {
  const tokens = (input.height / 16) * (input.width / 16);
  const batch = input.numImages * (input.guided ? 2 : 1);
  return batch * FIRST_ATTENTION_HEADS * tokens * (tokens + CONTEXT_TOKENS) * input.bytesPerValue;
}

/**
 * A warning when the size likely exceeds what the device allows, with the largest square side and
 * image count that would fit; null when it fits.
 */
export function memoryWarning(input: MemoryInput, maxBufferBytes: number): string | null {
  const needed = largestBufferBytes(input);
  if (needed <= maxBufferBytes) return null;
  const gb = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;
  let side = 64 * Math.floor(Math.sqrt(input.width * input.height) / 64);
  while (side > 256 && largestBufferBytes({ ...input, width: side, height: side }) > maxBufferBytes)
    side -= 64;
  const oneImage = input.numImages > 1 && largestBufferBytes({ ...input, numImages: 1 }) <= maxBufferBytes;
  return (
    `${input.width}×${input.height}${input.numImages > 1 ? ` × ${input.numImages} images` : ''} needs a ${gb(needed)} ` +
    `GPU buffer; this device allows ${gb(maxBufferBytes)}. ` +
    (oneImage ? `Make one image at a time, or try ${side}×${side}.` : `Try ${side}×${side} or smaller.`)
  );
}
