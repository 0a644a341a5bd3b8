/**
 * What the generator worker does, without the worker: the open model set (model-set-session.ts)
 * and the generation jobs on it (generation.ts). `generator.worker.ts` exposes it over comlink; a
 * Node test drives the same object with onnxruntime-node, fake-indexeddb and a local HTTP server.
 */

import type { Precision } from '../models/manifest';
import type {
  GenerateRequest,
  GenerateResult,
  JobProgress,
  ModelApi,
  ModelDownloadProgress,
  ModelSourceSpec,
} from './api';
import { GenerationJobs } from './generation';
import { ModelSetSession, type ModelSetSessionOptions } from './model-set-session';
import type { PrecisionChoice } from './precision';

export interface GeneratorServiceOptions extends ModelSetSessionOptions {
  /** Release each stage's session before the next (devices with little memory). */
  readonly lowMemory?: boolean;
}

export class GeneratorService implements ModelApi {
  private readonly session: ModelSetSession;
  private readonly jobs: GenerationJobs;

  constructor(options: GeneratorServiceOptions) {
    this.session = new ModelSetSession(options);
    this.jobs = new GenerationJobs(this.session, options.lowMemory ?? false);
  }

  // --- generation (generation.ts) ------------------------------------------------------------

  generate(
    jobId: string,
    request: GenerateRequest,
    onProgress: (p: JobProgress) => void,
  ): Promise<GenerateResult> {
    return this.jobs.generate(jobId, request, onProgress);
  }

  cancel(jobId: string): Promise<boolean> {
    return this.jobs.cancel(jobId);
  }

  deviceLost(detail: string): void {
    this.jobs.deviceLost(detail);
  }

  // --- the model set (model-set-session.ts) --------------------------------------------------

  openModelSet(spec: ModelSourceSpec, precision?: PrecisionChoice) {
    return this.session.openModelSet(spec, precision);
  }

  modelSetInfo() {
    return this.session.modelSetInfo();
  }

  readQualitySample(precision: Precision) {
    return this.session.readQualitySample(precision);
  }

  downloadModels(features: readonly string[], onProgress: (progress: ModelDownloadProgress) => void) {
    return this.session.downloadModels(features, onProgress);
  }

  pauseDownload() {
    return this.session.pauseDownload();
  }

  deleteModels(componentIds?: readonly string[]) {
    return this.session.deleteModels(componentIds);
  }

  verifyModels() {
    return this.session.verifyModels();
  }

  requestPersistence() {
    return this.session.requestPersistence();
  }

  /** Releases every session (the worker is going away, or the GPU was lost). */
  dispose(): Promise<void> {
    return this.session.close();
  }
}
