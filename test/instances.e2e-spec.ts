import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import Redis from 'ioredis';
import {
  type Instance,
  INSTANCES_READY_MS,
  redisAnswers,
  roundRobin,
  startInstances,
  stopInstances,
} from './setup/instances';
import { authAs, PASSWORD } from './setup/accounts';
import { useTestApp } from './setup/test-app';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const RATE_LIMIT_MAX = 20;
const PROBLEM = /application\/problem\+json/;
/** Every instance (and the test app that mints tokens) signs with one key, or each would refuse the others' tokens. */
const JWT_SECRET = 'one-jwt-secret-shared-by-every-instance-0123456789';

/**
 * Three processes of `src/main.ts` on one PostgreSQL (and one Redis, when it answers), driven through
 * a round-robin "load balancer": what must hold when the service runs as several instances.
 */
describe('three instances behind a load balancer', () => {
  const t = useTestApp({ JWT_SECRET });
  const keyPrefix = `nest-typeorm-users-e2e-${randomUUID()}:`;
  let redis: true | string = 'not checked';
  let instances: Instance[] = [];

  beforeAll(async () => {
    redis = await redisAnswers(REDIS_URL);
    if (redis !== true) console.info(`Redis at ${REDIS_URL} is not used (${redis}): the rate limit is per instance`);
    instances = await startInstances(3, {
      CURSOR_SECRET: 'one-secret-shared-by-every-instance',
      JWT_SECRET,
      RATE_LIMIT_MAX: String(RATE_LIMIT_MAX),
      RATE_LIMIT_WINDOW_MS: '60000',
      TRUST_PROXY_HOPS: '1', // behind the "load balancer": X-Forwarded-For names the client
      LOG_LEVEL: 'warn',
      // Redis's default command bound is for production; on a loaded test machine a slower answer is not a fault.
      ...(redis === true && { REDIS_URL, REDIS_KEY_PREFIX: keyPrefix, REDIS_COMMAND_TIMEOUT_MS: '5000' }),
    });
  }, INSTANCES_READY_MS + 30_000);

  afterAll(async () => {
    await stopInstances(instances);
    if (redis !== true) return;
    const client = new Redis(REDIS_URL);
    const keys = await client.keys(`${keyPrefix}*`);
    if (keys.length > 0) await client.del(...keys);
    client.disconnect();
  });

  it('50 concurrent POST /users with one email, spread over the instances: one 201, 49 × 409, one row', async () => {
    const lb = roundRobin(instances);
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        lb.request('/users', {
          method: 'POST',
          body: JSON.stringify({
            name: `R${i}`,
            email: i % 2 ? 'same@example.com' : 'SAME@example.com',
            password: PASSWORD,
          }),
        }),
      ),
    );
    const statuses = results.map((res) => res.status);
    const others = await Promise.all(
      results
        .filter((res) => res.status !== 201 && res.status !== 409)
        .map(async (res) => `${res.status} ${await res.text()}`),
    );
    expect({
      created: statuses.filter((s) => s === 201).length,
      conflicts: statuses.filter((s) => s === 409).length,
      others,
    }).toEqual({ created: 1, conflicts: 49, others: [] });
    expect(new Set(results.map((res) => res.instance)).size).toBe(3);
    expect(results.every((res) => res.status === 201 || PROBLEM.test(res.headers.get('content-type') ?? ''))).toBe(
      true,
    );
    expect(await t.db.count('users')).toBe(1);
  });

  it('two PATCHes with one If-Match on different instances: one 200, one 412 (RFC 9110 §13.1.1)', async () => {
    const ada = await t.db.user('Ada');
    const lb = roundRobin(instances);
    const etag = (await lb.request(`/users/${ada.id}`)).headers.get('etag')!;
    const auth = await authAs(t.app, ada.id); // a token from one instance's key works on every instance
    const patch = (name: string) =>
      lb.request(`/users/${ada.id}`, {
        method: 'PATCH',
        headers: { 'If-Match': etag, ...auth },
        body: JSON.stringify({ name }),
      });
    const [first, second] = await Promise.all([patch('First'), patch('Second')]);
    expect(first.instance).not.toBe(second.instance);
    expect([first.status, second.status].sort()).toEqual([200, 412]);
    const winner = first.status === 200 ? 'First' : 'Second';
    const [row] = await t.query<{ name: string }[]>('SELECT name FROM users WHERE id = $1', [ada.id]);
    expect(row.name).toBe(winner);
  });

  it('Idempotency-Key (draft-ietf-httpapi-idempotency-key-header-07 §2.6): a retry on another instance replays the stored 201 byte for byte; a changed body on a third answers 422 (§2.7); six at once over three instances make one row, the others replay or get 409', async () => {
    const ada = await t.db.user('Ada');
    const lb = roundRobin(instances);
    const auth = await authAs(t.app, ada.id);
    const post = (key: string, title: string) =>
      lb.request(`/users/${ada.id}/posts`, {
        method: 'POST',
        headers: { 'Idempotency-Key': key, ...auth },
        body: JSON.stringify({ title, body: 'b' }),
      });
    const first = await post('"retry-elsewhere"', 'Once');
    const firstBody = await first.text();
    const retry = await post('"retry-elsewhere"', 'Once');
    const reused = await post('"retry-elsewhere"', 'Changed');
    expect(new Set([first.instance, retry.instance, reused.instance]).size).toBe(3);
    expect([first.status, retry.status, reused.status]).toEqual([201, 201, 422]);
    expect(await retry.text()).toBe(firstBody);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    for (const header of ['location', 'etag', 'content-type']) {
      expect(retry.headers.get(header)).toBe(first.headers.get(header));
    }
    expect(reused.headers.get('content-type')).toMatch(PROBLEM);
    expect(((await reused.json()) as { type: string }).type).toBe('/problems/idempotency-key-reused');

    const racing = await Promise.all(Array.from({ length: 6 }, () => post('"racing"', 'Raced')));
    expect(new Set(racing.map((res) => res.instance)).size).toBe(3);
    const answers = await Promise.all(
      racing.map(async (res) => ({
        status: res.status,
        replayed: res.headers.get('idempotent-replayed'),
        retryAfter: res.headers.get('retry-after'),
        contentType: res.headers.get('content-type') ?? '',
        body: await res.text(),
      })),
    );
    const created = answers.filter((answer) => answer.status === 201);
    const busy = answers.filter((answer) => answer.status === 409);
    expect(created.length + busy.length).toBe(6);
    // One request ran; every other 201 is its stored response, replayed.
    expect(created.filter((answer) => answer.replayed === null)).toHaveLength(1);
    expect(new Set(created.map((answer) => answer.body)).size).toBe(1);
    for (const answer of busy) {
      expect(answer.contentType).toMatch(PROBLEM);
      expect(Number(answer.retryAfter)).toBeGreaterThan(0);
      expect((JSON.parse(answer.body) as { type: string }).type).toBe('/problems/idempotency-key-in-use');
    }
    const rows = await t.query<{ title: string }[]>('SELECT title FROM posts WHERE author_id = $1 ORDER BY id', [
      ada.id,
    ]);
    expect(rows.map((row) => row.title)).toEqual(['Once', 'Raced']);
    const [keys] = await t.query<{ n: number | string }[]>(
      'SELECT count(*)::int AS n FROM idempotency_keys WHERE scope = $1',
      [`user:${ada.id}`],
    );
    expect(Number(keys.n)).toBe(2);
  });

  it('a comment walk whose pages come from different instances returns every comment once', async () => {
    const ada = await t.db.user('Ada');
    const post = await t.db.post(ada.id);
    for (let i = 0; i < 25; i++) await t.db.comment(post.id, ada.id, `c${i}`);
    const before = await t.query<{ id: number }[]>('SELECT id FROM comments ORDER BY id');
    const lb = roundRobin(instances);
    const auth = await authAs(t.app, ada.id);
    const seen: number[] = [];
    const servedBy = new Set<number>();
    let next: string | undefined = `/posts/${post.id}/comments?limit=4`;
    while (next) {
      const page = await lb.request(next);
      expect(page.status).toBe(200);
      servedBy.add(page.instance);
      seen.push(...((await page.json()) as { id: number }[]).map((comment) => comment.id));
      // Someone else comments meanwhile, on another instance: new comments may appear, none twice.
      await lb.request(`/posts/${post.id}/comments`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ body: 'meanwhile' }),
      });
      next = /<[^>]*?(\/posts\/[^>]+)>;\s*rel="next"/.exec(page.headers.get('link') ?? '')?.[1];
    }
    expect(servedBy.size).toBe(3);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(expect.arrayContaining(before.map((row) => row.id)));
  });

  it('the rate limit holds across instances when they share Redis (429 + Retry-After, RFC 6585 §4)', async () => {
    if (redis !== true) {
      console.info(`skipped: Redis at ${REDIS_URL} does not answer (${redis}), so each instance counts alone`);
      return;
    }
    const lb = roundRobin(instances, '198.18.0.1');
    const results: { status: number; retryAfter: string | null; instance: number }[] = [];
    for (let i = 0; i < RATE_LIMIT_MAX + 9; i++) {
      const res = await lb.request('/users?limit=1');
      await res.body?.cancel();
      results.push({ status: res.status, retryAfter: res.headers.get('retry-after'), instance: res.instance });
    }
    const limited = results.filter((r) => r.status === 429);
    // In memory, each of the 3 instances would let RATE_LIMIT_MAX through: none would answer 429.
    expect(results.slice(0, RATE_LIMIT_MAX).every((r) => r.status === 200)).toBe(true);
    expect(limited).toHaveLength(9);
    expect(new Set(limited.map((r) => r.instance)).size).toBe(3);
    expect(limited.every((r) => Number(r.retryAfter) > 0)).toBe(true);
    // Another client is not affected.
    expect((await roundRobin(instances, '198.18.0.2').request('/users?limit=1')).status).toBe(200);
  });

  // Last: it stops one of the instances.
  it('SIGTERM to one instance under write load: no acknowledged write lost, the others keep serving', async () => {
    const victim = instances[1];
    const exited = once(victim.child, 'exit');
    const created: number[] = [];
    const outcomes: Record<string, number> = {};
    const note = (key: string) => (outcomes[key] = (outcomes[key] ?? 0) + 1);
    let signalledAt = Infinity;
    const servedAfterSignal = new Set<number>();
    let running = true;

    // 6 clients writing through the load balancer. A refused or closed connection is a clean failure
    // (never acknowledged); each client's next request goes to the next instance.
    const clients = Array.from({ length: 6 }, async (_, c) => {
      const lb = roundRobin(instances);
      for (let i = 0; running; i++) {
        try {
          const res = await lb.request('/users', {
            method: 'POST',
            body: JSON.stringify({ name: `Load ${c}-${i}`, email: `load-${c}-${i}@example.com`, password: PASSWORD }),
          });
          note(String(res.status));
          if (res.status === 201) {
            created.push(((await res.json()) as { id: number }).id);
            if (Date.now() > signalledAt) servedAfterSignal.add(res.instance);
          } else await res.body?.cancel();
        } catch {
          note('connection refused or closed');
        }
      }
    });

    await new Promise((resolve) => setTimeout(resolve, 500));
    signalledAt = Date.now();
    victim.child.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    await new Promise((resolve) => setTimeout(resolve, 500));
    running = false;
    await Promise.all(clients);

    expect({ code, output: code === 0 ? '' : victim.output() }).toEqual({ code: 0, output: '' });
    expect(Object.keys(outcomes).filter((key) => /^5/.test(key) && key !== '503')).toEqual([]);
    expect([...servedAfterSignal]).toEqual(expect.arrayContaining([0, 2])); // the victim may finish in-flight ones
    const [stored] = await t.query<{ n: number }[]>('SELECT count(*)::int AS n FROM users WHERE id = ANY($1)', [
      created,
    ]);
    expect(stored.n).toBe(created.length);
    console.info(`one of three instances stopped under load: ${JSON.stringify(outcomes)}`);
  });
});

describe('rate limit counters in Redis, when Redis does not answer', () => {
  const t = useTestApp({ REDIS_URL: 'redis://127.0.0.1:1', RATE_LIMIT_MAX: '10' }); // nothing listens on port 1

  it('answers 503 problem + Retry-After, not 500, and does not hang (RFC 9110 §15.6.4)', async () => {
    const started = Date.now();
    const res = await t.api.get('/users');
    expect(res.status).toBe(503);
    expect(res.headers['content-type']).toMatch(PROBLEM);
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
