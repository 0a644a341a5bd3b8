/**
 * An idb-keyval `UseStore` that keeps chunk payloads in files, for the memory benchmark only.
 *
 * fake-indexeddb keeps every stored byte in the JS heap, so measuring a 1 GB download with it would
 * measure the database, not the store. In a browser IndexedDB writes chunks to disk; this does the
 * same as IndexedDB does it: the value is copied at put() (IndexedDB's structured clone, on the
 * caller's thread) and written to disk off the JS thread (IndexedDB's backend; here Node's thread
 * pool), the transaction completing once its writes landed. So the process's memory shows what the
 * store itself holds, and its time doesn't include blocking disk writes a browser never makes on
 * the worker's thread. Small records stay in a Map. Only the calls idb-keyval makes are implemented.
 */

import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { UseStore } from 'idb-keyval';

// Node has no IndexedDB types: take them from idb-keyval's signature.
type TransactionMode = Parameters<UseStore>[0];
type ObjectStore = Parameters<Parameters<UseStore>[1]>[0];
type Key = string | number | Date | ArrayBuffer | Key[];

interface FakeRequest {
  result: unknown;
  error: unknown;
  onsuccess: (() => void) | null;
  oncomplete: (() => void) | null;
  onerror: (() => void) | null;
  onabort: (() => void) | null;
}

function fakeRequest(run: () => unknown): FakeRequest {
  const request: FakeRequest = {
    result: undefined,
    error: null,
    onsuccess: null,
    oncomplete: null,
    onerror: null,
    onabort: null,
  };
  setImmediate(() => {
    try {
      request.result = run();
      request.onsuccess?.();
    } catch (error) {
      request.error = error;
      request.onerror?.();
    }
  });
  return request;
}

export function fileBackedStore(directory: string): UseStore & { dispose(): void } {
  rmSync(directory, { recursive: true, force: true });
  mkdirSync(directory, { recursive: true });
  const records = new Map<string, unknown>();
  const payloads = new Set<string>();
  const nameOf = (key: string) => join(directory, Buffer.from(key).toString('base64url'));

  const objectStore = (transaction: FakeRequest, writes: Promise<void>[]) => ({
    transaction,
    put(value: unknown, key: Key) {
      const id = JSON.stringify(key);
      if (value instanceof ArrayBuffer) {
        writes.push(writeFile(nameOf(id), new Uint8Array(value.slice(0))));
        payloads.add(id);
        records.delete(id);
      } else {
        records.set(id, structuredClone(value));
      }
      return fakeRequest(() => key);
    },
    get(key: Key) {
      const id = JSON.stringify(key);
      return fakeRequest(() => {
        if (records.has(id)) return structuredClone(records.get(id));
        if (!payloads.has(id)) return undefined;
        const bytes = readFileSync(nameOf(id));
        return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
      });
    },
    delete(key: Key) {
      const id = JSON.stringify(key);
      records.delete(id);
      if (payloads.delete(id)) rmSync(nameOf(id), { force: true });
      return fakeRequest(() => undefined);
    },
    getAllKeys() {
      return fakeRequest(() => [...records.keys(), ...payloads].map((id) => JSON.parse(id) as Key));
    },
    clear() {
      for (const id of payloads) rmSync(nameOf(id), { force: true });
      payloads.clear();
      records.clear();
      return fakeRequest(() => undefined);
    },
  });

  const use = (<T>(_mode: TransactionMode, callback: (store: ObjectStore) => T | PromiseLike<T>) => {
    const transaction: FakeRequest = {
      result: undefined,
      error: null,
      onsuccess: null,
      oncomplete: null,
      onerror: null,
      onabort: null,
    };
    const writes: Promise<void>[] = [];
    const result = callback(objectStore(transaction, writes) as unknown as ObjectStore);
    // Queued after the callback's requests and their disk writes, as a transaction completes in IndexedDB.
    setImmediate(() => {
      Promise.all(writes).then(
        () => transaction.oncomplete?.(),
        (error: unknown) => {
          transaction.error = error;
          transaction.onerror?.();
        },
      );
    });
    return Promise.resolve(result);
  }) as UseStore & { dispose(): void };
  use.dispose = () => rmSync(directory, { recursive: true, force: true });
  return use;
}
