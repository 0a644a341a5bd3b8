/**
 * Pictures for the e2e specs: gradient PNGs (so crops and masks are visible), optionally with the
 * app's settings inside, and gallery records stored the way the app stores them.
 */
import type { Page } from '@playwright/test';
import { nodeZlib } from '../workers/engine/node-zlib.node';
import { encodePng } from '../workers/engine/png';
import type { GenerationSettings } from '../workers/engine/settings';

/** A w×h PNG with a colour gradient, optionally with text chunks. */
export async function gradientPng(
  width: number,
  height: number,
  text: Record<string, string> = {},
): Promise<Buffer> {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      data.set([(x * 255) / width, (y * 255) / height, 160, 255], i);
    }
  }
  return Buffer.from(await encodePng({ width, height, data }, text, nodeZlib));
}

/** The browser APIs storing touches inside page.evaluate (e2e files compile with Node types only). */
interface IdbRequest<T> {
  readonly result: T;
  readonly error: unknown;
  onsuccess: (() => void) | null;
  onerror: (() => void) | null;
}
interface IdbDatabase {
  transaction(
    store: string,
    mode: 'readwrite',
  ): {
    objectStore(name: string): { put(value: unknown, key: string): void };
    oncomplete: (() => void) | null;
  };
  close(): void;
}
interface PageGlobals {
  readonly indexedDB: { open(name: string): IdbRequest<IdbDatabase> };
}

/**
 * Stores 256×256 pictures in the gallery the way the app does (record + PNG under one
 * transaction's keys), oldest first; the page shows them after a reload.
 */
export async function putGalleryPictures(page: Page, settings: readonly GenerationSettings[]): Promise<void> {
  const pictures = await Promise.all(
    settings.map(async (s) => ({
      settings: s,
      png: Array.from(await gradientPng(256, 256, { 'kandinsky-web': JSON.stringify(s) })),
    })),
  );
  await page.evaluate(async (items) => {
    const db = await new Promise<IdbDatabase>((resolve, reject) => {
      const request = (globalThis as unknown as PageGlobals).indexedDB.open('kandinsky-gallery');
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    const tx = db.transaction('images', 'readwrite');
    const store = tx.objectStore('images');
    for (const [index, { settings, png }] of items.entries()) {
      const id = `e2e-${index}`;
      const blob = new Blob([new Uint8Array(png)], { type: 'image/png' });
      store.put(
        { id, createdAt: 1_700_000_000_000 + index, settings, width: 256, height: 256, bytes: blob.size },
        `record:${id}`,
      );
      store.put(blob, `png:${id}`);
    }
    await new Promise<void>((resolve) => {
      tx.oncomplete = () => resolve();
    });
    db.close();
  }, pictures);
}
