import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
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
 *
 * The port is chosen free here and handed over, so another process (another test run's app) may take it
 * in between: then the child fails to listen while that process answers the probes. So an answer counts
 * only once the child itself holds the listening socket (listensOn), and a child that found the port
 * taken (EADDRINUSE) is started again on another one.
 */
export async function startMain(
  env: Record<string, string | undefined>, // undefined removes a variable (DATABASE_URL: the embedded PostgreSQL)
  // Generous (without a fresh build, ts-node compiles main.ts first), yet below Jest's 120 s test
  // timeout: a start that outlived its test would leave the process running and the test run hanging.
  { readyWithinMs = 100_000 } = {},
): Promise<{ child: ChildProcess; base: string; output: () => string }> {
  const deadline = Date.now() + readyWithinMs; // wall time: a probe itself may take long under load
  for (let attempt = 1; ; attempt++) {
    const port = await findFreePort();
    const child = spawn(process.execPath, appEntryPoint(), {
      env: { ...process.env, NODE_OPTIONS: '', PORT: String(port), LOG_LEVEL: 'info', LOG_FORMAT: 'json', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const base = `http://127.0.0.1:${port}`;
    for (;;) {
      const ready = await fetch(`${base}/health/ready`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ready && listensOn(child.pid!, port)) return { child, base, output: () => output };
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL'); // a process left running would keep the test run from ending
        if (child.exitCode !== null && output.includes('EADDRINUSE') && attempt < 3) break; // lost the port: again
        throw new Error(`app did not start:\n${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/**
 * Whether process `pid` holds a listening TCP socket on `port`: one of its file descriptors is a
 * socket whose inode /proc/net/tcp{,6} lists as LISTEN (state 0A) on that port. Linux only; elsewhere
 * (no /proc/net) true, as before this check.
 */
export function listensOn(pid: number, port: number): boolean {
  const hexPort = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const inodes = new Set<string>();
  let tables = 0;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    tables++;
    for (const line of text.split('\n').slice(1)) {
      const [, local, , state, , , , , , inode] = line.trim().split(/\s+/);
      if (local?.endsWith(hexPort) && state === '0A') inodes.add(inode);
    }
  }
  if (tables === 0) return true;
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  return fds.some((fd) => {
    try {
      const socket = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      return socket !== null && inodes.has(socket[1]);
    } catch {
      return false; // closed meanwhile
    }
  });
}
