/**
 * Stage 1: CLIP's tokenizer and text encoder. Texts → pooled text embeddings and the last hidden
 * state, with the attention mask the prior needs (diffusers' `_encode_prompt` of the prior pipeline).
 */
import { assertFinite } from '../finite';
import { readFloat32, requiredOutput, TensorScope } from '../ort';
import { releaseAfterStage, type StageContext } from './context';

export interface TextBatch {
  /** `[rows, D]` */
  readonly textEmbeds: Float32Array;
  /** `[rows, 77, T]` */
  readonly hiddenStates: Float32Array;
  /** `[rows, 77]`, 1 = token, 0 = padding */
  readonly mask: Uint8Array;
  readonly rows: number;
}

/** Set when the first text was longer than CLIP's 77 tokens: the part that was used. */
export interface TruncatedPrompt {
  readonly keptText: string;
  readonly droppedTokens: number;
}

/** Encodes `texts` as one batch, a row each; the encoder is released after in low-memory mode. */
export async function encodeTexts(
  context: StageContext,
  texts: readonly string[],
): Promise<TextBatch & { truncated?: TruncatedPrompt }> {
  const { models } = context;
  const tokenizer = await models.tokenizer();
  const session = await models.session('text_encoder');
  const rows = texts.length;
  const length = models.manifest.dims.textMaxLength;
  const ids = new BigInt64Array(rows * length);
  const mask = new Uint8Array(rows * length);
  let truncated: TruncatedPrompt | undefined;
  texts.forEach((text, row) => {
    const tokens = tokenizer.encode(text);
    ids.set(tokens.inputIds, row * length);
    tokens.attentionMask.forEach((m, i) => {
      mask[row * length + i] = Number(m);
    });
    if (tokens.droppedTokens > 0 && row === 0)
      truncated = { keptText: tokens.keptText, droppedTokens: tokens.droppedTokens };
  });
  const scope = new TensorScope(models.ort);
  try {
    const out = await scope.run(session, { input_ids: scope.int64(ids, [rows, length]) });
    const textEmbeds = await readFloat32(requiredOutput(out, 'text_embeds'));
    const hiddenStates = await readFloat32(requiredOutput(out, 'last_hidden_state'));
    assertFinite(textEmbeds, 'The text encoder’s embeddings');
    assertFinite(hiddenStates, 'The text encoder’s hidden states');
    return {
      textEmbeds: textEmbeds.slice(),
      hiddenStates: hiddenStates.slice(),
      mask,
      rows,
      ...(truncated ? { truncated } : {}),
    };
  } finally {
    scope.disposeAll();
    await releaseAfterStage(context, 'text_encoder');
  }
}
