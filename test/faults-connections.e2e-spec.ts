import { setTimeout as sleep } from 'node:timers/promises';
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

  it(`the process survives every app connection ended each second for ${LOAD_MS / 1000} s: every request answered, never 500, 503 + Retry-After problem at worst (RFC 9110 §15.6.4), all well afterwards`, async () => {
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
        t.api.post('/users').send({ name: `New${i}`, email: `new-${i}-${Date.now()}@example.com`, password: PASSWORD }),
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

    // After the loop: every kind of request succeeds again, at once, on the same process.
    for (let i = 0; i < 20; i++) {
      const kind = kinds[i % kinds.length];
      const res = await requests[kind](100_000 + i);
      expect({ kind, status: res.status }).toEqual({ kind, status: kind.startsWith('POST') ? 201 : 200 });
    }
  });
});
