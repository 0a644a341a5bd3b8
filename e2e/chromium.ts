/**
 * How the tests and benchmarks start Chromium: Debian's build (Playwright's own download can't run
 * on these machines) with WebGPU on SwiftShader, a CPU Vulkan, and no background networking (the
 * closed network would refuse its connections).
 */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS: readonly string[] = [
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
  '--enable-features=Vulkan',
  '--no-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
