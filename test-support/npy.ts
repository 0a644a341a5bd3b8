/**
 * Reader for NumPy `.npy` files (format versions 1, 2 and 3), enough for the reference fixtures that
 * `np.save` writes: little-endian float32/int32/int64, booleans, C order.
 */

export type NpyArray =
  | { readonly dtype: '<f4'; readonly shape: readonly number[]; readonly data: Float32Array }
  | { readonly dtype: '<i4'; readonly shape: readonly number[]; readonly data: Int32Array }
  | { readonly dtype: '<i8'; readonly shape: readonly number[]; readonly data: BigInt64Array }
  | { readonly dtype: '|b1'; readonly shape: readonly number[]; readonly data: Uint8Array };

export type NpyDtype = NpyArray['dtype'];

export class NpyFormatError extends Error {
  override readonly name = 'NpyFormatError';
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

const ITEM_SIZE: Record<NpyDtype, number> = { '<f4': 4, '<i4': 4, '<i8': 8, '|b1': 1 };

/** Parses an `.npy` file. The returned typed array is a copy, aligned, independent of `bytes`. */
export function parseNpy(bytes: Uint8Array): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new NpyFormatError('Not an .npy file (bad magic string)');
  }
  const major = bytes[6] as number;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLength: number;
  let headerStart: number;
  if (major === 1) {
    headerLength = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new NpyFormatError('Truncated .npy header');
    headerLength = view.getUint32(8, true);
    headerStart = 12;
  } else {
    throw new NpyFormatError(`Unsupported .npy format version ${major}`);
  }
  const dataStart = headerStart + headerLength;
  if (dataStart > bytes.length) throw new NpyFormatError('Truncated .npy header');
  // Version 3 only differs by allowing UTF-8 in the header; the dict itself is ASCII either way.
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(
    bytes.subarray(headerStart, dataStart),
  );

  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new NpyFormatError(`Malformed .npy header: ${header.trim()}`);
  }
  if (fortran === 'True') throw new NpyFormatError('Fortran-order .npy arrays are not supported');
  if (!(descr in ITEM_SIZE)) {
    throw new NpyFormatError(
      `Unsupported .npy dtype '${descr}' (supported: ${Object.keys(ITEM_SIZE).join(', ')})`,
    );
  }
  const dtype = descr as NpyDtype;
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      const dim = Number(s.replace(/L$/, ''));
      if (!Number.isSafeInteger(dim) || dim < 0)
        throw new NpyFormatError(`Bad dimension '${s}' in .npy shape`);
      return dim;
    });
  const count = shape.reduce((a, b) => a * b, 1);
  const byteLength = count * ITEM_SIZE[dtype];
  if (dataStart + byteLength > bytes.length) {
    throw new NpyFormatError(
      `.npy data truncated: need ${byteLength} bytes, have ${bytes.length - dataStart}`,
    );
  }
  // Copy into a fresh buffer: the payload offset is rarely a multiple of 8, which BigInt64Array needs.
  const payload = bytes.slice(dataStart, dataStart + byteLength).buffer;
  // Typed arrays use the platform's byte order; every engine this runs on is little-endian.
  switch (dtype) {
    case '<f4':
      return { dtype, shape, data: new Float32Array(payload) };
    case '<i4':
      return { dtype, shape, data: new Int32Array(payload) };
    case '<i8':
      return { dtype, shape, data: new BigInt64Array(payload) };
    case '|b1':
      return { dtype, shape, data: new Uint8Array(payload) };
  }
}

/** Parses an `.npy` file that must hold float32 values. */
export function parseNpyFloat32(bytes: Uint8Array): { shape: readonly number[]; data: Float32Array } {
  const array = parseNpy(bytes);
  if (array.dtype !== '<f4') throw new NpyFormatError(`Expected a float32 .npy array, got '${array.dtype}'`);
  return array;
}
