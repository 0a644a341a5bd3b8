/**
 * The part of the Web Locks API (`navigator.locks`) the store uses. Locks are held per file
 * (per sha256), never more than one at a time by one task, so two tabs can't deadlock: they share
 * the work of one download instead of each fetching every file.
 */
export interface LockManagerLike {
  request<T>(
    name: string,
    options: { mode: 'exclusive'; signal?: AbortSignal },
    callback: () => Promise<T>,
  ): Promise<T>;
}

/**
 * Exclusive named locks within one JavaScript realm: the fallback where `navigator.locks` is
 * missing (Node, old browsers), and what tests share between two stores to play two tabs.
 */
export class InProcessLocks implements LockManagerLike {
  private readonly tails = new Map<string, Promise<void>>();

  async request<T>(
    name: string,
    options: { mode: 'exclusive'; signal?: AbortSignal },
    callback: () => Promise<T>,
  ): Promise<T> {
    const previous = this.tails.get(name) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => mine);
    this.tails.set(name, tail);
    try {
      await unlessAborted(previous, options.signal);
      return await callback();
    } finally {
      release();
      if (this.tails.get(name) === tail) this.tails.delete(name);
    }
  }
}

/**
 * `promise`, unless `signal` aborts first: then a rejection with the abort's reason, at once. The
 * promise is still observed, so a later rejection of it is never left unhandled.
 */
export function unlessAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

export function fileLockName(sha256: string): string {
  return `kandinsky-web/model-store/file/${sha256}`;
}
