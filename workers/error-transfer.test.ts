import { MessageChannel } from 'node:worker_threads';
import * as Comlink from 'comlink';
import { afterEach, describe, expect, it } from 'vitest';
import { installErrorCodeTransfer } from './error-transfer';
import { KandinskyError, toWireError } from './errors';

interface Thrower {
  failWith(kind: 'kandinsky' | 'plain' | 'string'): Promise<void>;
}

const channels: MessageChannel[] = [];
afterEach(() => {
  for (const channel of channels.splice(0)) {
    channel.port1.close();
    channel.port2.close();
  }
});

function connect(): Comlink.Remote<Thrower> {
  const channel = new MessageChannel();
  channels.push(channel);
  const thrower: Thrower = {
    async failWith(kind) {
      if (kind === 'kandinsky') throw new KandinskyError('WEBGPU_DEVICE_LOST', 'The GPU was reset.');
      if (kind === 'plain') throw new TypeError('x is undefined');
      throw 'a bare string';
    },
  };
  Comlink.expose(thrower, channel.port1 as unknown as Comlink.Endpoint);
  return Comlink.wrap<Thrower>(channel.port2 as unknown as Comlink.Endpoint);
}

describe('errors crossing a real comlink channel', () => {
  installErrorCodeTransfer();

  it('keeps the stable code and message of a KandinskyError', async () => {
    const error = await connect()
      .failWith('kandinsky')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(toWireError(error)).toEqual({ code: 'WEBGPU_DEVICE_LOST', message: 'The GPU was reset.' });
  });

  it('gives any other error the INTERNAL code and keeps its message', async () => {
    const error = await connect()
      .failWith('plain')
      .catch((e: unknown) => e);
    expect(toWireError(error)).toEqual({ code: 'INTERNAL', message: 'x is undefined' });
  });

  it('turns a thrown non-Error into an INTERNAL error with its text', async () => {
    const error = await connect()
      .failWith('string')
      .catch((e: unknown) => e);
    expect(toWireError(error)).toEqual({ code: 'INTERNAL', message: 'a bare string' });
  });
});

describe('toWireError', () => {
  it('rejects codes outside the closed list', () => {
    expect(toWireError({ code: 'MADE_UP', message: 'm' })).toEqual({ code: 'INTERNAL', message: 'm' });
  });
});

describe('store codes', () => {
  it('every StoreError code crosses the boundary as itself, and ABORTED as CANCELLED', async () => {
    const { STORE_ERROR_CODES } = await import('./store/store-error');
    for (const code of STORE_ERROR_CODES) {
      expect(toWireError({ code, message: 'm' }).code).toBe(code === 'ABORTED' ? 'CANCELLED' : code);
    }
  });
});
