import { useEffect, useState } from 'react';
import type { GpuReport, SmokeTestResult } from '../workers/api';
import { toWireError, type WireError } from '../workers/errors';
import { DeviceStatus } from './DeviceStatus';
import { startGenerator } from './generator-client';

/** The input the self-test feeds the smoke graph; tests compute the expected output from it. */
export const SMOKE_INPUT = Float32Array.from([1, 2, 3, -1, 0.5, 0.25]);

export type SelfTest =
  | { readonly state: 'running' }
  | { readonly state: 'passed'; readonly result: SmokeTestResult }
  | { readonly state: 'failed'; readonly error: WireError }
  | { readonly state: 'skipped' };

export function App() {
  const [gpu, setGpu] = useState<GpuReport | null>(null);
  const [selfTest, setSelfTest] = useState<SelfTest>({ state: 'running' });
  const [workerError, setWorkerError] = useState<WireError | null>(null);

  useEffect(() => {
    const generator = startGenerator();
    let live = true;
    (async () => {
      try {
        const report = await generator.api.probeGpu();
        if (!live) return;
        setGpu(report);
        if (!report.available) {
          setSelfTest({ state: 'skipped' });
          return;
        }
        try {
          const result = await generator.api.runSmokeTest(SMOKE_INPUT);
          if (live) setSelfTest({ state: 'passed', result });
        } catch (error) {
          if (live) setSelfTest({ state: 'failed', error: toWireError(error) });
        }
      } catch (error) {
        if (live) setWorkerError(toWireError(error));
      }
    })();
    return () => {
      live = false;
      generator.terminate();
    };
  }, []);

  return (
    <div className="app">
      <header className="app-header">
        <h1>Kandinsky Web</h1>
        <p className="tagline">
          Kandinsky 2.2 image generation, entirely on your device. Prompts and pictures never leave it.
        </p>
      </header>
      <main>
        {workerError ? (
          <section className="panel error" role="alert">
            <h2>The generator could not start</h2>
            <p>
              <code>{workerError.code}</code>: {workerError.message}
            </p>
            <p>Reload the page. If it happens again, your browser may block module workers.</p>
          </section>
        ) : (
          <DeviceStatus gpu={gpu} selfTest={selfTest} userAgent={navigator.userAgent} />
        )}
      </main>
    </div>
  );
}
