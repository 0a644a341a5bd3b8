import * as ortNode from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { buildOnnxModel, GraphBuilder } from './onnx-builder';

/** Loads built bytes in onnxruntime-node (CPU): the real parser is the judge of the protobuf. */
async function load(bytes: Uint8Array): Promise<ortNode.InferenceSession> {
  return ortNode.InferenceSession.create(bytes, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
}

async function run(
  session: ortNode.InferenceSession,
  feeds: Record<string, ortNode.Tensor>,
): Promise<Record<string, { data: number[]; dims: readonly number[] }>> {
  const out = await session.run(feeds);
  const result: Record<string, { data: number[]; dims: readonly number[] }> = {};
  for (const [name, tensor] of Object.entries(out)) {
    result[name] = { data: Array.from(tensor.data as Float32Array), dims: tensor.dims };
    tensor.dispose();
  }
  return result;
}

const f32 = (data: number[], dims: number[]) => new ortNode.Tensor('float32', Float32Array.from(data), dims);

describe('ONNX builder', () => {
  it('writes elementwise graphs with dynamic dims that run at any size', async () => {
    const g = new GraphBuilder('axpy');
    const a = g.input('a', 'float32', []);
    const x = g.input('x', 'float32', ['batch', 'n']);
    const y = g.input('y', 'float32', ['batch', 'n']);
    g.output(g.div(g.sub(g.add(g.mul(a, x), y), y), a), 'x_again', 'float32', ['batch', 'n']);
    g.output(g.add(g.mul(a, x), y), 'axpy', 'float32', ['batch', 'n']);
    const session = await load(g.build());
    expect(session.inputNames).toEqual(['a', 'x', 'y']);
    expect(session.outputNames).toEqual(['x_again', 'axpy']);
    // The dim_params survive: ORT reports them as symbolic dimensions.
    expect(session.inputMetadata[1]).toMatchObject({ name: 'x', type: 'float32', shape: ['batch', 'n'] });
    for (const [batch, n] of [
      [1, 3],
      [2, 5],
    ] as const) {
      const xs = Array.from({ length: batch * n }, (_, i) => i - 2);
      const ys = xs.map((v) => v * 0.5 + 1);
      const out = await run(session, { a: f32([3], []), x: f32(xs, [batch, n]), y: f32(ys, [batch, n]) });
      expect(out.axpy?.dims).toEqual([batch, n]);
      expect(out.axpy?.data).toEqual(xs.map((v, i) => Math.fround(3 * v + (ys[i] as number))));
      expect(out.x_again?.data).toEqual(xs);
    }
    await session.release();
  });

  it('writes int64 and float initializers (negative values too) and int, ints and float attributes', async () => {
    const g = new GraphBuilder('attributes');
    const x = g.input('x', 'float32', [2, 4]);
    // Slice the last column away with a negative end (a ten-byte varint inside raw_data's neighbours).
    const starts = g.constant(BigInt64Array.of(0n), [1]);
    const ends = g.constant(BigInt64Array.of(-1n), [1]);
    const axes = g.constant(BigInt64Array.of(1n), [1]);
    const sliced = g.node('Slice', [x, starts, ends, axes], 1)[0] as string;
    const [top, bottom] = g.node('Split', [sliced], 2, { axis: { int: 0 } }) as [string, string];
    const swapped = g.node('Concat', [bottom, top], 1, { axis: { int: 0 } })[0] as string;
    const transposed = g.node('Transpose', [swapped], 1, { perm: { ints: [1, 0] } })[0] as string;
    const leaky = g.node('LeakyRelu', [transposed], 1, { alpha: { float: 0.25 } })[0] as string;
    const clipped = g.node(
      'Clip',
      [leaky, g.constant(Float32Array.of(-1), []), g.constant(Float32Array.of(6.5), [])],
      1,
    )[0] as string;
    g.output(clipped, 'y', 'float32', [3, 2]);
    const session = await load(g.build());
    const out = await run(session, { x: f32([1, -2, 3, 99, -8, 7, 10, 99], [2, 4]) });
    // rows swapped → [[-8, 7, 10], [1, -2, 3]], transposed → [[-8, 1], [7, -2], [10, 3]],
    // LeakyRelu(0.25) → [[-2, 1], [7, -0.5], [10, 3]], clipped to [-1, 6.5].
    expect(out.y).toEqual({ data: [-1, 1, 6.5, -0.5, 6.5, 3], dims: [3, 2] });
    await session.release();
  });

  it('accepts a graph spec directly and names the opset 17 default domain', async () => {
    const bytes = buildOnnxModel({
      name: 'relu',
      inputs: [{ name: 'x', type: 'float32', shape: ['n'] }],
      outputs: [{ name: 'y', type: 'float32', shape: ['n'] }],
      nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }],
    });
    const session = await load(bytes);
    const out = await run(session, { x: f32([-1, 0.5, 2], [3]) });
    expect(out.y?.data).toEqual([0, 0.5, 2]);
    await session.release();
    // An op that only exists from opset 18 on (Split's num_outputs attribute) must be refused.
    const newer = new GraphBuilder('split18');
    const x = newer.input('x', 'float32', [4]);
    const [half] = newer.node('Split', [x], 2, { axis: { int: 0 }, num_outputs: { int: 2 } });
    newer.output(half as string, 'half', 'float32', [2]);
    await expect(load(newer.build())).rejects.toThrow();
  });
});
