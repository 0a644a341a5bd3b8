import { type Dispatch, type SetStateAction, useEffect, useState } from 'react';

/** The part of `Storage` this needs (localStorage in the app, a Map-backed one in tests). */
export type KeyValueStorage = Pick<Storage, 'getItem' | 'setItem'>;

/**
 * A value stored as JSON under `key`, read through `parse` (which returns undefined for anything it
 * does not accept: an older shape, hand-edited storage, another app's key). Storage that can't be
 * read (private mode, blocked cookies) or holds garbage gives `fallback`; nothing throws.
 */
export function readStored<T>(
  storage: KeyValueStorage | null,
  key: string,
  parse: (stored: unknown) => T | undefined,
  fallback: T,
): T {
  try {
    const text = storage?.getItem(key);
    if (text === null || text === undefined) return fallback;
    return parse(JSON.parse(text)) ?? fallback;
  } catch {
    return fallback;
  }
}

/** Stores `value` as JSON under `key`; a full or blocked storage loses the value, not the page. */
export function writeStored(storage: KeyValueStorage | null, key: string, value: unknown): void {
  if (!storage) return;
  try {
    storage.setItem(key, JSON.stringify(value));
  } catch {
    // Quota or privacy settings: the value simply isn't remembered.
  }
}

function browserStorage(): KeyValueStorage | null {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null;
  }
}

/** useState whose value survives a reload (localStorage, JSON, read through `parse`). */
export function usePersistentState<T>(
  key: string,
  fallback: T,
  parse: (stored: unknown) => T | undefined,
): [T, Dispatch<SetStateAction<T>>] {
  const [value, setValue] = useState<T>(() => readStored(browserStorage(), key, parse, fallback));
  useEffect(() => {
    writeStored(browserStorage(), key, value);
  }, [key, value]);
  return [value, setValue];
}

/** A `parse` for booleans. */
export function parseBoolean(stored: unknown): boolean | undefined {
  return typeof stored === 'boolean' ? stored : undefined;
}
