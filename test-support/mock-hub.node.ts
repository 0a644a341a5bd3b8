/**
 * Starts models/export/mock_hub.py (standard-library Python) as a child process: a local stand-in
 * for the Hugging Face Hub serving `<root>/<owner>/<name>[@<revision>]/` folders as repos, for
 * tests of the export tool's `--hub` and of anything that opens a set by Hub repo id or URL.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

export const MOCK_HUB_SCRIPT = fileURLToPath(new URL('../models/export/mock_hub.py', import.meta.url));

export interface MockHubOptions {
  /** More repos: repo id (`owner/name` or `owner/name@revision`) → the folder served as it. */
  readonly repos?: Readonly<Record<string, string>>;
  /** Answer LFS files (weights, graphs, binaries) with a 302 to a second port, as the Hub does to its CDN. */
  readonly redirect?: boolean;
  /** Require `Authorization: Bearer <token>` on the API and resolve URLs (a private repo). */
  readonly token?: string;
  /** Serve under this URL path (e.g. '/hub'). */
  readonly basePath?: string;
  /** Fixed ports (0 or absent: any free port). */
  readonly port?: number;
  readonly cdnPort?: number;
  /** The Python interpreter (default `python3`; the mock needs no packages). */
  readonly python?: string;
}

export interface MockHubRequest {
  readonly port: 'hub' | 'cdn';
  readonly method: string;
  readonly path: string;
  readonly range: string | null;
  readonly status: number;
}

export interface MockHub {
  /** HF_ENDPOINT for huggingface_hub; resolve URLs are `${endpoint}/${repo}/resolve/${revision}/${path}`. */
  readonly endpoint: string;
  /** The content host's origin, or null without `redirect`. */
  readonly cdn: string | null;
  /** The repo ids found under the root. */
  readonly repos: readonly string[];
  /** The requests served so far, in order. */
  requests(): Promise<MockHubRequest[]>;
  stop(): Promise<void>;
}

function optionArgs(options: MockHubOptions): string[] {
  const args: string[] = [];
  for (const [repo, folder] of Object.entries(options.repos ?? {})) args.push('--repo', `${repo}=${folder}`);
  if (options.redirect) args.push('--redirect');
  if (options.token !== undefined) args.push('--token', options.token);
  if (options.basePath !== undefined) args.push('--base-path', options.basePath);
  if (options.port !== undefined) args.push('--port', String(options.port));
  if (options.cdnPort !== undefined) args.push('--cdn-port', String(options.cdnPort));
  return args;
}

async function firstLine(child: ChildProcess): Promise<string> {
  const stdout = child.stdout;
  if (!stdout) throw new Error('mock_hub.py: no stdout');
  let text = '';
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('utf8');
      const end = text.indexOf('\n');
      if (end >= 0) {
        stdout.off('data', onData);
        resolve(text.slice(0, end));
      }
    };
    stdout.on('data', onData);
    child.once('exit', (code) =>
      reject(new Error(`mock_hub.py exited (${code}) before listening: ${stderr.trim()}`)),
    );
    child.once('error', reject);
  });
}

/** Starts the mock Hub over `root` (null: only `options.repos`) and resolves once it listens. */
export async function startMockHub(root: string | null, options: MockHubOptions = {}): Promise<MockHub> {
  const rootArgs = root === null ? [] : ['--root', root];
  const child = spawn(options.python ?? 'python3', [MOCK_HUB_SCRIPT, ...rootArgs, ...optionArgs(options)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const ready = JSON.parse(await firstLine(child)) as {
    endpoint: string;
    cdn: string | null;
    repos: string[];
  };
  const headers: Record<string, string> = options.token ? { authorization: `Bearer ${options.token}` } : {};
  return {
    ...ready,
    async requests() {
      const response = await fetch(`${ready.endpoint}/_mock/log`, { headers });
      return (await response.json()) as MockHubRequest[];
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}
