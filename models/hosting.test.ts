/**
 * models/export/hosting.py (standard-library Python) turns exports of one set into the folder a
 * deployer uploads: the joined manifests, the exports' check reports and HOSTING.md, whose table
 * must state each manifest's precision, download and check figure as the app computes them. The
 * whole path from Hub checkpoints runs in models/hub-export.test.ts where the reference
 * environment exists; this part runs everywhere `python3` does.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { textToImageBytes, textToImageCheckCosine } from '../workers/precision';
import { type Manifest, manifestFromJson } from './manifest';

const MODELS = fileURLToPath(new URL('.', import.meta.url));
const HOSTING = join(MODELS, 'export', 'hosting.py');
const EXPORTS = ['tiny', 'tiny-int4c6'].map((name) => join(MODELS, 'fixtures', name));
const readManifest = (path: string): Manifest => manifestFromJson(readFileSync(path));

let work = '';
const out = () => join(work, 'site');
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'kandinsky-hosting-'));
  execFileSync('python3', [HOSTING, '--out', out(), ...EXPORTS], { stdio: 'pipe' });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('hosting.py', () => {
  it('writes the manifests, the check reports by precision and HOSTING.md, nothing else', () => {
    expect(readdirSync(out()).sort()).toEqual([
      'HOSTING.md',
      'check_report.json',
      'fp32',
      'int4c6',
      'manifest.int4c6.json',
      'manifest.json',
    ]);
    const reports = JSON.parse(readFileSync(join(out(), 'check_report.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    // The tiny set's export kept its report; the int4c6 fixture was committed without one.
    expect(reports).toEqual({
      fp32: JSON.parse(readFileSync(join(EXPORTS[0] as string, 'check_report.json'), 'utf8')),
      int4c6: {},
    });
    expect(readManifest(join(out(), 'manifest.json')).variants?.map((v) => v.manifest)).toEqual([
      'manifest.int4c6.json',
    ]);
  });

  it('states each manifest’s precision, download and check figure in HOSTING.md as the app computes them', () => {
    const notes = readFileSync(join(out(), 'HOSTING.md'), 'utf8');
    for (const [name, precision] of [
      ['manifest.json', 'fp32'],
      ['manifest.int4c6.json', 'int4c6'],
    ] as const) {
      const manifest = readManifest(join(out(), name));
      const all = Object.values(manifest.components)
        .flatMap((c) => c.files)
        .reduce((n, f) => n + f.bytes, 0);
      const mb = (bytes: number) =>
        `${(bytes / 1e6).toLocaleString('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 })} MB`;
      const cosine = textToImageCheckCosine(manifest);
      const figure = cosine === null ? '–' : cosine.toFixed(6);
      expect(notes).toContain(
        `| \`${name}\` | ${precision} | ${mb(textToImageBytes(manifest))} | ${mb(all)} | ${figure} |`,
      );
    }
    expect(notes).toContain(`\`${readManifest(join(out(), 'manifest.json')).modelId}\``);
    for (const header of [
      'Access-Control-Allow-Origin',
      'Access-Control-Expose-Headers',
      'Accept-Ranges: bytes',
    ])
      expect(notes).toContain(header);
  });

  it('refuses an --out folder that holds something, and writes nothing there', () => {
    const taken = join(work, 'taken');
    mkdirSync(taken);
    writeFileSync(join(taken, 'keep.txt'), 'mine\n');
    let message = '';
    try {
      execFileSync('python3', [HOSTING, '--out', taken, ...EXPORTS], { stdio: 'pipe' });
    } catch (error) {
      message = String((error as { stderr: Buffer }).stderr);
    }
    expect(message).toContain(`--out ${taken}: not an empty folder; give a new folder`);
    expect(readdirSync(taken)).toEqual(['keep.txt']);
  });
});
