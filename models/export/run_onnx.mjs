// Runs ONNX graphs with onnxruntime-node's CPU provider for the Python export tool, on machines
// whose Python has no onnxruntime package (see models/README.md).
//
//   node models/export/run_onnx.mjs job.json
//
// job.json: {"runs": [{"model": "a.onnx", "inputs": {"name": "in.npy"}, "outputs": {"name": "out.npy"}}]}
// Tensors travel as .npy files (float32, float16, int64, int32, bool; little-endian, C order).
import { readFileSync, writeFileSync } from 'node:fs';
import ort from 'onnxruntime-node';

const NPY_TO_ORT = {
  '<f4': 'float32',
  '<f2': 'float16',
  '<i8': 'int64',
  '<i4': 'int32',
  '|b1': 'bool',
  '|u1': 'uint8',
};
const ORT_TO_NPY = Object.fromEntries(Object.entries(NPY_TO_ORT).map(([k, v]) => [v, k]));
const ARRAYS = {
  float32: Float32Array,
  float16: Uint16Array,
  int64: BigInt64Array,
  int32: Int32Array,
  bool: Uint8Array,
  uint8: Uint8Array,
};

function readNpy(path) {
  const buf = readFileSync(path);
  const headerLen = buf.readUInt16LE(8);
  const header = buf.subarray(10, 10 + headerLen).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)[1];
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${path}: Fortran order is not supported`);
  const type = NPY_TO_ORT[descr];
  if (!type) throw new Error(`${path}: unsupported dtype ${descr}`);
  const body = buf.subarray(10 + headerLen);
  const copy = new Uint8Array(body.length);
  copy.set(body);
  const data = new ARRAYS[type](copy.buffer);
  return new ort.Tensor(type, type === 'bool' ? Uint8Array.from(data) : data, shape);
}

function writeNpy(path, tensor) {
  const descr = ORT_TO_NPY[tensor.type];
  if (!descr) throw new Error(`unsupported output type ${tensor.type}`);
  const shape = tensor.dims.length === 1 ? `(${tensor.dims[0]},)` : `(${tensor.dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header = `${header}${' '.repeat(pad === 64 ? 0 : pad)}\n`;
  const prefix = Buffer.alloc(10);
  prefix.write('\x93NUMPY', 0, 'latin1');
  prefix.writeUInt8(1, 6);
  prefix.writeUInt8(0, 7);
  prefix.writeUInt16LE(header.length, 8);
  const data = tensor.data;
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  writeFileSync(path, Buffer.concat([prefix, Buffer.from(header, 'latin1'), bytes]));
}

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const sessions = new Map();
for (const run of job.runs) {
  let session = sessions.get(run.model);
  if (!session) {
    session = await ort.InferenceSession.create(run.model, {
      executionProviders: ['cpu'],
      intraOpNumThreads: 1,
    });
    sessions.set(run.model, session);
  }
  const feeds = Object.fromEntries(Object.entries(run.inputs).map(([name, file]) => [name, readNpy(file)]));
  const results = await session.run(feeds);
  for (const [name, file] of Object.entries(run.outputs)) {
    const tensor = results[name];
    if (!tensor) throw new Error(`${run.model}: no output named ${name}`);
    writeNpy(file, tensor);
  }
}
for (const session of sessions.values()) await session.release();
