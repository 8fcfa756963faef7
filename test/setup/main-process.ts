import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { findFreePort } from '../../src/database/dialects/embedded-postgres';

const ROOT = join(__dirname, '..', '..');
let entryPoint: string[] | undefined;

/**
 * How to start the app: `dist/main.js` when `npm run build` built it from the current sources (as in CI,
 * or after `npm start`; scripts/fresh-build.cjs decides), else `src/main.ts` through ts-node. A build
 * starts in a fraction of the time: several ts-node compilations at once on a busy machine took minutes.
 */
export function appEntryPoint(): string[] {
  entryPoint ??=
    spawnSync(process.execPath, [join(ROOT, 'scripts', 'fresh-build.cjs'), '--check'], { cwd: ROOT, stdio: 'ignore' })
      .status === 0
      ? [join(ROOT, 'dist', 'main.js')]
      : ['-r', 'ts-node/register/transpile-only', join(ROOT, 'src', 'main.ts')];
  return entryPoint;
}

/**
 * The real entry point (src/main.ts, or its fresh build) in its own process, on the test database,
 * once /health/ready answers 200. Throws (and kills the process) when it exited or was not ready within `readyWithinMs`.
 */
export async function startMain(
  env: Record<string, string>,
  // Generous (without a fresh build, ts-node compiles main.ts first), yet below Jest's 120 s test
  // timeout: a start that outlived its test would leave the process running and the test run hanging.
  { readyWithinMs = 100_000 } = {},
): Promise<{ child: ChildProcess; base: string; output: () => string }> {
  const port = await findFreePort();
  const child = spawn(process.execPath, appEntryPoint(), {
    env: { ...process.env, NODE_OPTIONS: '', PORT: String(port), LOG_LEVEL: 'info', LOG_FORMAT: 'json', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + readyWithinMs; // wall time: a probe itself may take long under load
  for (;;) {
    const ready = await fetch(`${base}/health/ready`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL'); // a process left running would keep the test run from ending
      throw new Error(`app did not start:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { child, base, output: () => output };
}
