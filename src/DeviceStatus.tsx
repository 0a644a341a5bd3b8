import type { GpuReport } from '../workers/api';
import { formatBytes } from '../workers/format';
import type { SelfTest } from './self-test';
import { adviceFor } from './webgpu-advice';

interface Props {
  readonly gpu: GpuReport | null;
  readonly selfTest: SelfTest;
  readonly userAgent: string;
}

export function DeviceStatus({ gpu, selfTest, userAgent }: Props) {
  if (!gpu) {
    return (
      <section className="panel" aria-busy="true">
        <h2>Your device</h2>
        <p>Looking for a WebGPU adapter…</p>
      </section>
    );
  }
  if (!gpu.available) {
    const advice = adviceFor(gpu, userAgent);
    return (
      <section className="panel error" role="alert" data-testid="webgpu-status" data-available="false">
        <h2>{advice?.title ?? 'WebGPU is not available'}</h2>
        <p>Kandinsky Web runs the model on your GPU through WebGPU, so it can't generate images here yet.</p>
        <ul>
          {advice?.steps.map((step) => (
            <li key={step}>{step}</li>
          ))}
        </ul>
        <p className="detail">Details: {gpu.detail}</p>
      </section>
    );
  }
  const { adapter } = gpu;
  return (
    <section className="panel" data-testid="webgpu-status" data-available="true">
      <h2>Your device</h2>
      <dl className="facts">
        <dt>GPU</dt>
        <dd data-testid="adapter-name">
          {[adapter.vendor, adapter.architecture, adapter.device, adapter.description]
            .filter(Boolean)
            .join(' · ') || 'WebGPU adapter (the browser hides its name)'}
        </dd>
        <dt>
          <abbr title="16-bit float shaders: the fast, half-size fp16 models need them">shader-f16</abbr>
        </dt>
        <dd data-testid="shader-f16">{adapter.shaderF16 ? 'yes' : 'no — the fp32 models will be used'}</dd>
        <dt>Largest GPU buffer</dt>
        <dd data-testid="max-buffer">{formatBytes(adapter.maxBufferSize)}</dd>
      </dl>
      <SelfTestStatus selfTest={selfTest} />
    </section>
  );
}

function SelfTestStatus({ selfTest }: { readonly selfTest: SelfTest }) {
  switch (selfTest.state) {
    case 'running':
      return (
        <p data-testid="self-test" data-state="running">
          Checking ONNX Runtime on WebGPU…
        </p>
      );
    case 'skipped':
      return null;
    case 'failed':
      return (
        <p
          className="error"
          role="alert"
          data-testid="self-test"
          data-state="failed"
          data-code={selfTest.error.code}
        >
          ONNX Runtime could not run on this GPU ({selfTest.error.code}): {selfTest.error.message}
        </p>
      );
    case 'passed':
      return (
        <p
          data-testid="self-test"
          data-state="passed"
          data-output={JSON.stringify(Array.from(selfTest.result.output))}
          data-shape={JSON.stringify(selfTest.result.outputShape)}
        >
          ONNX Runtime on WebGPU works (session {selfTest.result.createMs.toFixed(0)} ms, run{' '}
          {selfTest.result.runMs.toFixed(1)} ms).
        </p>
      );
  }
}
