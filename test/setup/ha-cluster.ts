import { execFile, execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Client } from 'pg';

const run = promisify(execFile);
const SCRIPT = join(__dirname, '..', '..', 'scripts', 'ha-cluster.sh');
const BASE = Number(process.env.HA_PORT_BASE ?? 15000);
const DIR = process.env.HA_DIR ?? '/tmp/ha-cluster';
const MEMBERS = [1, 2, 3];

/** The URLs of the cluster scripts/ha-cluster.sh starts (its ports: see the script's header). */
export const ha = {
  /** HAProxy's port that always leads to the current primary. */
  primary: (db: string) => `postgres://postgres@127.0.0.1:${BASE + 30}/${db}`,
  /** PgBouncer (transaction pooling) in front of HAProxy's primary port. */
  pgbouncer: (db: string) => `postgres://postgres@127.0.0.1:${BASE + 40}/${db}`,
  /** Each member's PostgreSQL, for DATABASE_REPLICA_URLS: the app checks which are standbys, and how far they replayed. */
  members: (db: string) => MEMBERS.map((n) => `postgres://postgres@127.0.0.1:${BASE + 19 + n}/${db}`),
};

/** Why the HA suite cannot run here (one line), or undefined when the Debian packages are installed. */
export function clusterUnavailable(): string | undefined {
  try {
    execFileSync(SCRIPT, ['check'], { stdio: 'pipe' });
    return undefined;
  } catch (error) {
    return String((error as { stdout?: Buffer }).stdout ?? '').trim() || (error as Error).message;
  }
}

/** scripts/ha-cluster.sh with `args`; its output, or its error with the output in the message. */
export async function cluster(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run(SCRIPT, args, { env: { ...process.env, HA_DIR: DIR }, timeout: 240_000 });
    return stdout;
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`scripts/ha-cluster.sh ${args.join(' ')} failed:\n${stdout}${stderr}`, { cause: error });
  }
}

/** The member Patroni's REST API names the primary (`GET /primary` answers 200), if any. */
export async function leader(): Promise<number | undefined> {
  const answers = await Promise.all(
    MEMBERS.map((n) =>
      fetch(`http://127.0.0.1:${BASE + 9 + n}/primary`, { signal: AbortSignal.timeout(1_000) }).then(
        (res) => (res.status === 200 ? n : undefined),
        () => undefined,
      ),
    ),
  );
  return answers.find((n) => n !== undefined);
}

/** Waits (≤ `ms`) until a member other than `old` is the primary; returns it and when it was first seen. */
export async function newLeader(old: number, ms = 60_000): Promise<{ member: number; at: number }> {
  const deadline = Date.now() + ms;
  for (;;) {
    const member = await leader();
    if (member !== undefined && member !== old) return { member, at: Date.now() };
    if (Date.now() > deadline) throw new Error(`no new leader within ${ms} ms (old: pg${old})`);
    await sleep(100);
  }
}

/** kill -9 of a member's postmaster (its PID is the first line of postmaster.pid): its Patroni stays. */
export async function killPostgres(member: number): Promise<void> {
  const pid = Number((await readFile(join(DIR, `pg${member}`, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  process.kill(pid, 'SIGKILL');
}

/** Waits (≤ `ms`) until HAProxy routes to one primary and two replicas again, and synchronous mode (if on) has its standby. */
export async function waitHealthy(ms = 120_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const csv = await fetch(`http://127.0.0.1:${BASE + 32}/;csv`).then(
      (res) => res.text(),
      () => '',
    );
    const up = (backend: string) => csv.split('\n').filter((line) => new RegExp(`^${backend},pg\\d,.*,UP,`).test(line));
    if (up('primary').length === 1 && up('replicas').length === 2 && (await syncReady())) return;
    if (Date.now() > deadline)
      throw new Error(`the cluster did not recover within ${ms} ms:\n${await cluster('status')}`);
    await sleep(500);
  }
}

/** True unless synchronous_mode is on and no member is yet its synchronous standby (`GET /sync` 200). */
async function syncReady(): Promise<boolean> {
  const config: { synchronous_mode?: boolean } = await fetch(`http://127.0.0.1:${BASE + 10}/config`).then(
    (res) => res.json() as Promise<{ synchronous_mode?: boolean }>,
    () => ({}),
  );
  if (!config.synchronous_mode) return true;
  const answers = await Promise.all(
    MEMBERS.map((n) =>
      fetch(`http://127.0.0.1:${BASE + 9 + n}/sync`).then(
        (res) => res.status === 200,
        () => false,
      ),
    ),
  );
  return answers.some(Boolean);
}

/** One statement on the current primary (through HAProxy), on a connection of its own. */
export async function onPrimary<T>(db: string, sql: string, parameters: unknown[] = []): Promise<T[]> {
  const client = new Client({ connectionString: ha.primary(db), connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    return (await client.query(sql, parameters)).rows as T[];
  } finally {
    await client.end();
  }
}
