import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TINY_DIR } from '../../test-support/tiny-fixture.node';
import { ClipTokenizer, TokenizerError } from './tokenizer';

const file = (name: string) => ({
  path: `tokenizer/${name}`,
  bytes: new Uint8Array(readFileSync(`${TINY_DIR}/tokenizer/${name}`)),
});
const utf8 = new TextEncoder();

describe('ClipTokenizer.fromFiles on damaged tokenizer files', () => {
  it('builds from the tiny set’s files', () => {
    const tokenizer = ClipTokenizer.fromFiles(file('tokenizer.json'), file('tokenizer_config.json'));
    expect(tokenizer.encode('a red cat').droppedTokens).toBe(0);
  });

  it.each([
    ['not JSON', utf8.encode('<html>502 Bad Gateway</html>'), /tokenizer\/tokenizer\.json is not valid JSON/],
    ['not UTF-8', Uint8Array.of(0x7b, 0xff, 0xfe, 0x7d), /tokenizer\/tokenizer\.json is not UTF-8/],
    ['a JSON array', utf8.encode('[1, 2]'), /tokenizer\/tokenizer\.json is not a JSON object/],
    ['not a tokenizer', utf8.encode('{"model": 3}'), /tokenizer\/tokenizer\.json is not a tokenizer/],
  ])('names the file when tokenizer.json is %s', (_, bytes, message) => {
    const build = () =>
      ClipTokenizer.fromFiles({ path: 'tokenizer/tokenizer.json', bytes }, file('tokenizer_config.json'));
    expect(build).toThrow(TokenizerError);
    expect(build).toThrow(message);
  });

  it('names the config file when it is not JSON', () => {
    const build = () =>
      ClipTokenizer.fromFiles(file('tokenizer.json'), {
        path: 'tokenizer/tokenizer_config.json',
        bytes: utf8.encode('bos_token: <|startoftext|>'),
      });
    expect(build).toThrow(/tokenizer\/tokenizer_config\.json is not valid JSON/);
  });
});
