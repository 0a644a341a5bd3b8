import { Tokenizer } from '@huggingface/tokenizers';

/** CLIP's context: 77 tokens including the start and end tokens. */
export const CLIP_MAX_TOKENS = 77;

export interface ClipTokens {
  /** Token ids padded to `CLIP_MAX_TOKENS`, as the text encoder's int64 input wants them. */
  readonly inputIds: BigInt64Array;
  /** 1 for real tokens (start, prompt, end), 0 for padding. */
  readonly attentionMask: BigInt64Array;
  /** Tokens the prompt had beyond what fits (0 when nothing was cut). */
  readonly droppedTokens: number;
  /** The text that was kept when the prompt was cut, so the UI can show where it stopped. */
  readonly keptText: string;
}

interface TokenizerConfig {
  readonly bos_token?: unknown;
  readonly eos_token?: unknown;
  readonly pad_token?: unknown;
}

function tokenText(token: unknown): string | undefined {
  if (typeof token === 'string') return token;
  if (
    typeof token === 'object' &&
    token !== null &&
    typeof (token as { content?: unknown }).content === 'string'
  ) {
    return (token as { content: string }).content;
  }
  return undefined;
}

/** CJK ideograph blocks that BERT's basic tokenizer surrounds with spaces (one word each). */
const CJK_IDEOGRAPH =
  /([\u4E00-\u9FFF\u3400-\u4DBF\u{20000}-\u{2A6DF}\u{2A700}-\u{2B73F}\u{2B740}-\u{2B81F}\u{2B820}-\u{2CEAF}\uF900-\uFAFF\u{2F800}-\u{2FA1F}])/gu;

/**
 * The text clean-up of transformers' slow `CLIPTokenizer` when `ftfy` is not installed (the usual
 * case: diffusers' Kandinsky pipelines load that tokenizer), which the fast tokenizer.json format
 * can't express: drop NUL, U+FFFD and control/format characters, turn other whitespace into
 * spaces, and make every CJK ideograph its own word. Lower-casing and NFC follow in tokenizer.json.
 */
export function basicClean(text: string): string {
  return text
    .replace(/[\0\uFFFD]|(?![\t\n\r])[\p{Cc}\p{Cf}]/gu, '')
    .replace(/[\t\n\r\p{Zs}]/gu, ' ')
    .replace(CJK_IDEOGRAPH, ' $1 ');
}

/**
 * The CLIP BPE tokenizer, padded and truncated the way diffusers' Kandinsky pipelines call it
 * (`padding="max_length", max_length=77, truncation=True`): the prompt's tokens are cut to 75 so
 * the start and end tokens always fit.
 */
export class ClipTokenizer {
  private readonly bosId: number;
  private readonly eosId: number;
  private readonly padId: number;

  constructor(
    private readonly tokenizer: Tokenizer,
    config: TokenizerConfig,
    private readonly maxTokens = CLIP_MAX_TOKENS,
  ) {
    const idOf = (role: string, token: unknown): number => {
      const text = tokenText(token);
      const id = text === undefined ? undefined : tokenizer.token_to_id(text);
      if (id === undefined) throw new Error(`The tokenizer config names no usable ${role} token.`);
      return id;
    };
    this.bosId = idOf('start (bos_token)', config.bos_token);
    this.eosId = idOf('end (eos_token)', config.eos_token);
    this.padId = idOf('padding (pad_token)', config.pad_token ?? config.eos_token);
  }

  /** Builds the tokenizer from a model set's `tokenizer.json` and `tokenizer_config.json`. */
  static fromJson(tokenizerJson: unknown, tokenizerConfig: unknown): ClipTokenizer {
    if (typeof tokenizerJson !== 'object' || tokenizerJson === null)
      throw new Error('tokenizer.json is not an object.');
    if (typeof tokenizerConfig !== 'object' || tokenizerConfig === null) {
      throw new Error('tokenizer_config.json is not an object.');
    }
    return new ClipTokenizer(
      new Tokenizer(tokenizerJson, tokenizerConfig),
      tokenizerConfig as TokenizerConfig,
    );
  }

  encode(prompt: string): ClipTokens {
    const content = this.tokenizer.encode(basicClean(prompt), { add_special_tokens: false }).ids;
    const room = this.maxTokens - 2;
    const kept = content.slice(0, room);
    const inputIds = new BigInt64Array(this.maxTokens).fill(BigInt(this.padId));
    const attentionMask = new BigInt64Array(this.maxTokens);
    [this.bosId, ...kept, this.eosId].forEach((id, i) => {
      inputIds[i] = BigInt(id);
      attentionMask[i] = 1n;
    });
    const droppedTokens = Math.max(0, content.length - room);
    return {
      inputIds,
      attentionMask,
      droppedTokens,
      keptText: droppedTokens > 0 ? this.tokenizer.decode(kept, { skip_special_tokens: true }) : prompt,
    };
  }
}
