import { describe, expect, it } from 'vitest';
import { openTinyModelSet, reference } from '../../test-support/tiny-fixture.node';
import { CLIP_MAX_TOKENS } from './tokenizer';

describe('ClipTokenizer on the tiny set matches transformers’ CLIPTokenizer', () => {
  const models = openTinyModelSet();

  it.each(reference.tokenizer_cases.map((c) => [c.text.slice(0, 40), c] as const))(
    '%s',
    async (_label, testCase) => {
      const tokenizer = await models.tokenizer();
      const tokens = tokenizer.encode(testCase.text);
      expect(Array.from(tokens.inputIds, Number)).toEqual(testCase.input_ids);
      const expectedMask = (testCase as { attention_mask?: readonly number[] }).attention_mask;
      if (expectedMask) expect(Array.from(tokens.attentionMask, Number)).toEqual(expectedMask);
    },
  );

  it('says what was cut when a prompt is longer than 77 tokens', async () => {
    const tokenizer = await models.tokenizer();
    const long = 'a very long prompt '.repeat(40);
    const tokens = tokenizer.encode(long);
    expect(tokens.inputIds).toHaveLength(CLIP_MAX_TOKENS);
    expect(tokens.droppedTokens).toBeGreaterThan(0);
    expect(long.startsWith(tokens.keptText.trim())).toBe(true);
    expect(tokens.keptText.length).toBeLessThan(long.length);
    const short = tokenizer.encode('a red cat');
    expect(short.droppedTokens).toBe(0);
    expect(short.keptText).toBe('a red cat');
  });
});

describe('basicClean (the slow CLIP tokenizer’s clean-up without ftfy)', () => {
  it('drops control and format characters and separates CJK ideographs', async () => {
    const { basicClean } = await import('./tokenizer');
    expect(basicClean('a\u200Db\u0007c\uFFFD')).toBe('abc');
    expect(basicClean('x\ty\u00A0z')).toBe('x y z');
    expect(basicClean('漢字 kanji')).toBe(' 漢  字  kanji');
    expect(basicClean('ひらがな')).toBe('ひらがな'); // kana are not ideographs
  });

  /** Inputs and what transformers' BasicTokenizer(strip_accents=False, do_split_on_punc=False) made of them (4.45.0.dev0). */
  const RECORDED: [string, string][] = [
    ['a\u200db\u0007c\ufffd', 'abc'],
    ['x\ty\u00a0z', 'x y z'],
    ['\u6f22\u5b57 kanji', '\u6f22 \u5b57 kanji'],
    [
      '\ud83d\udc69\u200d\ud83d\udc69\u200d\ud83d\udc67 family',
      '\ud83d\udc69\ud83d\udc69\ud83d\udc67 family',
    ],
    ['\u00c9COLE Stra\u00dfe\u2028next', '\u00e9cole stra\u00dfe next'],
    ['e\u0301 combining', '\u00e9 combining'],
    [
      '\u3072\u3089\u304c\u306a \u30ab\u30bf\u30ab\u30ca \ud55c\uad6d\uc5b4',
      '\u3072\u3089\u304c\u306a \u30ab\u30bf\u30ab\u30ca \ud55c\uad6d\uc5b4',
    ],
  ];

  it('matches transformers on recorded inputs after whitespace split and lower-casing', async () => {
    const { basicClean } = await import('./tokenizer');
    for (const [input, expected] of RECORDED) {
      const ours = basicClean(input).normalize('NFC').split(/\s+/).filter(Boolean).join(' ').toLowerCase();
      expect(ours, JSON.stringify(input)).toBe(expected);
    }
  });
});
