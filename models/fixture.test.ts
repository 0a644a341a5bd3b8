// The fixture sets against the contract: each manifest validates and every listed byte matches its
// size and sha256; for the tiny set every graph also loads from the manifest's files alone (as the
// browser loads them), has the contract's inputs and outputs, and reproduces the recorded diffusers
// intermediates (the checkpoint set's graphs are proven by its parity cases).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { type NpyArray, parseNpy } from '../test-support/npy';
import {
  componentKind,
  DYNAMIC_AXES,
  GRAPH_COMPONENTS,
  GRAPH_CONTRACTS,
  type GraphComponentId,
  type ModelDims,
  resolveDim,
  TENSOR_COMPONENTS,
  TENSOR_CONTRACTS,
} from './contract';
import { type Manifest, manifestFiles, parseManifest } from './manifest';

const SET_DIR = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'tiny');
const REFERENCE_DIR = join(SET_DIR, 'reference');

const manifest: Manifest = parseManifest(JSON.parse(readFileSync(join(SET_DIR, 'manifest.json'), 'utf8')));
const dims: ModelDims = manifest.dims;

const sessions = new Map<GraphComponentId, ort.InferenceSession>();

/** Creates a session from exactly the bytes the manifest names (graph + external-data shards). */
async function session(id: GraphComponentId): Promise<ort.InferenceSession> {
  const existing = sessions.get(id);
  if (existing) return existing;
  const component = manifest.components[id];
  if (component?.kind !== 'onnx') throw new Error(`${id} is not an onnx component`);
  const [graph, ...shards] = component.files;
  if (!graph) throw new Error(`${id} has no graph file`);
  const created = await ort.InferenceSession.create(readFileSync(join(SET_DIR, graph.path)), {
    executionProviders: ['cpu'],
    externalData: shards.map((s) => ({ path: s.path, data: readFileSync(join(SET_DIR, s.path)) })),
  });
  sessions.set(id, created);
  return created;
}

afterAll(async () => {
  for (const s of sessions.values()) await s.release();
  sessions.clear();
});

function npy(caseName: string, tensor: string): NpyArray {
  return parseNpy(new Uint8Array(readFileSync(join(REFERENCE_DIR, caseName, `${tensor}.npy`))));
}

function toTensor(array: NpyArray): ort.Tensor {
  if (array.dtype === '|b1') return new ort.Tensor('bool', Uint8Array.from(array.data), array.shape);
  if (array.dtype === '<i8') return new ort.Tensor('int64', array.data, array.shape);
  return new ort.Tensor('float32', array.data as Float32Array, array.shape);
}

/** Channels [from, to) of an NCHW float32 array. */
function channels(array: NpyArray, from: number, to: number): ort.Tensor {
  const [n = 0, c = 0, h = 0, w = 0] = array.shape;
  const plane = h * w;
  const out = new Float32Array(n * (to - from) * plane);
  const data = array.data as Float32Array;
  for (let b = 0; b < n; b++) {
    out.set(data.subarray((b * c + from) * plane, (b * c + to) * plane), b * (to - from) * plane);
  }
  return new ort.Tensor('float32', out, [n, to - from, h, w]);
}

function timesteps(value: number, batch: number): ort.Tensor {
  return new ort.Tensor('float32', new Float32Array(batch).fill(value), [batch]);
}

function expectClose(actual: ort.Tensor, expected: NpyArray, atol: number): void {
  expect(actual.dims).toEqual(expected.shape);
  const a = actual.data as Float32Array;
  const e = expected.data as Float32Array;
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < e.length; i++) {
    worst = Math.max(worst, Math.abs((a[i] ?? Number.NaN) - (e[i] ?? 0)));
    scale = Math.max(scale, Math.abs(e[i] ?? 0));
  }
  expect(worst).toBeLessThanOrEqual(atol * Math.max(1, scale));
}

interface ReferenceCase {
  name: string;
  prior_timesteps: number[];
  decoder_timesteps: number[];
}
const cases: ReferenceCase[] = JSON.parse(readFileSync(join(REFERENCE_DIR, 'cases.json'), 'utf8')).cases;
function referenceCase(name: string): ReferenceCase {
  const found = cases.find((c) => c.name === name);
  if (!found) throw new Error(`no reference case ${name}`);
  return found;
}

/** The fixture sets: the tiny one, and the checkpoint set exported through the real-checkpoint path. */
const SETS = [
  { name: 'tiny', dir: SET_DIR, manifest, graphs: 20 },
  (() => {
    const dir = join(dirname(SET_DIR), 'tiny-diffusers');
    const parsed = parseManifest(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')));
    return { name: 'tiny-diffusers', dir, manifest: parsed, graphs: 8 };
  })(),
];

describe.each(SETS)('$name fixture manifest', (set) => {
  it('lists the components of contract 1 with the kind the contract gives them', () => {
    // The checkpoint set was exported without a depth estimator (an optional component).
    const optional = set.name === 'tiny' ? [] : ['depth_estimator'];
    for (const id of [...GRAPH_COMPONENTS, ...TENSOR_COMPONENTS, 'tokenizer'] as const) {
      if (optional.includes(id)) continue;
      expect(set.manifest.components[id]?.kind, id).toBe(componentKind(id));
    }
    expect(set.manifest.contractVersion).toBe('1');
    expect(set.manifest.dims.movqScaleFactor).toBe(8);
  });

  it('matches every listed file byte for byte (size and sha256)', () => {
    const files = manifestFiles(set.manifest);
    expect(files.length).toBeGreaterThan(set.graphs);
    for (const { file } of files) {
      const bytes = readFileSync(join(set.dir, file.path));
      expect(bytes.length, file.path).toBe(file.bytes);
      expect(createHash('sha256').update(bytes).digest('hex'), file.path).toBe(file.sha256);
    }
  });

  it('ships the constant tensors with the contract shapes', () => {
    for (const id of TENSOR_COMPONENTS) {
      const component = set.manifest.components[id];
      if (component?.kind !== 'tensor') throw new Error(id);
      expect(component.shape).toEqual(
        TENSOR_CONTRACTS[id].shape.map((d) => resolveDim(d, set.manifest.dims)),
      );
    }
  });
});

describe.each(GRAPH_COMPONENTS)('graph %s', (id) => {
  it('has the contract inputs and outputs (names, order, dtypes, shapes)', async () => {
    const s = await session(id);
    const contract = GRAPH_CONTRACTS[id];
    for (const [metadata, specs] of [
      [s.inputMetadata, contract.inputs],
      [s.outputMetadata, contract.outputs],
    ] as const) {
      expect(metadata.map((m) => m.name)).toEqual(specs.map((t) => t.name));
      metadata.forEach((m, i) => {
        const spec = specs[i];
        if (!spec || !m.isTensor) throw new Error(`${id}.${m.name} is not a tensor`);
        expect(m.type, `${id}.${m.name} dtype`).toBe(spec.dtype);
        expect(m.shape.length, `${id}.${m.name} rank`).toBe(spec.shape.length);
        spec.shape.forEach((dim, axis) => {
          const fixed = resolveDim(dim, dims);
          const actual = m.shape[axis];
          if (fixed === null) {
            expect(DYNAMIC_AXES).toContain(dim);
            expect(actual, `${id}.${m.name} axis ${axis} is dynamic`).toBe(dim);
          } else {
            expect(actual, `${id}.${m.name} axis ${axis}`).toBe(fixed);
          }
        });
      });
    }
  });
});

describe('graphs reproduce the recorded diffusers intermediates', () => {
  it('text_encoder: token ids -> text_embeds, last_hidden_state', async () => {
    const s = await session('text_encoder');
    for (const role of ['text_cond', 'text_uncond']) {
      const out = await s.run({ input_ids: toTensor(npy('txt2img_64_neg', `${role}_input_ids`)) });
      expectClose(out.text_embeds as ort.Tensor, npy('txt2img_64_neg', `${role}_text_embeds`), 1e-5);
      expectClose(
        out.last_hidden_state as ort.Tensor,
        npy('txt2img_64_neg', `${role}_last_hidden_state`),
        1e-5,
      );
    }
  });

  it('prior: CFG-batched step inputs -> predicted_image_embedding', async () => {
    const s = await session('prior');
    const name = 'txt2img_h64_w128_neg';
    const ref = referenceCase(name);
    for (const [step, t] of ref.prior_timesteps.entries()) {
      const latents = npy(name, `prior_model_input_${step}`);
      const out = await s.run({
        latents: toTensor(latents),
        timestep: timesteps(t, latents.shape[0] ?? 0),
        proj_embedding: toTensor(npy(name, 'prior_proj_embedding')),
        encoder_hidden_states: toTensor(npy(name, 'prior_encoder_hidden_states')),
        attention_mask: toTensor(npy(name, 'prior_attention_mask')),
      });
      expectClose(out.predicted_image_embedding as ort.Tensor, npy(name, `prior_model_output_${step}`), 1e-5);
    }
  });

  it('image_encoder: a zero image -> the shipped negative_image_embeds', async () => {
    const s = await session('image_encoder');
    const size = dims.imageEncoderSize;
    const out = await s.run({
      pixel_values: new ort.Tensor('float32', new Float32Array(3 * size * size), [1, 3, size, size]),
    });
    const file = manifest.components.negative_image_embeds?.files[0];
    if (!file) throw new Error('negative_image_embeds missing');
    const bytes = readFileSync(join(SET_DIR, file.path));
    const expected = new Float32Array(
      bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
    );
    expectClose(
      out.image_embeds as ort.Tensor,
      { dtype: '<f4', shape: [1, dims.imageEmbedDim], data: expected },
      1e-5,
    );
  });

  it('unet: non-square latents, CFG batch', async () => {
    const s = await session('unet');
    const name = 'txt2img_h64_w128_neg';
    const ref = referenceCase(name);
    for (const [step, t] of ref.decoder_timesteps.entries()) {
      const sample = npy(name, `decoder_model_input_${step}`);
      const out = await s.run({
        sample: toTensor(sample),
        timestep: timesteps(t, sample.shape[0] ?? 0),
        image_embeds: toTensor(npy(name, 'decoder_image_embeds')),
      });
      expectClose(out.noise_pred as ort.Tensor, npy(name, `decoder_model_output_${step}`), 1e-5);
    }
  });

  it('unet_inpaint: the 9 recorded channels as three inputs', async () => {
    const s = await session('unet_inpaint');
    const name = 'inpaint_64_neg';
    const t = referenceCase(name).decoder_timesteps[0] ?? 0;
    const input = npy(name, 'decoder_model_input_0');
    const out = await s.run({
      sample: channels(input, 0, 4),
      timestep: timesteps(t, input.shape[0] ?? 0),
      image_embeds: toTensor(npy(name, 'decoder_image_embeds')),
      masked_image_latents: channels(input, 4, 8),
      mask: channels(input, 8, 9),
    });
    expectClose(out.noise_pred as ort.Tensor, npy(name, 'decoder_model_output_0'), 1e-5);
  });

  it('unet_depth: latents + hint', async () => {
    const s = await session('unet_depth');
    const name = 'depth_64_neg';
    const t = referenceCase(name).decoder_timesteps[0] ?? 0;
    const sample = npy(name, 'decoder_model_input_0');
    const out = await s.run({
      sample: toTensor(sample),
      timestep: timesteps(t, sample.shape[0] ?? 0),
      image_embeds: toTensor(npy(name, 'decoder_image_embeds')),
      hint: toTensor(npy(name, 'decoder_hint')),
    });
    expectClose(out.noise_pred as ort.Tensor, npy(name, 'decoder_model_output_0'), 1e-5);
  });

  it('movq_decoder: final latents -> raw image (non-square)', async () => {
    const s = await session('movq_decoder');
    const out = await s.run({ latents: toTensor(npy('txt2img_h64_w128', 'movq_input_latents')) });
    expectClose(out.sample as ort.Tensor, npy('txt2img_h64_w128', 'movq_output'), 1e-5);
  });

  it('movq_encoder: preprocessed image -> latents', async () => {
    const s = await session('movq_encoder');
    const out = await s.run({ image: toTensor(npy('img2img_64_s05', 'input_image')) });
    expectClose(out.latents as ort.Tensor, npy('img2img_64_s05', 'image_latents'), 1e-5);
  });
});
