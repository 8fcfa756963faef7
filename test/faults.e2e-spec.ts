import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { DataSource, QueryFailedError } from 'typeorm';
import { inTransaction } from '../src/database/transactions/transactions';
import { loadConfig } from '../src/config/app.config';
import { dataSourceOptions } from '../src/database/data-source.options';
import { startEmbeddedPostgres, type RunningPostgres } from '../src/database/dialects/embedded-postgres';
import { adminAuth, authAs, PASSWORD } from './setup/accounts';
import { holdEveryConnection, poolOf } from './setup/pool';
import { startTestApp, useTestApp, type TestApp } from './setup/test-app';
import { describeOn } from './setup/dialect';

const PROBLEM = /application\/problem\+json/;

describe('races', () => {
  const t = useTestApp();

  it('50 concurrent POST /users with one email: one 201, 49 × 409, one row', async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        t.api
          .post('/users')
          .send({ name: `R${i}`, email: i % 2 ? 'same@example.com' : 'SAME@example.com', password: PASSWORD }),
      ),
    );
    const count = (status: number) => results.filter((r) => r.status === status).length;
    const others = results
      .filter((r) => r.status !== 201 && r.status !== 409)
      .map((r) => `${r.status} ${r.body.detail}`);
    expect({ created: count(201), conflicts: count(409), others }).toEqual({ created: 1, conflicts: 49, others: [] });
    expect(results.filter((r) => r.status === 409).every((r) => PROBLEM.test(r.headers['content-type']))).toBe(true);
    expect(await t.db.count('users')).toBe(1);
  });

  it('50 concurrent comments on one post: 50 rows, all retrievable, no duplicates', async () => {
    const ada = await t.db.user('Ada');
    const post = await t.db.post(ada.id);
    const auth = await authAs(t.app, ada.id);
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        t.api
          .post(`/posts/${post.id}/comments`)
          .set(auth)
          .send({ body: `c${i}` }),
      ),
    );
    expect(results.every((r) => r.status === 201)).toBe(true);
    const ids = new Set(results.map((r) => r.body.id));
    expect(ids.size).toBe(50);
    const listed = await t.api.get(`/posts/${post.id}/comments?limit=100`).expect(200);
    expect(new Set(listed.body.map((c: { id: number }) => c.id))).toEqual(ids);
  });
});

describe('deadlocks and serialization failures', () => {
  const t = useTestApp({}, { resetEachTest: false });

  it('deleting users who commented on each other’s posts, all at once, never deadlocks', async () => {
    for (let round = 0; round < 5; round++) {
      await t.reset();
      // VALUES lists, not generate_series: the arrangement runs on every dialect.
      const six = [1, 2, 3, 4, 5, 6];
      await t.query(
        `INSERT INTO users (name, email) VALUES ${six.map((i) => `('U${i}', 'u${i}@example.com')`).join(', ')}`,
      );
      await t.query(
        `INSERT INTO posts (author_id, title, body) VALUES ${six.flatMap((i) => [i, i, i].map((u) => `(${u}, 't', 'b')`)).join(', ')}`,
      );
      // Every user comments on every post (18 × 6). A VALUES list: on MariaDB/MySQL an INSERT … SELECT
      // FROM posts is refused, since the keyset trigger locks the posts row the statement is reading.
      await t.query(
        `INSERT INTO comments (post_id, author_id, body) VALUES ${Array.from({ length: 18 }, (_, p) =>
          six.map((u) => `(${p + 1}, ${u}, 'c')`),
        )
          .flat()
          .join(', ')}`,
      );
      const ids = [1, 2, 3, 4, 5, 6];
      const { headers } = await adminAuth(t.app, t.db, t.dataSource); // user 7, who deletes the others
      const results = await Promise.all([
        ...ids.map((id) => t.api.delete(`/users/${id}`).set(headers)),
        ...[1, 5, 9].map((id) => t.api.delete(`/posts/${id}`).set(headers)),
      ]);
      expect(results.slice(0, ids.length).map((r) => r.status)).toEqual(ids.map(() => 200));
      expect(results.slice(ids.length).every((r) => r.status === 200 || r.status === 404)).toBe(true);
      expect(await t.db.count('comments')).toBe(0);
    }
  });

  it('re-runs a whole transaction that PostgreSQL aborted as a deadlock victim', async () => {
    const txHost = t.app.get<TransactionHost<TransactionalAdapterTypeOrm>>(TransactionHost);
    await t.reset();
    let attempts = 0;
    await inTransaction(txHost, async () => {
      attempts++;
      await txHost.tx.query(`INSERT INTO users (name, email) VALUES ('Once', 'once@example.com')`);
      if (attempts === 1)
        throw new QueryFailedError('UPDATE …', [], Object.assign(new Error('deadlock detected'), { code: '40P01' }));
    });
    expect(attempts).toBe(2);
    expect(await t.db.count('users')).toBe(1); // the first attempt was rolled back
  });
});

describe('pool exhaustion', () => {
  it('answers 503 + Retry-After within the acquire timeout, then recovers with no leaked connections', async () => {
    const t = await startTestApp({ DB_POOL_SIZE: '1', DB_POOL_MAX_OVERFLOW: '1', DB_POOL_TIMEOUT_MS: '300' });
    try {
      // Two slow queries take both connections.
      const { released: slow } = await holdEveryConnection(t.dataSource, 2, 1.5);

      const started = Date.now();
      const res = await t.api.get('/users').expect(503);
      const waited = Date.now() - started;
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      expect(waited).toBeLessThan(1_200); // bounded by the acquire timeout, not by the slow queries

      await slow;
      await t.api.get('/users').expect(200);
      const pool = poolOf(t.dataSource);
      expect(pool.waiting).toBe(0);
      expect(pool.idle).toBe(pool.total); // every connection came back
    } finally {
      await t.close();
    }
  });
});

describeOn(
  ['postgres'],
  'the outage test stops and restarts an embedded PostgreSQL; MariaDB’s outage errors → 503 are unit-tested (database-errors.spec.ts), SQLite’s busy and locked → 503 in test/sqlite.e2e-spec.ts',
)('database outage', () => {
  let pg: RunningPostgres;
  let t: TestApp;
  const dataDir = join(tmpdir(), `nest-typeorm-users-outage-${randomUUID()}`);

  beforeAll(async () => {
    pg = await startEmbeddedPostgres({ dataDir, port: 0 });
    const setup = new DataSource(dataSourceOptions({ ...loadConfig({}).database, url: pg.url, migrationsRun: true }));
    await setup.initialize();
    await setup.destroy();
    t = await startTestApp({ DATABASE_URL: pg.url, DB_POOL_TIMEOUT_MS: '1000' });
  });
  afterAll(async () => {
    await t.close().catch(() => undefined);
    await pg.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('fails fast with 503 while the database is down and recovers without a restart, losing no acknowledged write', async () => {
    const acknowledged: number[] = [];
    const statuses: number[] = [];
    const unexpected: string[] = [];
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        const res = await t.api.post('/users').send({ name: `W${i}`, email: `w${i}@example.com`, password: PASSWORD });
        statuses.push(res.status);
        if (res.status !== 201 && res.status !== 503) unexpected.push(`${res.status} ${res.text}`);
        if (res.status === 201) acknowledged.push(res.body.id);
        else expect(res.headers['content-type']).toMatch(PROBLEM);
      }
    })();

    await new Promise((resolve) => setTimeout(resolve, 300));
    await pg.stop();

    const started = Date.now();
    const down = await t.api.get('/users');
    expect(down.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(down.headers['retry-after']).toBeDefined();
    await t.api.get('/health/ready').expect(503);

    const port = Number(new URL(pg.url).port);
    pg = await startEmbeddedPostgres({ dataDir, port });
    const restarted = Date.now();
    while ((await t.api.get('/health/ready')).status !== 200) await new Promise((resolve) => setTimeout(resolve, 50));
    const recoveryMs = Date.now() - restarted;
    await new Promise((resolve) => setTimeout(resolve, 200));
    writing = false;
    await writer;

    await t.api.post('/users').send({ name: 'After', email: 'after@example.com', password: PASSWORD }).expect(201);
    expect(unexpected).toEqual([]); // only 201 or 503, whatever the moment the database went away
    expect(statuses).toContain(503);
    const stored = await t.query('SELECT id FROM users WHERE id = ANY($1)', [acknowledged]);
    expect(stored).toHaveLength(acknowledged.length);
    console.info(
      `outage: ${acknowledged.length} writes acknowledged, ${statuses.filter((s) => s === 503).length} × 503, ready again ${recoveryMs} ms after restart`,
    );
  });
});
