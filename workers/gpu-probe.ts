import type { GpuReport } from './api';

/** Probes WebGPU in the current (worker) global scope. Never throws: absence is a normal answer. */
export async function probeGpu(): Promise<GpuReport> {
  if (!self.isSecureContext) {
    return {
      available: false,
      reason: 'insecure-context',
      detail: 'WebGPU is only exposed to secure contexts: open the app over https:// or from localhost.',
    };
  }
  const gpu = (self.navigator as WorkerNavigator & { gpu?: GPU }).gpu;
  if (!gpu) {
    return { available: false, reason: 'no-api', detail: 'navigator.gpu is missing in the worker.' };
  }
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (error) {
    return { available: false, reason: 'no-adapter', detail: `requestAdapter() failed: ${String(error)}` };
  }
  if (!adapter) {
    return {
      available: false,
      reason: 'no-adapter',
      detail: 'requestAdapter() returned no adapter (GPU blocklisted, driver missing or WebGPU disabled).',
    };
  }
  const info = adapter.info;
  return {
    available: true,
    adapter: {
      vendor: info.vendor,
      architecture: info.architecture,
      device: info.device,
      description: info.description,
      shaderF16: adapter.features.has('shader-f16'),
      maxBufferSize: adapter.limits.maxBufferSize,
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      features: [...adapter.features].sort(),
    },
  };
}
