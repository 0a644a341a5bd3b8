import { describe, expect, it } from 'vitest';
import { buildMix, type MixDraft } from './mix';

const image = { width: 2, height: 2, data: new Uint8Array(16) };

describe('buildMix', () => {
  it('normalises the weights to sum to one', () => {
    const drafts: MixDraft[] = [
      { id: 'a', kind: 'prompt', prompt: 'a red fox', weight: 1 },
      { id: 'b', kind: 'image', image, weight: 3 },
    ];
    const mix = buildMix(drafts);
    expect(mix.ok).toBe(true);
    if (!mix.ok) return;
    expect(mix.items.map((item) => item.weight)).toEqual([0.25, 0.75]);
    expect(mix.items[1]).toMatchObject({ kind: 'image', image });
  });

  it.each([
    [[{ id: 'a', kind: 'prompt', prompt: 'one', weight: 1 }], /at least two/],
    [
      [
        { id: 'a', kind: 'prompt', prompt: 'one', weight: 1 },
        { id: 'b', kind: 'prompt', prompt: '  ', weight: 1 },
      ],
      /Mix item 2: write a prompt/,
    ],
    [
      [
        { id: 'a', kind: 'prompt', prompt: 'one', weight: 1 },
        { id: 'b', kind: 'image', image: null, weight: 1 },
      ],
      /Mix item 2: choose a picture/,
    ],
    [
      [
        { id: 'a', kind: 'prompt', prompt: 'one', weight: -1 },
        { id: 'b', kind: 'prompt', prompt: 'two', weight: 1 },
      ],
      /Mix item 1: the weight/,
    ],
    [
      [
        { id: 'a', kind: 'prompt', prompt: 'one', weight: 0 },
        { id: 'b', kind: 'prompt', prompt: 'two', weight: 0 },
      ],
      /above zero/,
    ],
  ] as [MixDraft[], RegExp][])('refuses an unusable mix (%#)', (drafts, message) => {
    const mix = buildMix(drafts);
    expect(mix.ok).toBe(false);
    expect(mix.ok === false && mix.message).toMatch(message);
  });
});
