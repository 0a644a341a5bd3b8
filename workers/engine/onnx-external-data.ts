/**
 * The external-data files an ONNX graph names, read from its protobuf bytes without a protobuf
 * library: onnxruntime opens whatever a tensor's `external_data` "location" says, so a graph that
 * names a file its manifest does not list would be loaded unverified. Walks ModelProto → graph
 * (and training graphs, functions) → initializers, sparse initializers and node attributes (tensors,
 * subgraphs of If/Loop/Scan) → TensorProto.external_data. Field numbers are onnx.proto's.
 *
 * Bounded: every field is read once (each message's fields are walked by that message alone, the
 * rest skipped by length), lengths are checked against the bytes, and messages nest at most
 * MAX_NESTING deep, so any input ends in a list or an OnnxFormatError in time linear in its size.
 */

/** A graph's bytes are not a protobuf ONNX model this reader can walk (truncated, not ONNX, groups). */
export class OnnxFormatError extends Error {
  override readonly name = 'OnnxFormatError';
}

/** Messages within messages (a real model: model → graph → node → attribute → graph, a few levels). */
export const MAX_NESTING = 64;

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;

/** TensorProto.DataLocation.EXTERNAL. */
const EXTERNAL = 1;

type MessageKind =
  | 'model'
  | 'graph'
  | 'node'
  | 'attribute'
  | 'function'
  | 'training'
  | 'sparse'
  | 'tensor'
  | 'entry';

/** For each message kind, the length-delimited fields that hold messages this walk descends into. */
const CHILDREN: Readonly<Record<MessageKind, Readonly<Record<number, MessageKind>>>> = {
  // ModelProto: graph 7, training_info 20, functions 25.
  model: { 7: 'graph', 20: 'training', 25: 'function' },
  // GraphProto: node 1, initializer 5, sparse_initializer 15.
  graph: { 1: 'node', 5: 'tensor', 15: 'sparse' },
  // NodeProto: attribute 5.
  node: { 5: 'attribute' },
  // AttributeProto: t 5, g 6, tensors 10, graphs 11, sparse_tensor 22, sparse_tensors 23.
  attribute: { 5: 'tensor', 6: 'graph', 10: 'tensor', 11: 'graph', 22: 'sparse', 23: 'sparse' },
  // FunctionProto: node 7, attribute_proto 11.
  function: { 7: 'node', 11: 'attribute' },
  // TrainingInfoProto: initialization 1, algorithm 2.
  training: { 1: 'graph', 2: 'graph' },
  // SparseTensorProto: values 1, indices 2.
  sparse: { 1: 'tensor', 2: 'tensor' },
  // TensorProto: external_data 13 (StringStringEntryProto).
  tensor: { 13: 'entry' },
  entry: {},
};

const utf8 = new TextDecoder();

interface Field {
  readonly number: number;
  readonly wireType: number;
  /** The varint's value (wire type 0). */
  readonly value: number;
  /** The payload's range (wire type 2). */
  readonly start: number;
  readonly end: number;
}

/** Reads a varint at `pos`; returns its value (exact up to 2^53) and the position after it. */
function readVarint(bytes: Uint8Array, pos: number, end: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) throw new OnnxFormatError('a number runs past the end of its message');
    const byte = bytes[pos++] as number;
    value += (byte & 0x7f) * scale;
    if ((byte & 0x80) === 0) return [value, pos];
    scale *= 128;
  }
  throw new OnnxFormatError('a number is longer than 10 bytes');
}

/** The fields of the message in bytes[start, end), in order. */
function* fields(bytes: Uint8Array, start: number, end: number): Generator<Field> {
  let pos = start;
  while (pos < end) {
    const [key, afterKey] = readVarint(bytes, pos, end);
    const number = Math.floor(key / 8);
    const wireType = key % 8;
    if (number === 0) throw new OnnxFormatError('field number 0');
    pos = afterKey;
    if (wireType === VARINT) {
      const [value, next] = readVarint(bytes, pos, end);
      pos = next;
      yield { number, wireType, value, start: pos, end: pos };
    } else if (wireType === LENGTH_DELIMITED) {
      const [length, next] = readVarint(bytes, pos, end);
      if (length > end - next) throw new OnnxFormatError('a field is longer than its message');
      pos = next + length;
      yield { number, wireType, value: 0, start: next, end: pos };
    } else if (wireType === FIXED64 || wireType === FIXED32) {
      pos += wireType === FIXED64 ? 8 : 4;
      if (pos > end) throw new OnnxFormatError('a fixed-size field runs past the end of its message');
    } else {
      // Groups (3, 4) are deprecated and never written by ONNX; 6 and 7 do not exist.
      throw new OnnxFormatError(`wire type ${wireType} (field ${number})`);
    }
  }
}

/** A StringStringEntryProto (key 1, value 2) in bytes[start, end). */
function readEntry(bytes: Uint8Array, start: number, end: number): { key?: string; value?: string } {
  const entry: { key?: string; value?: string } = {};
  for (const field of fields(bytes, start, end)) {
    if (field.wireType !== LENGTH_DELIMITED) continue;
    const text = utf8.decode(bytes.subarray(field.start, field.end));
    if (field.number === 1) entry.key = text;
    else if (field.number === 2) entry.value = text;
  }
  return entry;
}

/**
 * Every `location` an external-data tensor of the model names, once each, in order of appearance.
 * Throws OnnxFormatError where the bytes are not a walkable ONNX model, or a tensor is marked
 * external without a location.
 */
export function externalDataLocations(model: Uint8Array): string[] {
  const locations = new Set<string>();
  const walk = (kind: MessageKind, start: number, end: number, depth: number): void => {
    if (depth > MAX_NESTING) throw new OnnxFormatError(`messages nested more than ${MAX_NESTING} deep`);
    let external = false;
    let location: string | undefined;
    for (const field of fields(model, start, end)) {
      if (kind === 'tensor' && field.number === 14 && field.wireType === VARINT) {
        external = field.value === EXTERNAL;
        continue;
      }
      if (field.wireType !== LENGTH_DELIMITED) continue;
      const child = CHILDREN[kind][field.number];
      if (child === 'entry') {
        const entry = readEntry(model, field.start, field.end);
        if (entry.key === 'location') location = entry.value ?? '';
      } else if (child !== undefined) {
        walk(child, field.start, field.end, depth + 1);
      }
    }
    if (kind !== 'tensor') return;
    if (external && location === undefined) {
      throw new OnnxFormatError('a tensor stored as external data names no location');
    }
    // onnxruntime honours a location only on an EXTERNAL tensor; listing every one errs on the safe side.
    if (location !== undefined) locations.add(location);
  };
  walk('model', 0, model.byteLength, 0);
  return [...locations];
}
