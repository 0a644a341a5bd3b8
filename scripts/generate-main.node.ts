/** Entry point of `npm run generate` (bundled to dist-cli/generate.mjs by scripts/cli.vite.config.ts). */
import { runGenerateCli } from './generate.node';

process.exitCode = await runGenerateCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
});
