import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { CONSISTENCY_TOKEN } from '../src/http/consistency-token';
import { parseLsn } from '../src/database/reads/replicas';
import { startReplicatedPostgres, type ReplicatedPostgres } from './setup/replication';
import { authAs, PASSWORD } from './setup/accounts';
import { startTestApp, type TestApp } from './setup/test-app';
import { openApiDocument } from './setup/openapi-document';
import { describeOn } from './setup/dialect';

const PROBLEM = /application\/problem\+json/;
const TOKEN = CONSISTENCY_TOKEN.toLowerCase();

/** Polls `probe` until it returns a value (not undefined), or fails after `timeoutMs`. */
async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/**
 * A real primary and a real hot standby streaming from it (test/setup/replication.ts), the app in
 * between with DATABASE_REPLICA_URLS. Which server answered is read from the servers themselves: the
 * replica's own statistics, and rows the delayed replica does not have yet.
 */
describeOn(
  ['postgres'],
  'read replicas are PostgreSQL streaming replication (DATABASE_REPLICA_URLS needs a postgres:// primary)',
)('read replicas (real streaming replication)', () => {
  let cluster: ReplicatedPostgres;
  let t: TestApp; // DB_REPLICA_MAX_LAG_MS high: a delayed replica keeps serving reads
  let replicaName: string;

  /** Scans of the posts and users tables the replica has counted (pg_stat_user_tables, flushed within ~1–10 s). */
  const replicaScans = async () => {
    const [row] = await cluster.queryReplica<{ n: number }>(
      "SELECT coalesce(sum(seq_scan + coalesce(idx_scan, 0)), 0)::int AS n FROM pg_stat_user_tables WHERE relname IN ('posts', 'users')",
    );
    return row.n;
  };
  const replicaHasUser = async (id: number) =>
    (await cluster.queryReplica<{ n: number }>('SELECT count(*)::int AS n FROM users WHERE id = $1', [id]))[0].n === 1;
  const replicaReadiness = async (app: TestApp) => {
    const res = await app.api.get('/health/ready');
    return { http: res.status, ...res.body.details[`replica ${replicaName}`] } as {
      http: number;
      status: string;
      state: string;
      lagMs?: number;
    };
  };

  beforeAll(async () => {
    cluster = await startReplicatedPostgres();
    const { port } = new URL(cluster.replicaUrl);
    replicaName = `127.0.0.1:${port}`;
    t = await startTestApp({
      DATABASE_URL: cluster.primaryUrl,
      DATABASE_REPLICA_URLS: cluster.replicaUrl,
      DB_MIGRATIONS_RUN: 'true',
      DB_REPLICA_MAX_LAG_MS: '60000',
    });
  }, 120_000);

  afterAll(async () => {
    await t?.close();
    await cluster?.stop();
  });

  it('documents the token: a response header on writes, a request header on reads (OpenAPI)', () => {
    const paths = openApiDocument().paths as Record<string, Record<string, Record<string, unknown>>>;
    const created = paths['/users'].post.responses as Record<string, { headers?: Record<string, unknown> }>;
    expect(Object.keys(created['201'].headers ?? {})).toContain(CONSISTENCY_TOKEN);
    const parameters = paths['/users/{id}'].get.parameters as { name: string; in: string }[];
    expect(parameters).toContainEqual(expect.objectContaining({ name: CONSISTENCY_TOKEN, in: 'header' }));
  });

  it('GETs without a token are served by the replica, as its own statistics show', async () => {
    const created = await t.api
      .post('/users')
      .send({ name: 'Ada', email: 'ada@example.com', password: PASSWORD, posts: [{ title: 'T', body: 'B' }] });
    expect(created.status).toBe(201);
    const postId = created.body.posts[0].id as number;
    await eventually('the replica to replay the user', async () =>
      (await replicaHasUser(created.body.id)) ? true : undefined,
    );
    const before = await replicaScans();
    for (let i = 0; i < 10; i++) await t.api.get(`/posts/${postId}`).expect(200);
    // PostgreSQL flushes a backend's table statistics when it goes idle, at most once a second.
    const scans = await eventually('the replica to count the reads', async () => {
      const now = await replicaScans();
      return now - before >= 10 ? now - before : undefined;
    });
    expect(scans).toBeGreaterThanOrEqual(10);
  });

  it('a write answers with its WAL position as Consistency-Token; a malformed token is a 400 naming the header', async () => {
    const created = await t.api
      .post('/users')
      .send({ name: 'Bo', email: 'bo@example.com', password: PASSWORD })
      .expect(201);
    expect(parseLsn(created.headers[TOKEN])).toBeDefined();
    const patched = await t.api
      .patch(`/users/${created.body.id}`)
      .set(await authAs(t.app, created.body.id))
      .send({ name: 'Bob' })
      .expect(200);
    expect(parseLsn(patched.headers[TOKEN])! > parseLsn(created.headers[TOKEN])!).toBe(true);
    const bad = await t.api.get(`/users/${created.body.id}`).set(CONSISTENCY_TOKEN, "0/1' OR 1=1").expect(400);
    expect(bad.headers['content-type']).toMatch(PROBLEM);
    expect(bad.body.errors).toEqual([expect.objectContaining({ field: CONSISTENCY_TOKEN })]);
  });

  it('write then GET with the token sees the write every time while the replica is delayed (recovery_min_apply_delay)', async () => {
    await cluster.delayReplica(2_000);
    try {
      let staleWithoutToken = 0;
      for (let i = 0; i < 10; i++) {
        const created = await t.api
          .post('/users')
          .send({ name: `W${i}`, email: `w${i}@example.com`, password: PASSWORD })
          .expect(201);
        const id = created.body.id as number;
        const token = created.headers[TOKEN];
        const read = await t.api.get(`/users/${id}`).set(CONSISTENCY_TOKEN, token);
        expect({ status: read.status, name: read.body.name }).toEqual({ status: 200, name: `W${i}` });
        // The same read without the token goes to the replica, which has not applied the write yet.
        const untokened = await t.api.get(`/users/${id}`);
        if (untokened.status === 404 && !(await replicaHasUser(id))) staleWithoutToken++;
      }
      expect(staleWithoutToken).toBeGreaterThan(0); // the replica really was behind: the token was needed
    } finally {
      await cluster.delayReplica(0);
    }
  });

  it('a replica lagging more than DB_REPLICA_MAX_LAG_MS is skipped: reads 200 from the primary, readiness still 200', async () => {
    const strict = await startTestApp({
      DATABASE_URL: cluster.primaryUrl,
      DATABASE_REPLICA_URLS: cluster.replicaUrl,
      DB_REPLICA_MAX_LAG_MS: '300',
    });
    await cluster.delayReplica(5_000);
    try {
      const created = await strict.api
        .post('/users')
        .send({ name: 'Lag', email: 'lag@example.com', password: PASSWORD })
        .expect(201);
      const seen = await eventually('the replica to be reported lagging', async () => {
        const replica = await replicaReadiness(strict);
        return replica.state === 'lagging' ? replica : undefined;
      });
      expect(seen).toEqual(expect.objectContaining({ http: 200, status: 'degraded', state: 'lagging' }));
      expect(await replicaHasUser(created.body.id)).toBe(false);
      await strict.api.get(`/users/${created.body.id}`).expect(200); // no token, yet not stale: the primary answered
    } finally {
      await cluster.delayReplica(0);
      await strict.close();
    }
  });

  it('replica stopped: reads still 200 from the primary without stalling, readiness 200 listing it down; started: used again', async () => {
    const ada = await t.api
      .post('/users')
      .send({ name: 'Stop', email: 'stop@example.com', password: PASSWORD, posts: [{ title: 'T', body: 'B' }] });
    const postId = ada.body.posts[0].id as number;
    await cluster.stopReplica();
    try {
      for (let i = 0; i < 5; i++) {
        const started = Date.now();
        await t.api.get(`/posts/${postId}`).expect(200);
        await t.api.get(`/users/${ada.body.id}`).expect(200);
        expect(Date.now() - started).toBeLessThan(2_000);
      }
      const down = await eventually('the replica to be reported down', async () => {
        const replica = await replicaReadiness(t);
        return replica.state === 'down' ? replica : undefined;
      });
      expect(down).toEqual(expect.objectContaining({ http: 200, status: 'degraded', state: 'down' }));
    } finally {
      await cluster.startReplica();
    }
    await eventually('the replica to be reported up again', async () =>
      (await replicaReadiness(t)).state === 'up' ? true : undefined,
    );
    const before = await replicaScans();
    for (let i = 0; i < 10; i++) await t.api.get(`/posts/${postId}`).expect(200);
    await eventually('the replica to count the reads', async () =>
      (await replicaScans()) - before >= 10 ? true : undefined,
    );
  });

  it('measures: how far the replica lags, and what the token costs a read (printed, not asserted)', async () => {
    const ada = await t.api
      .post('/users')
      .send({ name: 'M', email: 'm@example.com', password: PASSWORD, posts: [{ title: 'T', body: 'B' }] });
    const postId = ada.body.posts[0].id as number;
    const replica = new Client({ connectionString: cluster.replicaUrl }); // one connection: polls cost a round trip
    await replica.connect();
    const auth = await authAs(t.app, ada.body.id);
    const replayMs: number[] = [];
    const withToken: number[] = [];
    const withoutToken: number[] = [];
    for (let i = 0; i < 20; i++) {
      const written = await t.api
        .post(`/posts/${postId}/comments`)
        .set(auth)
        .send({ body: `m${i}` });
      const committed = Date.now();
      const token = written.headers[TOKEN];
      for (;;) {
        const { rows } = await replica.query('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok', [token]);
        if (rows[0].ok) break;
      }
      replayMs.push(Date.now() - committed);
      // Replayed, but newer than the position the monitor last saw: the router asks the replica (one query).
      let started = performance.now();
      await t.api.get(`/posts/${postId}`).set(CONSISTENCY_TOKEN, token).expect(200);
      withToken.push(performance.now() - started);
      started = performance.now();
      await t.api.get(`/posts/${postId}`).expect(200);
      withoutToken.push(performance.now() - started);
    }
    const checkMs: number[] = []; // the live check's statement alone
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      await replica.query('SELECT pg_last_wal_replay_lsn()::text AS lsn');
      checkMs.push(performance.now() - started);
    }
    await replica.end();
    const health = await replicaReadiness(t);
    console.info(
      `replicas: a write replayed on the replica after median ${median(replayMs)} ms (max ${Math.max(...replayMs)}, ` +
        `polled back to back); GET /posts/{id} from the replica: median ${median(withToken).toFixed(1)} ms with a ` +
        `fresh token (checked live), ${median(withoutToken).toFixed(1)} ms without; the check's statement alone ` +
        `${median(checkMs).toFixed(2)} ms; monitor's lag now ${health.lagMs} ms`,
    );
  });
});
