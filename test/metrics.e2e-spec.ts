import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { QueryFailedError } from 'typeorm';
import { findFreePort } from '../src/database/dialects/embedded-postgres';
import { inTransaction } from '../src/database/transactions/transactions';
import { registry } from '../src/metrics/metrics';
import { PASSWORD } from './setup/accounts';
import { testDialect } from './setup/dialect';
import { holdEveryConnection } from './setup/pool';

/** SQLite's one connection is reported as a pool of one (SqliteGate). */
const onSqlite = testDialect === 'sqlite';
/** DB_POOL_SIZE 10 + DB_POOL_MAX_OVERFLOW 20; 1 on SQLite. */
const DEFAULT_POOL_MAX = onSqlite ? 1 : 30;
import { startTestApp, type TestApp, useTestApp } from './setup/test-app';

const PROMETHEUS_TEXT = /^text\/plain; version=0\.0\.4/;
const PROBLEM = /application\/problem\+json/;

/** The value of the sample `name` whose labels include `labels` (Prometheus text format), summed over matches. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let total: number | undefined;
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const present = Object.fromEntries(
      [...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (Object.entries(labels).every(([key, value]) => present[key] === value)) total = (total ?? 0) + Number(match[3]);
  }
  return total;
}

/** Young-generation garbage, so the GC histogram has observed at least one collection. */
async function collectSomeGarbage(): Promise<void> {
  let keep = 0;
  for (let i = 0; i < 500_000; i++) keep += new Array<number>(8).length;
  expect(keep).toBeGreaterThan(0);
  await new Promise((resolve) => setTimeout(resolve, 50)); // GC entries reach observers asynchronously
}

const scrape = async (t: TestApp) => (await t.api.get('/metrics').expect(200)).text;

describe('GET /metrics (Prometheus text format)', () => {
  const t = useTestApp();

  it('shows HTTP RED by route pattern (never the raw URL), queries by operation, errors by SQLSTATE class, transactions', async () => {
    const before = await scrape(t);
    const created = await t.api
      .post('/users')
      .send({ name: 'Ada', email: 'ada@example.com', password: PASSWORD })
      .expect(201);
    await t.api.get(`/users/${created.body.id}`).expect(200);
    await t.api.get('/users/424242').expect(404);
    await t.api.post('/users').send({ name: 'Ada', email: 'ADA@example.com', password: PASSWORD }).expect(409); // unique violation: 23505
    await t.api.get('/no/such/path').expect(404);

    await collectSomeGarbage();
    const res = await t.api.get('/metrics').expect(200);
    expect(res.headers['content-type']).toMatch(PROMETHEUS_TEXT);
    const text = res.text;
    const delta = (name: string, labels?: Record<string, string>) =>
      (sample(text, name, labels) ?? 0) - (sample(before, name, labels) ?? 0);
    const requests = 'http_server_request_duration_seconds_count';
    expect(delta(requests, { method: 'GET', route: '/users/:id', status_class: '2xx' })).toBe(1);
    expect(delta(requests, { method: 'GET', route: '/users/:id', status_class: '4xx' })).toBe(1);
    expect(delta(requests, { method: 'POST', route: '/users', status_class: '4xx' })).toBe(1);
    expect(delta(requests, { route: 'unmatched' })).toBe(1);
    expect(text).not.toMatch(/route="\/users\/\d/); // ids never become labels
    expect(text).not.toContain('/no/such/path');
    expect(sample(text, 'http_server_request_duration_seconds_sum', { route: '/users/:id' })).toBeGreaterThan(0);
    expect(sample(text, 'http_server_active_requests')).toBe(1); // this scrape

    // user + posts for the GET, the user for the 404 (POST answers from its INSERT … RETURNING: no SELECT)
    expect(delta('db_query_duration_seconds_count', { operation: 'select' })).toBeGreaterThanOrEqual(3);
    expect(delta('db_query_duration_seconds_count', { operation: 'insert' })).toBeGreaterThanOrEqual(2);
    expect(delta('db_query_duration_seconds_count', { operation: 'other' })).toBeGreaterThanOrEqual(3); // BEGIN, COMMIT, ROLLBACK
    expect(delta('db_query_errors_total', { sqlstate_class: '23' })).toBe(1);
    expect(delta('db_transactions_total', { outcome: 'committed' })).toBe(1);
    expect(delta('db_transactions_total', { outcome: 'rolled_back' })).toBe(1);

    expect(sample(text, 'db_pool_connections_max')).toBe(DEFAULT_POOL_MAX);
    expect(sample(text, 'db_pool_connections')).toBeGreaterThan(0);
    expect(delta('db_pool_acquire_duration_seconds_count')).toBeGreaterThanOrEqual(5);
    for (const name of [
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_heap_size_used_bytes',
      'nodejs_gc_duration_seconds_count',
      'process_resident_memory_bytes',
    ])
      expect(sample(text, name)).toBeDefined();
  });

  it('counts a transaction aborted as a deadlock victim as retried, then its second run as committed', async () => {
    const txHost = t.app.get<TransactionHost<TransactionalAdapterTypeOrm>>(TransactionHost);
    const before = await scrape(t);
    let attempts = 0;
    await inTransaction(txHost, async () => {
      await txHost.tx.query('SELECT 1');
      if (++attempts === 1)
        throw new QueryFailedError('UPDATE …', [], Object.assign(new Error('deadlock'), { code: '40P01' }));
    });
    const after = await scrape(t);
    const delta = (outcome: string) =>
      sample(after, 'db_transactions_total', { outcome })! - sample(before, 'db_transactions_total', { outcome })!;
    expect({ retried: delta('retried'), committed: delta('committed'), rolledBack: delta('rolled_back') }).toEqual({
      retried: 1,
      committed: 1,
      rolledBack: 0,
    });
  });

  it('is not public: a request a proxy forwarded, or from another host, gets the 404 of an unknown path (RFC 9110 §15.5.5)', async () => {
    const forwarded = await t.api.get('/metrics').set('X-Forwarded-For', '203.0.113.7').expect(404);
    expect(forwarded.headers['content-type']).toMatch(PROBLEM);
    await t.api.get('/metrics').set('Forwarded', 'for=203.0.113.7').expect(404);
    const remote = await t.app.inject({ method: 'GET', url: '/metrics', remoteAddress: '203.0.113.7' });
    expect(remote.statusCode).toBe(404);
    expect(remote.body).not.toContain('http_server');
  });

  it('every metric the Grafana dashboard queries exists, and the dashboard shows every metric the service defines', async () => {
    await t.api.post('/users').send({ name: 'x', email: 'x@example.com', password: PASSWORD }).expect(201);
    await t.api.post('/users').send({ name: 'x', email: 'x@example.com', password: PASSWORD }).expect(409); // a query error series
    await collectSomeGarbage();
    const exposed = new Set(
      (await scrape(t))
        .split('\n')
        .filter((line) => line && !line.startsWith('#'))
        .map((line) => /^[a-zA-Z_:][\w:]*/.exec(line)![0]),
    );
    const dir = join(__dirname, '..', 'docs', 'grafana');
    const queried = new Set<string>();
    for (const file of readdirSync(dir).filter((name) => name.endsWith('.json'))) {
      const exprs = JSON.stringify(JSON.parse(readFileSync(join(dir, file), 'utf8'))).match(
        /"(expr|query)":"[^"\\]*(\\.[^"\\]*)*"/g,
      );
      for (const expr of exprs ?? [])
        for (const [name] of expr.replace(/\{[^}]*\}/g, '').matchAll(/\b(?:http|db|nodejs|process)_[\w:]+/g))
          queried.add(name);
    }
    expect(queried.size).toBeGreaterThan(10);
    expect([...queried].filter((name) => !exposed.has(name))).toEqual([]);
    const defined = (await registry.getMetricsAsJSON())
      .map((metric) => metric.name)
      .filter((name) => /^(http|db)_/.test(name));
    const shown = (name: string) => [...queried].some((q) => q === name || q.startsWith(`${name}_`));
    expect(defined.filter((name) => !shown(name))).toEqual([]);
  });
});

describe('pool saturation in /metrics', () => {
  it('shows callers waiting while every connection is busy, then the acquire timeouts answered 503', async () => {
    const t = await startTestApp({ DB_POOL_SIZE: '1', DB_POOL_MAX_OVERFLOW: '1', DB_POOL_TIMEOUT_MS: '400' });
    try {
      const before = await scrape(t);
      const { released: slow } = await holdEveryConnection(t.dataSource, 2, 1.2);
      const waiting = Promise.all([1, 2, 3].map(() => t.api.get('/users')));
      await new Promise((resolve) => setTimeout(resolve, 150));

      const saturated = await scrape(t);
      expect(sample(saturated, 'db_pool_waiting')).toBeGreaterThanOrEqual(3);
      expect(sample(saturated, 'db_pool_connections')).toBe(onSqlite ? 1 : 2);
      expect(sample(saturated, 'db_pool_connections_max')).toBe(onSqlite ? 1 : 2);
      expect(sample(saturated, 'db_pool_connections_idle')).toBe(0);
      expect(sample(saturated, 'http_server_active_requests')).toBeGreaterThanOrEqual(4); // 3 waiting + this scrape

      expect((await waiting).map((res) => res.status)).toEqual([503, 503, 503]);
      await slow;
      const after = await scrape(t);
      const delta = (name: string, labels?: Record<string, string>) =>
        (sample(after, name, labels) ?? 0) - (sample(before, name, labels) ?? 0);
      expect(delta('db_pool_acquire_timeouts_total')).toBe(3);
      expect(delta('http_server_request_duration_seconds_count', { route: '/users', status_class: '5xx' })).toBe(3);
      // The waits show in the acquire-time histogram: 3 of at least 0.25 s.
      expect(
        delta('db_pool_acquire_duration_seconds_count') -
          delta('db_pool_acquire_duration_seconds_bucket', { le: '0.1' }),
      ).toBeGreaterThanOrEqual(3);
      expect(sample(after, 'db_pool_waiting')).toBe(0);
    } finally {
      await t.close();
    }
  });
});

describe('metrics exposure settings', () => {
  it('METRICS_TOKEN: only `Authorization: Bearer <token>` may scrape (RFC 6750 §2.1), loopback alone is not enough', async () => {
    const token = 'a-long-metrics-token-0123456789';
    const t = await startTestApp({ METRICS_TOKEN: token });
    try {
      await t.api.get('/metrics').expect(404);
      await t.api.get('/metrics').set('Authorization', 'Bearer wrong-token-0123456789').expect(404);
      await t.api.get('/metrics').set('Authorization', `Basic ${token}`).expect(404);
      const ok = await t.api.get('/metrics').set('Authorization', `bearer ${token}`).expect(200);
      expect(ok.text).toContain('http_server_request_duration_seconds');
      const remote = await t.app.inject({
        method: 'GET',
        url: '/metrics',
        remoteAddress: '203.0.113.7',
        headers: { authorization: `Bearer ${token}` },
      });
      expect(remote.statusCode).toBe(200);
    } finally {
      await t.close();
    }
  });

  it('METRICS_PORT: served there alone, and the main port answers 404', async () => {
    const port = await findFreePort();
    const t = await startTestApp({ METRICS_PORT: String(port) });
    try {
      await t.api.get('/metrics').expect(404);
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(PROMETHEUS_TEXT);
      expect(await res.text()).toContain(`db_pool_connections_max ${DEFAULT_POOL_MAX}`);
      expect((await fetch(`http://127.0.0.1:${port}/users`)).status).toBe(404);
    } finally {
      await t.close();
    }
    // Closed with the app.
    await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
  });

  it('METRICS_ENABLED=false: no /metrics at all', async () => {
    const t = await startTestApp({ METRICS_ENABLED: 'false' });
    try {
      await t.api.get('/metrics').expect(404);
    } finally {
      await t.close();
    }
  });
});
