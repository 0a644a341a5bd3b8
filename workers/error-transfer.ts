import * as Comlink from 'comlink';
import { toWireError } from './errors';

/**
 * comlink serialises a thrown Error as {message, name, stack} and rebuilds it on the other side
 * with Object.assign; adding the stable `code` here makes it arrive on the receiver's error object.
 * Install once in the worker (the side that throws).
 */
export function installErrorCodeTransfer(): void {
  const builtIn = Comlink.transferHandlers.get('throw');
  if (!builtIn) throw new Error('comlink has no "throw" transfer handler to extend');
  Comlink.transferHandlers.set('throw', {
    canHandle: builtIn.canHandle,
    deserialize: builtIn.deserialize,
    serialize(thrown: unknown) {
      const { value } = thrown as { value: unknown };
      const stack = value instanceof Error ? value.stack : undefined;
      return [{ isError: true, value: { name: 'KandinskyError', ...toWireError(value), stack } }, []];
    },
  });
}
