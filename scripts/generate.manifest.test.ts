// The CLI reads manifest.json as the browser does (models/manifest.ts manifestFromJson): a manifest
// saved with a UTF-8 byte-order mark works, and a hostile one is refused naming the field.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_DIR } from '../test-support/tiny-fixture.node';
import { runGenerateCli } from './generate.node';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'kandinsky-cli-manifest-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function cli(...argv: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const code = await runGenerateCli(argv, {
    stdout: () => {},
    stderr: (text) => {
      stderr += text;
    },
  });
  return { code, stderr };
}

/** A folder holding only manifest.json with these bytes. */
async function setWithManifest(name: string, bytes: Uint8Array): Promise<string> {
  const dir = path.join(work, name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir);
  await writeFile(path.join(dir, 'manifest.json'), bytes);
  return dir;
}

describe('generate CLI: reading manifest.json', () => {
  it('accepts a manifest with a UTF-8 byte-order mark, as the browser does', async () => {
    const bytes = await readFile(path.join(TINY_DIR, 'manifest.json'));
    const dir = await setWithManifest('bom', new Uint8Array([0xef, 0xbb, 0xbf, ...bytes]));
    // Steps out of range fail after the manifest is read, before any model file is opened.
    const result = await cli('--model', dir, '--prompt', 'x', '--steps', '100000');
    expect(result.stderr).not.toMatch(/not a valid manifest/);
    expect(result.stderr).toMatch(/--steps: Steps must be a whole number/);
    expect(result.code).toBe(2);
  });

  it('refuses prototype keys and absurd numbers naming the field', async () => {
    const text = await readFile(path.join(TINY_DIR, 'manifest.json'), 'utf8');
    const proto = await setWithManifest(
      'proto',
      new TextEncoder().encode(text.replace('"components": {', '"components": { "__proto__": {},')),
    );
    const protoResult = await cli('--model', proto, '--prompt', 'x');
    expect(protoResult.stderr).toMatch(/is not a valid manifest: components\.__proto__: /);
    expect(protoResult.code).toBe(1);
    const huge = await setWithManifest(
      'huge',
      new TextEncoder().encode(text.replace('"num_train_timesteps": 1000,', '"num_train_timesteps": 1e9,')),
    );
    const hugeResult = await cli('--model', huge, '--prompt', 'x');
    expect(hugeResult.stderr).toMatch(/is not a valid manifest: schedulers\.prior\.num_train_timesteps: /);
    expect(hugeResult.code).toBe(1);
  });
});
