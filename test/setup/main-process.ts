import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { findFreePort } from '../../src/database/dialects/embedded-postgres';

/**
 * The real entry point (src/main.ts) in its own process, on the test database, once /health/ready
 * answers 200. Throws (and kills the process) when it exited or was not ready within `readyWithinMs`.
 */
export async function startMain(
  env: Record<string, string>,
  // Generous: ts-node compiles main.ts first, which takes tens of seconds on a busy machine.
  { readyWithinMs = 90_000 } = {},
): Promise<{ child: ChildProcess; base: string; output: () => string }> {
  const port = await findFreePort();
  const child = spawn(
    process.execPath,
    ['-r', 'ts-node/register/transpile-only', join(__dirname, '..', '..', 'src', 'main.ts')],
    {
      env: { ...process.env, NODE_OPTIONS: '', PORT: String(port), LOG_LEVEL: 'info', LOG_FORMAT: 'json', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
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
