/** The model sets the benchmarks run: the tiny fixture, the tiny set with a mid-size UNet, the full-size random set. */
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as ortNode from 'onnxruntime-node';
import type { GraphComponentId } from '../models/contract';
import { type Manifest, type OnnxComponent, parseManifest } from '../models/manifest';
import { type ModelFiles, ModelSet, type ModelSetOptions } from '../workers/engine/model-set';
import type { OrtRuntime } from '../workers/engine/ort';

export const ortCpu = ortNode as unknown as OrtRuntime;
export const REPO = fileURLToPath(new URL('../', import.meta.url));
export const TINY_DIR = `${REPO}models/fixtures/tiny/`;
export const MID_UNET_DIR = `${REPO}bench/.cache/mid-unet/`;
export const FULL_DIR = `${REPO}models/.random-full/fp32/`;

/** As the worker creates sessions, on onnxruntime-node's CPU provider (its default thread count). */
export const CPU_SESSION_OPTIONS = { executionProviders: ['cpu'], graphOptimizationLevel: 'all' } as const;

export interface BenchSet {
  readonly label: string;
  readonly manifest: Manifest;
  readonly files: ModelFiles;
  /** Bytes of one component's files. */
  componentBytes(id: GraphComponentId): number;
}

function readManifest(dir: string): Manifest {
  return parseManifest(JSON.parse(readFileSync(`${dir}manifest.json`, 'utf8')));
}

function bytesOf(manifest: Manifest, id: GraphComponentId): number {
  return (manifest.components[id]?.files ?? []).reduce((n, f) => n + f.bytes, 0);
}

function dirReader(dirOf: (path: string) => string): ModelFiles {
  return {
    read: async (path) => new Uint8Array(await readFile(dirOf(path) + path)),
    localPath: async (path) => dirOf(path) + path,
  };
}

export function tinySet(): BenchSet {
  const manifest = readManifest(TINY_DIR);
  return {
    label: 'tiny fixture',
    manifest,
    files: dirReader(() => TINY_DIR),
    componentBytes: (id) => bytesOf(manifest, id),
  };
}

export function midUnetExported(): boolean {
  return existsSync(`${MID_UNET_DIR}unet-component.json`);
}

/** The tiny set with bench/export_mid_unet.py's UNet (real configuration, half the channels) in place of its own. */
export function midSet(): BenchSet & { readonly parameters: number } {
  const raw = JSON.parse(readFileSync(`${MID_UNET_DIR}unet-component.json`, 'utf8')) as OnnxComponent & {
    benchParameters: number;
    benchBlockOutChannels: number[];
  };
  const { benchParameters, benchBlockOutChannels: _channels, ...unet } = raw;
  const tinyJson = JSON.parse(readFileSync(`${TINY_DIR}manifest.json`, 'utf8')) as {
    components: Record<string, unknown>;
    modelId: string;
  };
  const manifest = parseManifest({
    ...tinyJson,
    modelId: 'bench-mid-unet',
    components: { ...tinyJson.components, unet },
  });
  const unetPaths = new Set(unet.files.map((f) => f.path));
  return {
    label: 'mid-size UNet',
    manifest,
    parameters: benchParameters,
    files: dirReader((path) => (unetPaths.has(path) ? MID_UNET_DIR : TINY_DIR)),
    componentBytes: (id) => bytesOf(manifest, id),
  };
}

export function fullSetPresent(): boolean {
  return existsSync(`${FULL_DIR}manifest.json`);
}

export function fullSet(): BenchSet {
  const manifest = readManifest(FULL_DIR);
  return {
    label: 'full-size random fp32',
    manifest,
    files: dirReader(() => FULL_DIR),
    componentBytes: (id) => bytesOf(manifest, id),
  };
}

export function openSet(set: BenchSet, options: Omit<ModelSetOptions, 'sessionOptions'> = {}): ModelSet {
  return new ModelSet(ortCpu, set.manifest, set.files, { sessionOptions: CPU_SESSION_OPTIONS, ...options });
}
