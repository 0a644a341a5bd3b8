/**
 * The tiny model set on onnxruntime-node's bundled WebGPU provider, for tests and benchmarks. Without
 * a GPU it runs on SwiftShader, Chromium's CPU Vulkan (TESTING.md); with a GPU and its Vulkan driver
 * (VK_ICD_FILENAMES set by the caller, or the loader's default) the same code measures the GPU.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { GraphComponentId } from '../models/contract';
import { ModelSet, type Residency } from '../workers/engine/model-set';
import type { InferenceSession } from '../workers/engine/ort';
import { ortCpu, TINY_DIR, tinyManifest } from './tiny-fixture.node';

export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/**
 * Points the Vulkan loader at SwiftShader unless the caller chose an ICD. Dawn reads the variable
 * when the first WebGPU session is created, so calling this before then (in a forked worker, whose
 * environment is its own) is early enough. Returns why WebGPU can't run here, or null.
 */
export function swiftShaderUnlessIcdSet(): string | null {
  process.env.VK_ICD_FILENAMES ??= SWIFTSHADER_ICD;
  const icd = process.env.VK_ICD_FILENAMES;
  return existsSync(icd)
    ? null
    : `no Vulkan ICD at ${icd} (install Debian's chromium and libvulkan1 for SwiftShader)`;
}

const DECODER_GRAPHS: ReadonlySet<GraphComponentId> = new Set(['unet', 'unet_inpaint', 'unet_depth']);
const files = { read: async (path: string) => new Uint8Array(await readFile(TINY_DIR + path)) };

/**
 * The tiny set with its UNets (and so the engine's step and copy graphs) on WebGPU and the other
 * stages on the CPU provider: what these tests and benchmarks look at is the denoising loop, and
 * SwiftShader takes seconds per MoVQ decode. The browser parity e2e runs every component on WebGPU.
 */
export class DecoderOnWebGpu extends ModelSet {
  private readonly cpu = new ModelSet(ortCpu, tinyManifest, files, {
    sessionOptions: { executionProviders: ['cpu'], intraOpNumThreads: 1 },
  });

  constructor(options: { residency?: Residency } = {}) {
    super(ortCpu, tinyManifest, files, { sessionOptions: { executionProviders: ['webgpu'] }, ...options });
  }

  override session(id: GraphComponentId): Promise<InferenceSession> {
    return DECODER_GRAPHS.has(id) ? super.session(id) : this.cpu.session(id);
  }

  override async releaseAll(): Promise<void> {
    await Promise.all([super.releaseAll(), this.cpu.releaseAll()]);
  }
}
