import { describe, expect, it } from 'vitest';
import { formatBytes } from './format';

describe('formatBytes', () => {
  it.each([
    [512, '512 B'],
    [25_167, '25 kB'],
    [18_400_000, '18.4 MB'],
    [1_980_000_000, '1.98 GB'],
  ])('%d → %s', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });
});
