import { describe, expect, it } from 'vitest';
import { type KeyValueStorage, parseBoolean, readStored, writeStored } from './use-persistent-state';

function memoryStorage(): KeyValueStorage & { readonly items: Map<string, string> } {
  const items = new Map<string, string>();
  return {
    items,
    getItem: (key: string) => items.get(key) ?? null,
    setItem: (key: string, value: string) => void items.set(key, value),
  };
}

describe('stored values', () => {
  it('round-trip as JSON under their key', () => {
    const storage = memoryStorage();
    writeStored(storage, 'k', true);
    expect(storage.items.get('k')).toBe('true');
    expect(readStored(storage, 'k', parseBoolean, false)).toBe(true);
  });

  it("read the strings the app stored before this hook ('true' / 'false')", () => {
    const storage = memoryStorage();
    storage.setItem('low', 'false');
    expect(readStored(storage, 'low', parseBoolean, true)).toBe(false);
  });

  it('fall back on a missing key, garbage, a value parse refuses, or storage that throws', () => {
    const storage = memoryStorage();
    expect(readStored(storage, 'absent', parseBoolean, true)).toBe(true);
    storage.setItem('bad', '{not json');
    expect(readStored(storage, 'bad', parseBoolean, true)).toBe(true);
    storage.setItem('wrong', '"yes"');
    expect(readStored(storage, 'wrong', parseBoolean, false)).toBe(false);
    const blocked: KeyValueStorage = {
      getItem: () => {
        throw new DOMException('blocked', 'SecurityError');
      },
      setItem: () => {
        throw new DOMException('full', 'QuotaExceededError');
      },
    };
    expect(readStored(blocked, 'k', parseBoolean, true)).toBe(true);
    expect(() => writeStored(blocked, 'k', false)).not.toThrow();
    expect(readStored(null, 'k', parseBoolean, true)).toBe(true);
  });
});
