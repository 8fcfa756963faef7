import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { translateDatabaseError } from '../src/database/errors/database-errors';
import { UnavailableError } from '../src/database/errors/persistence-errors';
import { proxyFor } from './setup/fault-proxy';
import { appEntryPoint, startMain } from './setup/main-process';
import { authAs, PASSWORD } from './setup/accounts';
import { connectionKiller, type ConnectionKiller, killEvery } from './setup/connection-killer';
import { describeOn, testDialect } from './setup/dialect';
import { useTestApp } from './setup/test-app';

const PROBLEM = /application\/problem\+json/;
/** How long the connections are killed under load; FAULTS_LOAD_MS=30000 for the full measurement. */
const LOAD_MS = Number(process.env.FAULTS_LOAD_MS ?? 8_000);
const KILL_EVERY_MS = 1_000;
const WORKERS = 8;

type Outcome = { kind: string; status: number | 'no answer'; detail?: string };

describeOn(
  ['postgres', 'mysql'],
  'SQLite runs in the process: it has no server connection to lose (its busy and read-only faults are in test/sqlite.e2e-spec.ts)',
)(`connections lost under load (${testDialect === 'postgres' ? 'pg_terminate_backend' : 'KILL CONNECTION'})`, () => {
  const t = useTestApp({}, { resetEachTest: false });
  let killer: ConnectionKiller;

  beforeAll(async () => {
    await t.reset();
    killer = await connectionKiller(process.env.DATABASE_URL!);
  });
  afterAll(() => killer?.close());

  it(
    `the process survives every app connection ended each second for ${LOAD_MS / 1000} s: every request answered, never 500, 503 + Retry-After problem at worst (RFC 9110 §15.6.4), all well afterwards`,
    async () => {
      const users = await Promise.all([1, 2, 3, 4].map((i) => t.db.user(`Load${i}`, `load${i}@example.com`)));
      const auths = await Promise.all(users.map((user) => authAs(t.app, user.id)));
      const requests: Record<
        string,
        (i: number) => Promise<{ status: number; headers: Record<string, string>; body: { detail?: string } }>
      > = {
        'GET /users': () => t.api.get('/users?limit=5'),
        'GET /users/{id} (authenticated)': (i) => t.api.get(`/users/${users[i % 4].id}`).set(auths[i % 4]),
        'PATCH /users/{id}': (i) =>
          t.api
            .patch(`/users/${users[i % 4].id}`)
            .set(auths[i % 4])
            .send({ name: `Load ${i}` }),
        'POST /users/{id}/posts': (i) =>
          t.api
            .post(`/users/${users[i % 4].id}/posts`)
            .set(auths[i % 4])
            .send({ title: `t${i}`, body: 'b' }),
        'POST /users': (i) =>
          t.api
            .post('/users')
            .send({ name: `New${i}`, email: `new-${i}-${Date.now()}@example.com`, password: PASSWORD }),
      };
      const kinds = Object.keys(requests);

      const outcomes: Outcome[] = [];
      let loading = true;
      let sent = 0;
      const worker = async () => {
        while (loading) {
          const i = sent++;
          const kind = kinds[i % kinds.length];
          try {
            const res = await requests[kind](i);
            outcomes.push({ kind, status: res.status, detail: res.body?.detail });
            if (res.status === 503) {
              expect(res.headers['content-type']).toMatch(PROBLEM);
              expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
            }
          } catch (error) {
            outcomes.push({ kind, status: 'no answer', detail: (error as Error).message });
          }
        }
      };

      const loop = killEvery(killer, KILL_EVERY_MS);
      const workers = Array.from({ length: WORKERS }, worker);
      await sleep(LOAD_MS);
      const { rounds, killed } = await loop.stop();
      loading = false;
      await Promise.all(workers);

      const byStatus: Record<string, number> = {};
      for (const { status } of outcomes) byStatus[status] = (byStatus[status] ?? 0) + 1;
      console.info(
        `${testDialect}: ${outcomes.length} requests in ${LOAD_MS / 1000} s, ${rounds} kill rounds ending ${killed} connections; by status ${JSON.stringify(byStatus)}`,
      );
      const unexpected = outcomes.filter(({ status }) => status !== 200 && status !== 201 && status !== 503);
      expect(unexpected).toEqual([]);
      expect(killed).toBeGreaterThan(0);

      // /metrics counted what happened.
      const metrics = (await t.api.get('/metrics').expect(200)).text;
      expect(Number(/^db_connections_lost_total (\d+)/m.exec(metrics)?.[1])).toBeGreaterThan(0);

      // After the loop: every kind of request succeeds again, at once, on the same process.
      for (let i = 0; i < 20; i++) {
        const kind = kinds[i % kinds.length];
        const res = await requests[kind](100_000 + i);
        expect({ kind, status: res.status }).toEqual({ kind, status: kind.startsWith('POST') ? 201 : 200 });
      }
    },
    LOAD_MS + 60_000,
  );
});

describeOn(
  ['postgres'],
  'MariaDB’s read_only is server-wide (it would stop every database on the shared server) and spares root; its read-only errors (1290, 1836, 1792) → 503 are unit-tested in src/database/errors/database-errors.spec.ts',
)('a server that turns read-only under the app (a failover, a demoted primary)', () => {
  const t = useTestApp();
  let admin: Client;
  let database: string;

  beforeAll(async () => {
    admin = new Client({ connectionString: process.env.DATABASE_URL, application_name: 'fault-injection' });
    admin.on('error', () => undefined);
    await admin.connect(); // opened before the database turns read-only, so it can turn it back
    database = (await admin.query<{ name: string }>('SELECT current_database() AS name')).rows[0].name;
  });
  afterAll(async () => {
    await admin.query(`ALTER DATABASE "${database}" RESET default_transaction_read_only`);
    await admin.end();
  });

  it('writes get 503 + Retry-After (never 500) and change nothing, reads still answer; the read-only connections are dropped, so writes succeed again without a restart (RFC 9110 §15.6.4)', async () => {
    const ada = await t.db.user('Ada', 'ada@example.com');
    const auth = await authAs(t.app, ada.id);
    const killer = await connectionKiller(process.env.DATABASE_URL!);
    try {
      await admin.query(`ALTER DATABASE "${database}" SET default_transaction_read_only = on`);
      await killer.killAll(); // the app reconnects, as after a failover, to a server that refuses writes

      const refused = await t.api.patch(`/users/${ada.id}`).set(auth).send({ name: 'Changed' });
      expect(refused.status).toBe(503);
      expect(refused.headers['content-type']).toMatch(PROBLEM);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      expect(refused.body.detail).toMatch(/read-only/);
      await t.api.get(`/users/${ada.id}`).set(auth).expect(200);
      const [row] = await t.query<{ name: string }[]>('SELECT name FROM users WHERE id = $1', [ada.id]);
      expect(row.name).toBe('Ada');

      await admin.query(`ALTER DATABASE "${database}" RESET default_transaction_read_only`);
      // The pooled connections still say read-only for their whole session: only dropping them helps.
      const statuses: number[] = [];
      for (let i = 0; i < 5 && statuses.at(-1) !== 200; i++) {
        statuses.push((await t.api.patch(`/users/${ada.id}`).set(auth).send({ name: 'Changed' })).status);
      }
      expect(statuses.at(-1)).toBe(200);
      expect(statuses.every((status) => status === 200 || status === 503)).toBe(true);
    } finally {
      await admin.query(`ALTER DATABASE "${database}" RESET default_transaction_read_only`);
      await killer.close();
    }
  });
});

describeOn(
  ['postgres', 'mysql'],
  'SQLite has no statement timeout: it runs in the process, and busy_timeout bounds its lock waits',
)('the statement timeout (DB_STATEMENT_TIMEOUT_MS) on every server dialect', () => {
  const t = useTestApp({ DB_STATEMENT_TIMEOUT_MS: '300' });

  it('cuts a statement that runs longer, as a 503 (database_statement_timeout)', async () => {
    const sleepSql = `SELECT ${testDialect === 'postgres' ? 'pg_sleep' : 'SLEEP'}(5)`;
    const started = Date.now();
    const error = await t.dataSource.query(sleepSql).then(
      () => undefined,
      (failure: unknown) => failure,
    );
    expect(Date.now() - started).toBeLessThan(4_500);
    const unavailable = translateDatabaseError(error);
    expect(unavailable).toBeInstanceOf(UnavailableError);
    expect(unavailable).toMatchObject({ unavailableCause: 'database_statement_timeout' });
  });
});

describeOn(['postgres', 'mysql'], 'a SQLite file is there or not: nothing to wait for')(
  'startup waits for the database (DB_STARTUP_TIMEOUT_MS)',
  () => {
    it('retries with backoff, one line per attempt, and starts once the database answers', async () => {
      const { proxy, url } = await proxyFor(process.env.DATABASE_URL!);
      proxy.mode('blackhole'); // the database accepts nothing yet: each attempt times out
      // Let it in once it has tried (and timed out) at least once; how long the start takes does not matter.
      const letIn = (async () => {
        while (proxy.connections === 0) await sleep(50);
        await sleep(1_500);
        proxy.mode('pass');
      })();
      let main: Awaited<ReturnType<typeof startMain>> | undefined;
      try {
        [main] = await Promise.all([
          startMain({ DATABASE_URL: url, DB_POOL_TIMEOUT_MS: '300', DB_STARTUP_TIMEOUT_MS: '60000' }),
          letIn,
        ]);
        expect(main.output()).toMatch(/Database not available yet \(attempt 1: .*\); retrying in 250 ms/);
      } finally {
        main?.child.kill('SIGTERM');
        if (main) await once(main.child, 'exit');
        await proxy.close();
      }
    });

    it('a database that never comes: one clear line and a non-zero exit once the deadline passes', async () => {
      const { proxy, url } = await proxyFor(process.env.DATABASE_URL!);
      await proxy.close(); // nothing listens there any more
      const child = spawn(process.execPath, appEntryPoint(), {
        env: { ...process.env, NODE_OPTIONS: '', PORT: '0', DATABASE_URL: url, DB_STARTUP_TIMEOUT_MS: '1500' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk) => (stderr += chunk));
      const [code] = (await once(child, 'close')) as [number];
      expect(code).not.toBe(0);
      const last = stderr.trim().split('\n').at(-1);
      expect(last).toMatch(
        /^Startup failed: cannot use the database at .*gave up after \d+ attempts in \d+ s, DB_STARTUP_TIMEOUT_MS=1500\)$/,
      );
      expect(stderr).toMatch(/attempt 1: /);
    });
  },
);
