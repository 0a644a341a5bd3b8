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

/** A model set's tokenizer files are damaged or not a CLIP tokenizer; the message names the file. */
export class TokenizerError extends Error {
  override readonly name = 'TokenizerError';
  readonly code = 'MODEL_LOAD_FAILED';
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Parses one of a model set's tokenizer files (`path` as the manifest names it, for the message):
 * a file that is not UTF-8 JSON throws a TokenizerError naming it, never a bare SyntaxError.
 */
export function parseTokenizerFile(path: string, bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    throw new TokenizerError(
      `The tokenizer file ${path} is not UTF-8 text: the model set is damaged; download or export it again.`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new TokenizerError(
      `The tokenizer file ${path} is not valid JSON (${(error as Error).message}): the model set is damaged; download or export it again.`,
    );
  }
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
      if (id === undefined) {
        throw new TokenizerError(
          `The tokenizer config names no usable ${role} token: the model set's tokenizer is damaged or not CLIP's; export it again.`,
        );
      }
      return id;
    };
    this.bosId = idOf('start (bos_token)', config.bos_token);
    this.eosId = idOf('end (eos_token)', config.eos_token);
    this.padId = idOf('padding (pad_token)', config.pad_token ?? config.eos_token);
  }

  /**
   * Builds the tokenizer from a model set's parsed `tokenizer.json` and `tokenizer_config.json`
   * (`paths` name them in errors).
   */
  static fromJson(
    tokenizerJson: unknown,
    tokenizerConfig: unknown,
    paths: { readonly tokenizer: string; readonly config: string } = {
      tokenizer: 'tokenizer.json',
      config: 'tokenizer_config.json',
    },
  ): ClipTokenizer {
    const notObject = (path: string) =>
      new TokenizerError(
        `The tokenizer file ${path} is not a JSON object: the model set is damaged; download or export it again.`,
      );
    if (typeof tokenizerJson !== 'object' || tokenizerJson === null || Array.isArray(tokenizerJson))
      throw notObject(paths.tokenizer);
    if (typeof tokenizerConfig !== 'object' || tokenizerConfig === null || Array.isArray(tokenizerConfig))
      throw notObject(paths.config);
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
    } catch (error) {
      throw new TokenizerError(
        `The tokenizer file ${paths.tokenizer} is not a tokenizer this app can load (${error instanceof Error ? error.message : String(error)}): export the model set again.`,
      );
    }
    return new ClipTokenizer(tokenizer, tokenizerConfig as TokenizerConfig);
  }

  /** Builds the tokenizer from the bytes of `tokenizer.json` and `tokenizer_config.json`. */
  static fromFiles(
    tokenizerFile: { readonly path: string; readonly bytes: Uint8Array },
    configFile: { readonly path: string; readonly bytes: Uint8Array },
  ): ClipTokenizer {
    return ClipTokenizer.fromJson(
      parseTokenizerFile(tokenizerFile.path, tokenizerFile.bytes),
      parseTokenizerFile(configFile.path, configFile.bytes),
      { tokenizer: tokenizerFile.path, config: configFile.path },
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
