import { once } from 'node:events';
import { DataSource } from 'typeorm';
import { loadConfig } from '../src/config/app.config';
import { dataSourceOptions } from '../src/database/data-source.options';
import { itOn, testDialect } from './setup/dialect';
import { startMain } from './setup/main-process';

type LogLine = {
  requestId?: string;
  context?: string;
  msg: string;
  req?: { method: string; url: string };
  res?: { statusCode: number };
  responseTime?: number;
  route?: string;
  level: number;
};

describe('structured logs', () => {
  it('logs each request once as JSON with method, route, status, latency and a request id bound to its query logs', async () => {
    const { child, base, output } = await startMain({
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'info',
      DB_LOGGING: 'true',
      DB_SLOW_QUERY_MS: '1000000',
    });
    try {
      const given = await fetch(`${base}/users/424242`, { headers: { 'X-Request-Id': 'trace-abc.1' } });
      expect(given.headers.get('x-request-id')).toBe('trace-abc.1');
      const generated = await fetch(`${base}/users?limit=1`, { headers: { 'X-Request-Id': 'bad id with spaces' } });
      const generatedId = generated.headers.get('x-request-id')!;
      expect(generatedId).toMatch(/^[0-9a-f-]{36}$/);
      await fetch(`${base}/users`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: 'Basic c2VjcmV0LXRva2Vu' },
        body: JSON.stringify({
          name: 'Logged',
          email: 'logged@example.com',
          password: 'never-logged-password',
          profile: { bio: 'private bio' },
        }),
      });
      await fetch(`${base}/health/ready`);
      expect((await fetch(`${base}/metrics`)).status).toBe(200); // a scrape, from loopback
      await fetch(`${base}/healthz`); // no such route: a 404 like any other
    } finally {
      child.kill('SIGTERM');
      await once(child, 'close'); // after its stdout has been read to the end
    }

    const lines = jsonLines(output());
    const completed = lines.filter((line) => line.msg === 'request completed');
    const forGiven = completed.filter((line) => line.requestId === 'trace-abc.1');
    expect(forGiven).toEqual([
      expect.objectContaining({
        req: { method: 'GET', url: '/users/424242' },
        res: { statusCode: 404 },
        route: '/users/:id',
        responseTime: expect.any(Number),
      }),
    ]);
    expect(lines.some((line) => line.context === 'Database' && line.requestId === 'trace-abc.1')).toBe(true);
    expect(
      completed.some((line) => line.requestId !== undefined && line.route === '/users' && line.res?.statusCode === 200),
    ).toBe(true);
    const probes = completed.filter((line) => /^\/(health|metrics)(\/|$)/.test(line.req?.url ?? ''));
    expect(probes).toEqual([]); // probes and scrapes are not logged
    expect(completed).toContainEqual(
      expect.objectContaining({ req: { method: 'GET', url: '/healthz' }, res: { statusCode: 404 } }),
    );
    const all = output();
    expect(all).not.toContain('c2VjcmV0LXRva2Vu');
    expect(all).not.toContain('never-logged-password');
    expect(all).not.toContain('private bio"'); // bodies are not logged (query parameters are, with DB_LOGGING on)
  });

  itOn(['postgres', 'mysql'], 'SQLite has no pool: reads share its one connection')(
    'logs a 5xx once, at error level, as "request errored", and a request its client abandoned as "request aborted"',
    async () => {
      // One connection, held by a read that waits for our lock on `users`: the next request gets 503.
      const { child, base, output } = await startMain({
        DB_POOL_SIZE: '1',
        DB_POOL_MAX_OVERFLOW: '0',
        DB_POOL_TIMEOUT_MS: '200',
      });
      const db = await openTestDatabase();
      const locker = db.createQueryRunner();
      let refusedId: string | null = null;
      try {
        await locker.startTransaction();
        await locker.query(
          testDialect === 'postgres' ? 'LOCK TABLE users IN ACCESS EXCLUSIVE MODE' : 'LOCK TABLES users WRITE',
        );
        const blocked = fetch(`${base}/users`);
        await new Promise((resolve) => setTimeout(resolve, 300));
        const refused = await fetch(`${base}/users`);
        expect(refused.status).toBe(503);
        refusedId = refused.headers.get('x-request-id');
        const leaving = new AbortController(); // waits for the one connection, and its client leaves first
        const left = fetch(`${base}/users`, { headers: { 'X-Request-Id': 'left-early' }, signal: leaving.signal });
        await new Promise((resolve) => setTimeout(resolve, 50));
        leaving.abort();
        await expect(left).rejects.toThrow();
        await new Promise((resolve) => setTimeout(resolve, 300)); // its handler runs on and ends with 503
        await (testDialect === 'postgres' ? locker.commitTransaction() : locker.query('UNLOCK TABLES'));
        expect((await blocked).status).toBe(200);
      } finally {
        await locker.release();
        await db.destroy();
        child.kill('SIGTERM');
        await once(child, 'close'); // after its stdout has been read to the end
      }
      const lines = jsonLines(output());
      expect(lines.filter((line) => line.requestId === refusedId && line.req)).toEqual([
        expect.objectContaining({ level: 50, msg: 'request errored', res: { statusCode: 503 }, route: '/users' }),
      ]);
      expect(lines.filter((line) => line.requestId === 'left-early' && line.req)).toEqual([
        expect.objectContaining({ level: 30, msg: 'request aborted', res: { statusCode: null }, route: '/users' }),
      ]);
    },
  );

  it('starts in one format from the first line, and says the schema state, where the docs are and how to stop', async () => {
    const { child, base, output } = await startMain({ LOG_FORMAT: 'json', LOG_LEVEL: 'info' });
    child.kill('SIGTERM');
    await once(child, 'close'); // after its stdout has been read to the end
    const lines = output().split('\n').filter(Boolean);
    expect(lines.filter((line) => !line.startsWith('{'))).toEqual([]);
    const messages = lines.map((line) => JSON.parse(line) as LogLine);
    const port = new URL(base).port;
    expect(messages.map((line) => line.msg)).toEqual(
      expect.arrayContaining([
        // A password, if any, redacted; a SQLite URL is a path.
        expect.stringMatching(/^Database: ((postgres(ql)?|mysql|mariadb):\/\/[^:@/]+(:\*\*\*)?@|sqlite:)/),
        expect.stringMatching(/^Database schema: \d+ migrations? applied \(latest \w+\), none pending$/),
        // DATABASE_URL is set and HOST is not: every interface (test/newcomer.e2e-spec.ts has the rest).
        `Listening on every interface (0.0.0.0) on port ${port}, from this machine at http://localhost:${port}; API docs at http://localhost:${port}/docs. Stop with Ctrl-C or SIGTERM.`,
      ]),
    );
    expect(messages.filter((line) => line.context === 'InstanceLoader' || line.context === 'RouterExplorer')).toEqual(
      [],
    );
  });

  it('logs slow queries as warnings', async () => {
    if (testDialect === 'sqlite') await fillPostsForAScan();
    const { child, base, output } = await startMain({ LOG_FORMAT: 'json', LOG_LEVEL: 'warn', DB_SLOW_QUERY_MS: '1' });
    try {
      // Real work on every dialect: an empty MariaDB answered every query within 1 ms.
      for (let i = 0; i < 20; i++) {
        const posts = Array.from({ length: 5 }, (_, n) => ({ title: `Post ${n}`, body: 'x'.repeat(2000) }));
        await fetch(`${base}/users`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            name: `Slow ${i}`,
            email: `slow-${i}@example.com`,
            password: 'correct horse battery',
            posts,
          }),
        });
      }
      for (let i = 0; i < 5; i++) await fetch(`${base}/users?limit=100`);
      for (let i = 0; i < 5; i++) await fetch(`${base}/posts?q=nothing-matches&offset=1`); // an offset search scans every title
    } finally {
      child.kill('SIGTERM');
      await once(child, 'close'); // after its stdout has been read to the end
    }
    const warnings = jsonLines(output()).filter((line) => line.level === 40 && line.msg.startsWith('slow query'));
    // Startup's own slow queries (migrations) are logged too, outside any request.
    expect(warnings.filter((line) => line.requestId !== undefined).length).toBeGreaterThan(0);
  });
});

/**
 * SQLite answers the API's statements on a small table in well under the 1 ms threshold (it runs in
 * the process): 50,000 posts make the title search of GET /posts?q= scan long enough.
 */
async function fillPostsForAScan(): Promise<void> {
  const db = await openTestDatabase();
  try {
    await db.query("INSERT INTO users (name, email) VALUES ('Scanned', 'scanned@example.com')");
    await db.query(
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000) INSERT INTO posts (author_id, title, body) SELECT (SELECT id FROM users WHERE email = 'scanned@example.com'), 'post ' || i, 'b' FROM n",
    );
  } finally {
    await db.destroy();
  }
}

/** The JSON log lines in a process's output (its stderr's non-JSON lines left out). */
function jsonLines(output: string): LogLine[] {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

/** The test database, as the app under test uses it (schema already migrated). */
function openTestDatabase(): Promise<DataSource> {
  const options = dataSourceOptions({
    ...loadConfig({}).database,
    url: process.env.DATABASE_URL,
    migrationsRun: false,
  });
  return new DataSource({ ...options, logger: undefined, logging: false }).initialize();
}
