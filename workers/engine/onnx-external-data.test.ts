// External data a graph names must be files its component lists (issue 19): the protobuf reader
// finds every location (initializers, subgraphs, functions), stays bounded on hostile bytes, and
// ModelSet refuses a graph naming an unlisted file before onnxruntime sees it, whether onnxruntime
// would get the bytes (browser) or open the folder itself (Node).
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Manifest, parseManifest } from '../../models/manifest';
import { ortCpu, TINY_DIR, tinyManifest } from '../../test-support/tiny-fixture.node';
import { toWireError } from '../errors';
import { ModelSet } from './model-set';
import { externalDataLocations, MAX_NESTING, OnnxFormatError } from './onnx-external-data';
import { liveOrtObjects, type OrtRuntime } from './ort';

const FIXTURES = path.join(TINY_DIR, '..');
const work = mkdtempSync(path.join(tmpdir(), 'kandinsky-external-data-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// A few protobuf writers for hand-made graphs.
function varint(value: number): number[] {
  const out: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
  return out;
}
const field = (number: number, payload: readonly number[]): number[] => [
  ...varint(number * 8 + 2),
  ...varint(payload.length),
  ...payload,
];
const text = (value: string): number[] => [...new TextEncoder().encode(value)];
/** A TensorProto named `name` stored in `location` (omitted: external without a location). */
function externalTensor(name: string, location?: string): number[] {
  return [
    ...field(8, text(name)),
    ...(location === undefined
      ? []
      : field(13, [...field(1, text('location')), ...field(2, text(location))])),
    ...field(13, [...field(1, text('offset')), ...field(2, text('0'))]),
    ...varint(14 * 8),
    1,
  ];
}
const model = (graph: readonly number[]) => new Uint8Array(field(7, graph));

/** A copy of `bytes` with every occurrence of `from` (UTF-8) replaced by `to` of the same length. */
function replaced(bytes: Uint8Array, from: string, to: string): Uint8Array {
  expect(to.length).toBe(from.length);
  const out = bytes.slice();
  const needle = new TextEncoder().encode(from);
  let count = 0;
  for (let i = 0; i + needle.length <= out.length; i++) {
    if (needle.every((b, j) => out[i + j] === b)) {
      out.set(new TextEncoder().encode(to), i);
      count++;
    }
  }
  expect(count).toBeGreaterThan(0);
  return out;
}

describe('externalDataLocations', () => {
  it('finds exactly the shards each fixture graph lists, in every fixture set', () => {
    for (const set of ['tiny', 'tiny-int4', 'tiny-int4c6']) {
      const manifest = parseManifest(
        JSON.parse(readFileSync(path.join(FIXTURES, set, 'manifest.json'), 'utf8')),
      );
      for (const component of Object.values(manifest.components)) {
        if (component.kind !== 'onnx') continue;
        const [graph, ...shards] = component.files;
        if (!graph) throw new Error('no graph');
        const locations = externalDataLocations(readFileSync(path.join(FIXTURES, set, graph.path)));
        expect([set, graph.path, locations.sort()]).toEqual([
          set,
          graph.path,
          shards.map((s) => s.path).sort(),
        ]);
      }
    }
    // The tiny set's big graphs do use external data: this test is not vacuous.
    expect(tinyManifest.components.unet?.files.length).toBeGreaterThan(1);
  });

  it('finds locations in subgraphs (If branches), node tensor attributes, functions and sparse initializers', () => {
    const branch = field(5, externalTensor('then_w', 'then.bin'));
    const ifNode = [
      ...field(4, text('If')),
      ...field(5, [...field(1, text('then_branch')), ...field(6, branch)]),
    ];
    const constantNode = [
      ...field(5, [...field(1, text('value')), ...field(5, externalTensor('c', 'constant.bin'))]),
    ];
    const sparse = field(15, field(1, externalTensor('values', 'sparse.bin')));
    const graph = [
      ...field(1, ifNode),
      ...field(1, constantNode),
      ...sparse,
      ...field(5, externalTensor('w', 'main.bin')),
    ];
    const functionProto = field(
      25,
      field(
        7,
        constantNode.map((b) => b),
      ),
    );
    const bytes = new Uint8Array([...model(graph), ...functionProto]);
    expect(externalDataLocations(bytes).sort()).toEqual([
      'constant.bin',
      'main.bin',
      'sparse.bin',
      'then.bin',
    ]);
  });

  it('refuses malformed bytes with OnnxFormatError, never another exception', () => {
    const unet = readFileSync(path.join(TINY_DIR, 'unet.onnx'));
    const bad: [string, Uint8Array][] = [
      ['truncated', unet.subarray(0, Math.floor(unet.length / 2))],
      ['external tensor without a location', model(field(5, externalTensor('w')))],
      ['a group (wire type 3)', new Uint8Array([(7 << 3) | 3])],
      ['a length past the end', new Uint8Array([(7 << 3) | 2, 0xff, 0xff, 0xff, 0xff, 0x0f])],
      ['an 11-byte varint', new Uint8Array([8, ...Array(10).fill(0xff), 1])],
      ['field number 0', new Uint8Array([2, 0])],
    ];
    for (const [what, bytes] of bad) {
      expect(() => externalDataLocations(bytes), what).toThrow(OnnxFormatError);
    }
  });

  it('refuses subgraphs nested past MAX_NESTING without overflowing the stack', () => {
    // graph → node → attribute → graph → ... 200 levels deep, built inside out.
    let graph: number[] = [];
    for (let i = 0; i < 200; i++) graph = field(1, field(5, field(6, graph)));
    expect(MAX_NESTING).toBeLessThan(200);
    expect(() => externalDataLocations(model(graph))).toThrow(/nested more than 64 deep/);
  });
});

/** ortCpu, counting the sessions it is asked to create. */
function countingOrt(): { ort: OrtRuntime; creates: () => number } {
  let creates = 0;
  const InferenceSession = {
    create: ((...args: Parameters<OrtRuntime['InferenceSession']['create']>) => {
      creates++;
      return ortCpu.InferenceSession.create(...args);
    }) as OrtRuntime['InferenceSession']['create'],
  };
  return { ort: { ...ortCpu, InferenceSession } as OrtRuntime, creates: () => creates };
}

describe('ModelSet refuses a graph naming a file its component does not list', () => {
  const unetGraph = new Uint8Array(readFileSync(path.join(TINY_DIR, 'unet.onnx')));

  async function refusal(manifest: Manifest, read: (p: string) => Uint8Array, folder?: string) {
    const { ort, creates } = countingOrt();
    const before = liveOrtObjects().sessions;
    const models = new ModelSet(ort, manifest, {
      read: async (p) => read(p),
      ...(folder ? { localPath: async (p: string) => path.join(folder, p) } : {}),
    });
    const error = toWireError(
      await models.session('unet').then(
        () => 'loaded',
        (e: unknown) => e,
      ),
    );
    await models.releaseAll();
    expect(creates()).toBe(0);
    expect(liveOrtObjects().sessions).toBe(before);
    return error;
  }

  it('from bytes (the browser path): an unlisted shard name, a path out of the folder', async () => {
    for (const location of ['unet.onnx.data-99', '../unet.onnx.data']) {
      const graph = replaced(unetGraph, 'unet.onnx.data-00', location);
      const error = await refusal(tinyManifest, (p) =>
        p === 'unet.onnx' ? graph : new Uint8Array(readFileSync(TINY_DIR + p)),
      );
      expect(error.code).toBe('MODEL_LOAD_FAILED');
      expect(error.message).toContain(
        `Could not load unet: unet.onnx reads external data from "${location}", which the manifest does not list for unet`,
      );
    }
  });

  it('from a folder (the Node path), where onnxruntime would open the unlisted file itself', async () => {
    const folder = path.join(work, 'set');
    rmSync(folder, { recursive: true, force: true });
    mkdirSync(folder);
    for (const file of tinyManifest.components.unet?.files ?? [])
      copyFileSync(TINY_DIR + file.path, path.join(folder, file.path));
    // The unlisted file holds the right weights: without the check, the session would load.
    copyFileSync(path.join(folder, 'unet.onnx.data-00'), path.join(folder, 'unet.onnx.data-99'));
    const graph = replaced(unetGraph, 'unet.onnx.data-00', 'unet.onnx.data-99');
    writeFileSync(path.join(folder, 'unet.onnx'), graph);
    const error = await refusal(
      tinyManifest,
      (p) => new Uint8Array(readFileSync(path.join(folder, p))),
      folder,
    );
    expect(error).toMatchObject({
      code: 'MODEL_LOAD_FAILED',
      message: expect.stringContaining('"unet.onnx.data-99"'),
    });
  });

  it('a component listing no shards may name none (the unet with its shards left out of the manifest)', async () => {
    const manifest = parseManifest({
      ...tinyManifest,
      components: {
        ...tinyManifest.components,
        unet: { ...tinyManifest.components.unet, files: tinyManifest.components.unet?.files.slice(0, 1) },
      },
    });
    const error = await refusal(manifest, (p) => new Uint8Array(readFileSync(TINY_DIR + p)));
    expect(error.message).toContain('"unet.onnx.data-00", which the manifest does not list for unet');
  });

  it('says a graph that is not ONNX is not well-formed, naming the component', async () => {
    const error = await refusal(tinyManifest, (p) =>
      p === 'unet.onnx' ? unetGraph.subarray(0, 1000) : new Uint8Array(readFileSync(TINY_DIR + p)),
    );
    expect(error.message).toMatch(/^Could not load unet: unet\.onnx is not a well-formed ONNX model \(/);
  });
});
