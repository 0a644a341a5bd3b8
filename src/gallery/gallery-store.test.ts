import 'fake-indexeddb/auto';
import { createStore, type UseStore } from 'idb-keyval';
import { beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS } from '../../workers/engine/settings';
import { GalleryError, GalleryStore } from './gallery-store';

let database = 0;
/** A fresh database per test; reopening it by name is what a page reload does. */
let databaseName = '';
const open = (): UseStore => createStore(databaseName, 'images');

beforeEach(() => {
  databaseName = `gallery-test-${++database}`;
});

const png = (text: string) => new Blob([new TextEncoder().encode(text)], { type: 'image/png' });
const size = { width: 1024, height: 1024 };

/** Every key in the database, to see that nothing is left behind. */
async function allKeys(store: UseStore): Promise<unknown[]> {
  const { keys } = await import('idb-keyval');
  return keys(store);
}

describe('GalleryStore', () => {
  it('saves, lists newest first, reads back the PNG, and survives a reload', async () => {
    const gallery = new GalleryStore(open());
    const first = await gallery.save(png('first'), { ...DEFAULT_SETTINGS, seed: 1 }, size, 1000);
    const second = await gallery.save(png('second'), { ...DEFAULT_SETTINGS, seed: 2 }, size, 2000);
    expect(first.id).not.toBe(second.id);
    expect(second.bytes).toBe(6);

    const reloaded = new GalleryStore(open());
    const records = await reloaded.list();
    expect(records.map((r) => r.settings.seed)).toEqual([2, 1]);
    expect(records[0]).toEqual(second);
    const bytes = await (await reloaded.png(first.id))?.text();
    expect(bytes).toBe('first');
  });

  it('deletes the record and the PNG together', async () => {
    const store = open();
    const gallery = new GalleryStore(store);
    const kept = await gallery.save(png('keep'), DEFAULT_SETTINGS, size, 1);
    const gone = await gallery.save(png('delete me'), DEFAULT_SETTINGS, size, 2);
    await gallery.delete(gone.id);
    expect((await gallery.list()).map((r) => r.id)).toEqual([kept.id]);
    expect(await gallery.png(gone.id)).toBeUndefined();
    expect((await allKeys(store)).sort()).toEqual([`png:${kept.id}`, `record:${kept.id}`]);
  });

  it('leaves nothing half-written when the quota runs out mid-save', async () => {
    const real = open();
    const gallery = new GalleryStore(real);
    const before = await gallery.save(png('already there'), DEFAULT_SETTINGS, size, 1);

    // The browser refuses the PNG (the big write) after the record was already put in the
    // same transaction: the real IndexedDB transaction must roll the record back.
    const quotaOnPng: UseStore = (mode, callback) =>
      real(mode, (store) =>
        callback(
          new Proxy(store, {
            get(target, property) {
              if (property === 'put') {
                return (value: unknown, key?: unknown) => {
                  if (String(key).startsWith('png:')) {
                    throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
                  }
                  return target.put(value, key as never);
                };
              }
              const member = Reflect.get(target, property, target);
              return typeof member === 'function' ? member.bind(target) : member;
            },
          }),
        ),
      );
    const failing = new GalleryStore(quotaOnPng);
    const error = await failing.save(png('too big'), DEFAULT_SETTINGS, size, 2).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GalleryError);
    expect(error).toMatchObject({
      code: 'STORAGE_FULL',
      message: 'Storage full: delete some images or models.',
    });

    const reloaded = new GalleryStore(open());
    expect((await reloaded.list()).map((r) => r.id)).toEqual([before.id]);
    expect((await allKeys(open())).sort()).toEqual([`png:${before.id}`, `record:${before.id}`]);
  });

  it('reports other storage failures as STORAGE_FAILED, not as a full disk', async () => {
    const broken: UseStore = () =>
      Promise.reject(new DOMException('The database is closed.', 'InvalidStateError'));
    await expect(new GalleryStore(broken).save(png('x'), DEFAULT_SETTINGS, size)).rejects.toMatchObject({
      code: 'STORAGE_FAILED',
    });
  });
});
