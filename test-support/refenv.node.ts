/**
 * The Python reference environment (../shared/TESTING.md: diffusers, torch, onnx on these
 * machines) for tests that run the export tool: where its env.sh is, whether it has what a test
 * needs (else the test is skipped and says why), and running a script of models/export in it.
 *
 * KANDINSKY_REFENV, when set, is the only env.sh looked at (a missing path skips the tests);
 * otherwise /tmp/refenv/env.sh, then /work/refenv/env.sh.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const PYTHON = '/usr/bin/python3';
/** models/export: where scripts run. */
export const EXPORT_DIR = fileURLToPath(new URL('../models/export/', import.meta.url));
/** The built CLI, which quality.py runs for the set's side. */
export const CLI_PATH = join(EXPORT_DIR, '..', '..', 'dist-cli', 'generate.mjs');

const run = promisify(execFile);

export interface RefEnv {
  /** Why the tests can't run here; null when they can. */
  readonly skip: string | null;
  /**
   * Runs `python3 ARGS…` in models/export with the environment sourced; its standard output.
   * `env` is exported after env.sh (which sets the Hub offline), so it wins; `code` runs
   * `python3 -c CODE` instead of a script.
   */
  python(
    args: readonly string[],
    options?: { env?: Record<string, string>; code?: boolean },
  ): Promise<string>;
}

/**
 * The reference environment for `testFile` (its URL, for the skip message), which needs the
 * Python modules `modules` and, with `needsCli`, the built CLI.
 */
export function refEnv(
  testFile: string,
  modules: readonly string[],
  options: { needsCli?: boolean } = {},
): RefEnv {
  const envSh = (
    process.env.KANDINSKY_REFENV !== undefined
      ? [process.env.KANDINSKY_REFENV]
      : ['/tmp/refenv/env.sh', '/work/refenv/env.sh']
  ).find((path) => existsSync(path));
  const whySkip = (): string | null => {
    if (envSh === undefined)
      return 'no Python reference environment (KANDINSKY_REFENV, /tmp/refenv/env.sh or /work/refenv/env.sh)';
    if (options.needsCli && !existsSync(CLI_PATH))
      return `${CLI_PATH} is not built (npm run generate -- --help builds it)`;
    try {
      execFileSync('bash', ['-c', `. "${envSh}" && ${PYTHON} -c "import ${modules.join(', ')}"`], {
        stdio: 'pipe',
      });
      return null;
    } catch {
      return `${envSh}: ${PYTHON} cannot import ${modules.join(', ')}`;
    }
  };
  const skip = whySkip();
  if (skip !== null) console.warn(`models/${basename(fileURLToPath(testFile))} skipped: ${skip}`);
  return {
    skip,
    async python(args, { env = {}, code = false } = {}) {
      const exports = Object.entries(env)
        .map(([key, value]) => `export ${key}='${value}' && `)
        .join('');
      const script = `. "${envSh}" && ${exports}cd "${EXPORT_DIR}" && exec ${PYTHON} ${code ? '-c "$1"' : '"$@"'}`;
      const { stdout } = await run('bash', ['-c', script, 'bash', ...args], { maxBuffer: 64 << 20 });
      return stdout;
    },
  };
}
