/**
 * A minimal ONNX writer: enough protobuf to build small elementwise graphs at run time (the
 * denoising step graphs, tensor copies), so they run on the same execution provider as the UNet and
 * their inputs and outputs can stay in GPU buffers. Written from onnx.proto's field numbers; it
 * writes ModelProto, GraphProto, NodeProto, ValueInfoProto, TypeProto, TensorShapeProto, TensorProto,
 * AttributeProto and OperatorSetIdProto, and nothing else.
 */

/** Element types the builder writes (TensorProto.DataType numbers). */
export type ElementType = 'float32' | 'int64';

const DATA_TYPE: Record<ElementType, number> = { float32: 1, int64: 7 };

/** A dimension: a fixed size, or a `dim_param` name for a dynamic one (same name = same size). */
export type Dimension = number | string;

export interface ValueInfo {
  readonly name: string;
  readonly type: ElementType;
  /** Omitted: any rank (the graph accepts tensors of every shape). */
  readonly shape?: readonly Dimension[];
}

export type AttributeValue =
  | { readonly int: number }
  | { readonly float: number }
  | { readonly ints: readonly number[] };

export interface NodeSpec {
  readonly op: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes?: Readonly<Record<string, AttributeValue>>;
}

export interface Initializer {
  readonly name: string;
  readonly dims: readonly number[];
  readonly data: Float32Array | BigInt64Array;
}

export interface GraphSpec {
  readonly name: string;
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
  readonly nodes: readonly NodeSpec[];
  readonly initializers?: readonly Initializer[];
}

/** ONNX IR version 8 is the one that goes with opset 17 (onnx 1.12). */
const IR_VERSION = 8;
export const OPSET = 17;

// Protobuf wire types.
const VARINT = 0;
const FIXED32 = 5;
const LENGTH_DELIMITED = 2;

const utf8 = new TextEncoder();

/** Appends protobuf fields to a growing byte list; nested messages are written to their own writer. */
class ProtoWriter {
  private readonly chunks: Uint8Array[] = [];
  private size = 0;

  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.size += bytes.length;
  }

  private rawVarint(value: bigint): void {
    // int64 fields are two's complement: a negative value takes all ten bytes.
    let v = BigInt.asUintN(64, value);
    const bytes: number[] = [];
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v !== 0n) byte |= 0x80;
      bytes.push(byte);
    } while (v !== 0n);
    this.push(Uint8Array.from(bytes));
  }

  private key(field: number, wireType: number): void {
    this.rawVarint(BigInt((field << 3) | wireType));
  }

  varint(field: number, value: number | bigint): this {
    this.key(field, VARINT);
    this.rawVarint(BigInt(value));
    return this;
  }

  float(field: number, value: number): this {
    this.key(field, FIXED32);
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setFloat32(0, value, true);
    this.push(bytes);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.key(field, LENGTH_DELIMITED);
    this.rawVarint(BigInt(value.length));
    this.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, utf8.encode(value));
  }

  message(field: number, write: (inner: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    write(inner);
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let offset = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }
}

// Field numbers from onnx.proto.
const AttributeProto = { name: 1, f: 2, i: 3, ints: 8, type: 20 } as const;
const AttributeType = { FLOAT: 1, INT: 2, INTS: 7 } as const;
const NodeProto = { input: 1, output: 2, name: 3, opType: 4, attribute: 5 } as const;
const TensorProto = { dims: 1, dataType: 2, name: 8, rawData: 9 } as const;
const ValueInfoProto = { name: 1, type: 2 } as const;
const TypeProto = { tensorType: 1 } as const;
const TypeProtoTensor = { elemType: 1, shape: 2 } as const;
const TensorShapeProto = { dim: 1 } as const;
const Dimension = { value: 1, param: 2 } as const;
const GraphProto = { node: 1, name: 2, initializer: 5, input: 11, output: 12 } as const;
const OperatorSetIdProto = { domain: 1, version: 2 } as const;
const ModelProto = { irVersion: 1, producerName: 2, graph: 7, opsetImport: 8 } as const;

function writeAttribute(w: ProtoWriter, name: string, value: AttributeValue): void {
  w.string(AttributeProto.name, name);
  if ('int' in value) {
    w.varint(AttributeProto.type, AttributeType.INT).varint(AttributeProto.i, value.int);
  } else if ('float' in value) {
    w.varint(AttributeProto.type, AttributeType.FLOAT).float(AttributeProto.f, value.float);
  } else {
    w.varint(AttributeProto.type, AttributeType.INTS);
    // Unpacked repeated int64, as onnx's own serializer writes it (proto2 default).
    for (const v of value.ints) w.varint(AttributeProto.ints, v);
  }
}

function writeNode(w: ProtoWriter, node: NodeSpec, index: number): void {
  for (const input of node.inputs) w.string(NodeProto.input, input);
  for (const output of node.outputs) w.string(NodeProto.output, output);
  w.string(NodeProto.name, `${node.op}_${index}`);
  w.string(NodeProto.opType, node.op);
  for (const [name, value] of Object.entries(node.attributes ?? {})) {
    w.message(NodeProto.attribute, (a) => writeAttribute(a, name, value));
  }
}

function writeValueInfo(w: ProtoWriter, info: ValueInfo): void {
  w.string(ValueInfoProto.name, info.name);
  w.message(ValueInfoProto.type, (type) =>
    type.message(TypeProto.tensorType, (tensor) => {
      tensor.varint(TypeProtoTensor.elemType, DATA_TYPE[info.type]);
      const { shape } = info;
      if (shape) {
        tensor.message(TypeProtoTensor.shape, (s) => {
          for (const dim of shape) {
            s.message(TensorShapeProto.dim, (d) =>
              typeof dim === 'number' ? d.varint(Dimension.value, dim) : d.string(Dimension.param, dim),
            );
          }
        });
      }
    }),
  );
}

function writeInitializer(w: ProtoWriter, init: Initializer): void {
  for (const dim of init.dims) w.varint(TensorProto.dims, dim);
  w.varint(TensorProto.dataType, init.data instanceof Float32Array ? DATA_TYPE.float32 : DATA_TYPE.int64);
  w.string(TensorProto.name, init.name);
  // raw_data is little-endian by the spec; copy through a DataView so a big-endian host writes it right.
  const raw = new Uint8Array(init.data.length * init.data.BYTES_PER_ELEMENT);
  const view = new DataView(raw.buffer);
  init.data.forEach((v: number | bigint, i: number) => {
    if (typeof v === 'bigint') view.setBigInt64(i * 8, v, true);
    else view.setFloat32(i * 4, v, true);
  });
  w.bytes(TensorProto.rawData, raw);
}

/** Serialises a one-graph model at opset 17 (default domain) as ONNX protobuf bytes. */
export function buildOnnxModel(graph: GraphSpec, producer = 'kandinsky-web'): Uint8Array {
  const model = new ProtoWriter();
  model.varint(ModelProto.irVersion, IR_VERSION);
  model.string(ModelProto.producerName, producer);
  model.message(ModelProto.graph, (g) => {
    graph.nodes.forEach((node, index) => {
      g.message(GraphProto.node, (n) => writeNode(n, node, index));
    });
    g.string(GraphProto.name, graph.name);
    for (const init of graph.initializers ?? [])
      g.message(GraphProto.initializer, (t) => writeInitializer(t, init));
    for (const input of graph.inputs) g.message(GraphProto.input, (v) => writeValueInfo(v, input));
    for (const output of graph.outputs) g.message(GraphProto.output, (v) => writeValueInfo(v, output));
  });
  model.message(ModelProto.opsetImport, (o) =>
    o.string(OperatorSetIdProto.domain, '').varint(OperatorSetIdProto.version, OPSET),
  );
  return model.finish();
}

/**
 * Builds a graph node by node with generated names for intermediate values, so a step graph reads
 * like the arithmetic it performs: `g.add(g.mul(a, x), g.mul(b, y))`.
 */
export class GraphBuilder {
  private readonly nodes: NodeSpec[] = [];
  private readonly initializers: Initializer[] = [];
  private readonly inputs: ValueInfo[] = [];
  private readonly outputs: ValueInfo[] = [];
  private counter = 0;

  constructor(private readonly name: string) {}

  input(name: string, type: ElementType, shape?: readonly Dimension[]): string {
    this.inputs.push({ name, type, ...(shape ? { shape } : {}) });
    return name;
  }

  /** Marks `value` as a graph output named `name` (through an Identity when the names differ). */
  output(value: string, name: string, type: ElementType, shape?: readonly Dimension[]): void {
    if (value !== name) this.nodes.push({ op: 'Identity', inputs: [value], outputs: [name] });
    this.outputs.push({ name, type, ...(shape ? { shape } : {}) });
  }

  constant(data: Float32Array | BigInt64Array, dims: readonly number[]): string {
    const name = `const_${this.counter++}`;
    this.initializers.push({ name, dims, data });
    return name;
  }

  /** One node; returns the names of its `outputCount` outputs. */
  node(
    op: string,
    inputs: readonly string[],
    outputCount: number,
    attributes?: Readonly<Record<string, AttributeValue>>,
  ): string[] {
    const outputs = Array.from({ length: outputCount }, () => `${op.toLowerCase()}_${this.counter++}`);
    this.nodes.push({ op, inputs, outputs, ...(attributes ? { attributes } : {}) });
    return outputs;
  }

  private binary(op: string, a: string, b: string): string {
    return this.node(op, [a, b], 1)[0] as string;
  }

  add(a: string, b: string): string {
    return this.binary('Add', a, b);
  }

  sub(a: string, b: string): string {
    return this.binary('Sub', a, b);
  }

  mul(a: string, b: string): string {
    return this.binary('Mul', a, b);
  }

  div(a: string, b: string): string {
    return this.binary('Div', a, b);
  }

  build(): Uint8Array {
    return buildOnnxModel({
      name: this.name,
      inputs: this.inputs,
      outputs: this.outputs,
      nodes: this.nodes,
      initializers: this.initializers,
    });
  }
}
