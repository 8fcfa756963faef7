import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { PASSWORD } from '../setup/accounts';
import {
  cluster,
  clusterUnavailable,
  ha,
  killPostgres,
  leader,
  newLeader,
  onPrimary,
  waitHealthy,
} from '../setup/ha-cluster';
import { type Instance, stopInstances } from '../setup/instances';
import { startMain } from '../setup/main-process';

/**
 * The HA suite (npm run test:ha): the app on a real Patroni cluster that scripts/ha-cluster.sh starts —
 * etcd, 3 PostgreSQL 15 members, HAProxy, PgBouncer in transaction mode — as docs/operations.md describes.
 * Skipped, with one line saying why, where the Debian packages are not installed.
 */
const unavailable = clusterUnavailable();
if (unavailable) process.stdout.write(`HA suite skipped: ${unavailable}\n`);
const describeWithCluster = unavailable ? describe.skip : describe;

const READY_MS = 150_000; // a compilation of the app on a busy machine: not what is measured
const PROBLEM = /application\/problem\+json/;

describeWithCluster('on a Patroni cluster (scripts/ha-cluster.sh)', () => {
  beforeAll(async () => {
    await cluster('down');
    console.info(await cluster('up', '--sync'));
  }, 240_000);
  afterAll(() => cluster('down'), 120_000);

  describe('PgBouncer in transaction pooling mode, its default settings otherwise', () => {
    it('3 instances started together on an empty database through PgBouncer: each migration applied once, all serve reads and writes', async () => {
      const db = `ha_instances_${randomUUID().slice(0, 8)}`;
      await onPrimary('postgres', `CREATE DATABASE ${db}`);
      let instances: Instance[] = [];
      try {
        const started = await Promise.allSettled(
          [1, 2, 3].map(() => startMain(appEnv(ha.pgbouncer(db)), { readyWithinMs: READY_MS })),
        );
        instances = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
        expect(started.flatMap((result) => (result.status === 'rejected' ? [String(result.reason)] : []))).toEqual([]);
        const applied = await onPrimary<{ name: string }>(db, 'SELECT name FROM migrations');
        expect(applied.map((row) => row.name).sort()).toEqual(postgresMigrations());
        const appliedBy = instances.map((instance) => instance.output().match(/Applied migration /g)?.length ?? 0);
        expect(appliedBy.toSorted()).toEqual([0, 0, postgresMigrations().length]);
        for (const [i, instance] of instances.entries()) {
          const account = await signUp(instance.base, `pgb${i}`);
          const res = await post(instance.base, account, `through PgBouncer ${i}`);
          expect(res.status).toBe(201);
          expect((await fetch(`${instance.base}/users/${account.id}`)).status).toBe(200);
        }
      } finally {
        await stopInstances(instances);
        await onPrimary('postgres', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      }
    }, 300_000);

    it("the statement timeout holds through PgBouncer: a read waiting on a lock answers 503 + Retry-After (the role's default, not a startup parameter)", async () => {
      const db = `ha_timeout_${randomUUID().slice(0, 8)}`;
      await onPrimary('postgres', `CREATE DATABASE ${db}`);
      let instances: Instance[] = [];
      const holder = new Client({ connectionString: ha.primary(db) });
      try {
        instances = [
          await startMain(
            { ...appEnv(ha.pgbouncer(db)), DB_STATEMENT_TIMEOUT_MS: '1000' },
            { readyWithinMs: READY_MS },
          ),
        ];
        const base = instances[0].base;
        const account = await signUp(base, 'timeout');
        await holder.connect();
        // The app made DB_STATEMENT_TIMEOUT_MS the role's idle_in_transaction_session_timeout too: this
        // holder waits idle for longer than that, on purpose, so it turns the timeout off for itself.
        await holder.query('SET idle_in_transaction_session_timeout = 0');
        await holder.query('BEGIN');
        await holder.query('LOCK TABLE users IN ACCESS EXCLUSIVE MODE');
        const res = await fetch(`${base}/users/${account.id}`, { signal: AbortSignal.timeout(30_000) });
        await holder.query('ROLLBACK');
        expect(res.status).toBe(503);
        expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
        expect((await fetch(`${base}/users/${account.id}`)).status).toBe(200);
        expect(instances[0].output()).not.toMatch(/unsupported startup parameter/);
      } finally {
        await holder.end().catch(() => undefined);
        await stopInstances(instances);
        await onPrimary('postgres', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      }
    }, 300_000);
  });

  describe('failover under mixed load through HAProxy, replicas read with the consistency token', () => {
    const db = 'ha_failover';
    let app: Instance;

    beforeAll(async () => {
      await onPrimary('postgres', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      await onPrimary('postgres', `CREATE DATABASE ${db}`);
      app = await startMain(
        { ...appEnv(ha.primary(db)), DATABASE_REPLICA_URLS: ha.members(db).join(',') },
        { readyWithinMs: READY_MS },
      );
    }, 240_000);
    afterAll(() => stopInstances(app ? [app] : []));

    const scenarios: [name: string, sync: boolean, fault: (old: number) => Promise<void>][] = [
      ['kill -9 of the leader’s postgres, synchronous replication', true, killPostgres],
      ['a planned patronictl switchover, synchronous replication', true, switchover],
      ['kill -9 of the leader’s postgres, asynchronous replication', false, killPostgres],
    ];
    it.each(scenarios)(
      '%s: no 500, only 503 + Retry-After in the window, writes back within failover + 2 s, the process lives',
      async (_name, sync, fault) => {
        await cluster('sync', sync ? 'on' : 'off');
        await waitHealthy();
        await sleep(3_000); // the app's replica checks see every standby again
        const account = await signUp(app.base, `load${Date.now()}`);
        const run = await underLoad(app.base, account, async () => {
          const old = (await leader())!;
          const faultAt = Date.now();
          await fault(old);
          const promoted = await newLeader(old);
          return { faultAt, promotedAt: promoted.at };
        });
        const { outcomes, acknowledged, faultAt, promotedAt } = run;

        // Every acknowledged write, by id and content, on the new primary.
        const rows = await onPrimary<{ id: number; title: string; body: string }>(
          db,
          'SELECT id, title, body FROM posts WHERE id = ANY($1)',
          [acknowledged.map((write) => write.id)],
        );
        const stored = new Map(rows.map((row) => [row.id, `${row.title}\n${row.body}`]));
        const lost = acknowledged.filter((write) => stored.get(write.id) !== `${write.title}\n${write.body}`);

        const failures = outcomes.filter((o) => o.status !== 200 && o.status !== 201);
        const windowMs = failures.length
          ? Math.max(...failures.map((o) => o.end)) - Math.min(...failures.map((o) => o.end))
          : 0;
        // Asynchronous replication only: a write whose commit the new primary never received, so its read-back
        // (after the commit, on a fresh connection) finds nothing. Counted as a lost write.
        const lostCommits = failures.filter((o) => !sync && o.kind === 'write' && o.status === 404);
        // The first acknowledged write that started after the first failure (after the fault if none failed).
        const since = failures.length ? Math.min(...failures.map((o) => o.end)) : faultAt;
        const firstWriteBack = outcomes
          .filter((o) => o.kind === 'write' && o.status === 201 && o.start > since)
          .map((o) => o.end)
          .sort((a, b) => a - b)[0];
        const longestAnswerMs = Math.max(...outcomes.filter((o) => o.end > faultAt).map((o) => o.end - o.start));
        const byStatus: Record<string, number> = {};
        for (const o of outcomes) byStatus[`${o.kind} ${o.status}`] = (byStatus[`${o.kind} ${o.status}`] ?? 0) + 1;
        console.info(
          `${_name}: ${JSON.stringify({
            statuses: byStatus,
            clientWindowMs: windowMs,
            patroniFailoverMs: promotedAt - faultAt,
            writesBackAfterMs: firstWriteBack === undefined ? null : firstWriteBack - faultAt,
            acknowledgedWrites: acknowledged.length,
            acknowledgedLost: lost.length,
            writesLostAfterCommit: lostCommits.length,
            longestAnswerMs,
          })}`,
        );

        if (process.env.HA_TIMELINE) {
          const writes = outcomes.filter(
            (o) => o.kind === 'write' && o.end > faultAt - 500 && o.start < faultAt + 12_000,
          );
          console.info(
            writes.map((o) => `${o.start - faultAt}→${o.end - faultAt} ${o.status} ${o.detail ?? ''}`).join('\n'),
          );
        }
        expect(app.child.exitCode).toBeNull(); // the process never exits
        expect(outcomes.filter((o) => o.status === 'no answer')).toEqual([]);
        const unexpected = failures.filter((o) => o.status !== 503 && !lostCommits.includes(o));
        expect(unexpected.map((o) => `${o.kind} ${o.status} ${o.detail}`)).toEqual([]);
        expect(failures.filter((o) => o.status === 503 && (!(Number(o.retryAfter) > 0) || !o.problem))).toEqual([]);
        expect(firstWriteBack).toBeDefined();
        expect(firstWriteBack - faultAt).toBeLessThanOrEqual(promotedAt - faultAt + 2_000);
        // Read-your-writes with the token: a read of an acknowledged post is never a 404 (it was not lost).
        const lostIds = new Set(lost.map((write) => write.id));
        expect(outcomes.filter((o) => o.kind === 'read' && o.status === 404 && !lostIds.has(o.postId!))).toEqual([]);
        if (sync) expect({ lost, lostCommits }).toEqual({ lost: [], lostCommits: [] });
        await waitHealthy();
      },
      300_000,
    );
  });
});

/** What each app process gets: the cluster's URL, migrations at startup, no rate limit, quiet logs. */
function appEnv(url: string): Record<string, string> {
  return { DATABASE_URL: url, DB_MIGRATIONS_RUN: 'true', RATE_LIMIT_MAX: '0', LOG_LEVEL: 'info' };
}

function postgresMigrations(): string[] {
  return readdirSync(join(__dirname, '..', '..', 'src', 'database', 'migrations', 'postgres'))
    .flatMap((file) => {
      const match = /^(\d+)-(\w+)\.ts$/.exec(file);
      return match ? [`${match[2]}${match[1]}`] : [];
    })
    .sort();
}

interface Account {
  id: number;
  token: string;
}

async function signUp(base: string, name: string): Promise<Account> {
  const email = `${name}-${randomUUID().slice(0, 8)}@example.com`;
  const created = await fetch(`${base}/users`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name, email, password: PASSWORD }),
  });
  if (created.status !== 201) throw new Error(`POST /users: ${created.status} ${await created.text()}`);
  const { id } = (await created.json()) as { id: number };
  const login = await fetch(`${base}/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  if (login.status !== 200) throw new Error(`POST /auth/login: ${login.status} ${await login.text()}`);
  const { accessToken } = (await login.json()) as { accessToken: string };
  return { id, token: accessToken };
}

function post(base: string, account: Account, title: string, body = title): Promise<Response> {
  return fetch(`${base}/users/${account.id}/posts`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${account.token}` },
    body: JSON.stringify({ title, body }),
    signal: AbortSignal.timeout(30_000),
  });
}

async function switchover(old: number): Promise<void> {
  await cluster('patronictl', 'switchover', '--leader', `pg${old}`, '--force');
}

interface Outcome {
  kind: 'read' | 'write';
  status: number | 'no answer';
  start: number;
  end: number;
  retryAfter?: string | null;
  problem?: boolean;
  detail?: string;
  postId?: number;
}

/**
 * 3 writers (POST a post, remember it when acknowledged, with its consistency token) and 3 readers (GET
 * an acknowledged post with its token) against `base` while `fault` runs; the load goes on until writes
 * have succeeded again for 3 s (at most 60 s after the fault). A 503 is retried after 100 ms.
 */
async function underLoad<T extends object>(
  base: string,
  account: Account,
  fault: () => Promise<T>,
): Promise<
  T & { outcomes: Outcome[]; acknowledged: { id: number; title: string; body: string; token: string | null }[] }
> {
  const outcomes: Outcome[] = [];
  const acknowledged: { id: number; title: string; body: string; token: string | null }[] = [];
  let running = true;
  const record = async (kind: Outcome['kind'], start: number, res: Response, postId?: number) => {
    const outcome: Outcome = { kind, status: res.status, start, end: Date.now(), postId };
    if (res.status >= 300) {
      outcome.retryAfter = res.headers.get('retry-after');
      outcome.problem = PROBLEM.test(res.headers.get('content-type') ?? '');
      outcome.detail = ((await res.json().catch(() => ({}))) as { detail?: string }).detail;
    }
    outcomes.push(outcome);
    return outcome;
  };
  const writer = async (w: number) => {
    for (let i = 0; running; i++) {
      const title = `w${w}-${i}-${randomUUID().slice(0, 8)}`;
      const body = `body of ${title}`;
      const start = Date.now();
      try {
        const res = await post(base, account, title, body);
        if (res.status === 201) {
          const { id } = (await res.clone().json()) as { id: number };
          acknowledged.push({ id, title, body, token: res.headers.get('consistency-token') });
        }
        if ((await record('write', start, res)).status === 503) await sleep(100);
      } catch {
        outcomes.push({ kind: 'write', status: 'no answer', start, end: Date.now() });
      }
    }
  };
  const reader = async () => {
    while (running) {
      const write = acknowledged[Math.floor(Math.random() * acknowledged.length)];
      if (!write) {
        await sleep(20);
        continue;
      }
      const start = Date.now();
      try {
        const res = await fetch(`${base}/posts/${write.id}`, {
          headers: write.token ? { 'Consistency-Token': write.token } : {},
          signal: AbortSignal.timeout(30_000),
        });
        if ((await record('read', start, res, write.id)).status === 503) await sleep(100);
      } catch {
        outcomes.push({ kind: 'read', status: 'no answer', start, end: Date.now() });
      }
    }
  };
  const clients = [...[1, 2, 3].map(writer), ...[1, 2, 3].map(reader)];
  await sleep(2_000);
  const result = await fault();
  const deadline = Date.now() + 60_000;
  const okSince = () => {
    const lastFailure = outcomes.filter((o) => o.status !== 200 && o.status !== 201).at(-1)?.end ?? 0;
    return outcomes.some((o) => o.kind === 'write' && o.status === 201 && o.start > lastFailure)
      ? lastFailure
      : undefined;
  };
  while (Date.now() < deadline) {
    const since = okSince();
    if (since !== undefined && Date.now() - Math.max(since, (result as { faultAt?: number }).faultAt ?? 0) > 3_000)
      break;
    await sleep(200);
  }
  running = false;
  await Promise.all(clients);
  return { ...result, outcomes, acknowledged };
}
