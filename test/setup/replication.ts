import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cp, mkdir, rm, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { findFreePort, startEmbeddedPostgres } from '../../src/database/dialects/embedded-postgres';

const run = promisify(execFile);

/** A primary and one hot-standby replica streaming from it, both real PostgreSQL servers on this machine. */
export interface ReplicatedPostgres {
  primaryUrl: string;
  replicaUrl: string;
  /** Stops the replica (fast shutdown: its connections are closed); its data directory is kept. */
  stopReplica(): Promise<void>;
  /** Starts the stopped replica again; it resumes streaming from its replication slot. */
  startReplica(): Promise<void>;
  /** Sets the replica's recovery_min_apply_delay: commits become visible there this much later (0 = none). */
  delayReplica(ms: number): Promise<void>;
  /** Runs one statement on the replica, outside the app (for its statistics, its replay position). */
  queryReplica<T>(sql: string, params?: unknown[]): Promise<T[]>;
  stop(): Promise<void>;
}

const SLOT = 'e2e_replica';

/**
 * Starts a primary from the `embedded-postgres` package and makes a streaming replica of it with the
 * binaries that package ships (initdb, pg_ctl, postgres — no pg_basebackup), by the low-level backup API
 * (PostgreSQL 18 docs, §25.3.4 "Making a Base Backup Using the Low Level API"): pg_backup_start → copy
 * the data directory without postmaster.pid and pg_wal/* → pg_backup_stop → write its backup_label,
 * standby.signal and primary_conninfo → start the copy. A physical replication slot keeps the WAL the
 * replica still needs while it is stopped. PostgreSQL 18's defaults (wal_level=replica,
 * max_wal_senders=10, hot_standby=on, a `replication` line in pg_hba.conf) allow all of this as is.
 */
export async function startReplicatedPostgres(): Promise<ReplicatedPostgres> {
  const primaryDir = join(tmpdir(), `nest-typeorm-users-primary-${randomUUID()}`);
  const replicaDir = `${primaryDir}-replica`;
  const primary = await startEmbeddedPostgres({ dataDir: primaryDir, port: 0, ephemeral: true });
  const { pg_ctl: pgCtl } = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as {
    pg_ctl: string;
  };
  const owner = await serverUser();
  const primaryPort = new URL(primary.url).port;
  const replicaPort = await findFreePort();
  const replicaUrl = primary.url.replace(`:${primaryPort}/`, `:${replicaPort}/`);

  const admin = new Client({ connectionString: primary.url });
  await admin.connect();
  try {
    await admin.query('SELECT pg_create_physical_replication_slot($1, true)', [SLOT]);
    await admin.query("SELECT pg_backup_start('e2e replica', true)"); // fast checkpoint
    await cp(primaryDir, replicaDir, {
      recursive: true,
      filter: (source) => {
        const path = relative(primaryDir, source);
        return !['postmaster.pid', 'postmaster.opts'].includes(path) && !/^pg_wal\/./.test(path);
      },
    });
    const { rows } = await admin.query<{ labelfile: string; spcmapfile: string | null }>(
      'SELECT labelfile, spcmapfile FROM pg_backup_stop(false)',
    );
    await writeFile(join(replicaDir, 'backup_label'), rows[0].labelfile);
    if (rows[0].spcmapfile) await writeFile(join(replicaDir, 'tablespace_map'), rows[0].spcmapfile);
  } finally {
    await admin.end();
  }
  await mkdir(join(replicaDir, 'pg_wal', 'archive_status'), { recursive: true });
  await writeFile(join(replicaDir, 'standby.signal'), '');
  const { username, password } = new URL(primary.url);
  await appendFile(
    join(replicaDir, 'postgresql.auto.conf'),
    [
      `primary_conninfo = 'host=127.0.0.1 port=${primaryPort} user=${username} password=${password} application_name=${SLOT}'`,
      `primary_slot_name = '${SLOT}'`,
      `port = ${replicaPort}`,
      "listen_addresses = '127.0.0.1'",
      "unix_socket_directories = ''",
      '',
    ].join('\n'),
  );
  if (owner) await run('chown', ['-R', `${owner.uid}:${owner.gid}`, replicaDir]);

  const pgCtlRun = (...args: string[]) =>
    run(pgCtl, ['-D', replicaDir, ...args], { ...(owner ?? {}), env: { ...process.env, LC_ALL: 'C' } });
  const startReplica = async () => {
    await pgCtlRun('-l', join(replicaDir, 'server.log'), '-w', '-t', '60', 'start');
  };
  const stopReplica = async () => {
    await pgCtlRun('-m', 'fast', '-w', 'stop');
  };
  const queryReplica = async <T>(sql: string, params: unknown[] = []): Promise<T[]> => {
    const client = new Client({ connectionString: replicaUrl });
    await client.connect();
    try {
      return (await client.query(sql, params)).rows as T[];
    } finally {
      await client.end();
    }
  };
  await startReplica();

  return {
    primaryUrl: primary.url,
    replicaUrl,
    stopReplica,
    startReplica,
    queryReplica,
    async delayReplica(ms) {
      await queryReplica(`ALTER SYSTEM SET recovery_min_apply_delay = '${Math.trunc(ms)}ms'`);
      await queryReplica('SELECT pg_reload_conf()');
    },
    async stop() {
      await stopReplica().catch(() => undefined); // already stopped by a test
      await rm(replicaDir, { recursive: true, force: true });
      await primary.stop();
    },
  };
}

/** PostgreSQL refuses to run as root: then the replica runs as the `postgres` user, as the primary does. */
async function serverUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (userInfo().uid !== 0) return undefined;
  const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}
