import type { ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import Redis from 'ioredis';
import { startMain } from './main-process';

/** One app process of several, as a load balancer sees it. */
export interface Instance {
  base: string;
  child: ChildProcess;
  output: () => string;
}

/**
 * How long the instances may take to answer /health/ready, together: without a fresh build each
 * compiles src/ with ts-node first, all at once, which on a machine shared with other test runs took
 * longer than one startMain's default. A bound on a hang, not a timing.
 */
export const INSTANCES_READY_MS = 300_000;

/** The same `src/main.ts` started `count` times on the test database, with `env` shared by all. */
export async function startInstances(count: number, env: Record<string, string>): Promise<Instance[]> {
  const started = await Promise.allSettled(
    Array.from({ length: count }, () => startMain(env, { readyWithinMs: INSTANCES_READY_MS })),
  );
  const failed = started.find((result) => result.status === 'rejected');
  if (!failed) return started.map((result) => (result as PromiseFulfilledResult<Instance>).value);
  // The ones that did start would keep the test run from ending.
  await stopInstances(started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : [])));
  throw failed.reason;
}

/** Stops every instance still running (SIGTERM) and waits for it to exit. */
export async function stopInstances(instances: Instance[]): Promise<void> {
  await Promise.all(
    instances
      .filter(({ child }) => child.exitCode === null && child.signalCode === null)
      .map(({ child }) => new Promise((resolve) => child.once('exit', resolve).kill('SIGTERM'))),
  );
}

/**
 * A client behind a round-robin load balancer: each request goes to the next instance. The instances
 * trust one proxy hop, so `X-Forwarded-For` is the client address the rate limit keys on: `ip` fixes it,
 * otherwise each request comes from a new random address (and never runs into the limit).
 */
export function roundRobin(instances: Instance[], ip?: string) {
  let next = 0;
  return {
    /** `fetch` to the next instance; `init.headers` may be a plain object. The answer names the instance. */
    async request(path: string, init: Omit<RequestInit, 'headers'> & { headers?: Record<string, string> } = {}) {
      const index = next++ % instances.length;
      const headers: Record<string, string> = { 'X-Forwarded-For': ip ?? randomClientIp(), ...init.headers };
      if (init.body !== undefined) headers['Content-Type'] ??= 'application/json';
      const res = await fetch(`${instances[index].base}${path}`, { ...init, headers });
      return Object.assign(res, { instance: index });
    },
  };
}

/** An address from 198.18.0.0/15, the range RFC 2544 reserves for tests. */
export function randomClientIp(): string {
  return `198.${18 + randomInt(2)}.${randomInt(256)}.${randomInt(1, 255)}`;
}

/** The Redis at `url` if it answers PING within a second, else why not. */
export async function redisAnswers(url: string): Promise<true | string> {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 1_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  redis.on('error', () => undefined); // the outcome is reported below
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG' ? true : 'it did not answer PING';
  } catch (error) {
    return (error as Error).message;
  } finally {
    redis.disconnect();
  }
}

/** Deletes the keys under `prefix` in the Redis at `url` (what a test's instances counted there). */
export async function deleteRedisKeys(url: string, prefix: string): Promise<void> {
  const client = new Redis(url);
  try {
    const keys = await client.keys(`${prefix}*`);
    if (keys.length > 0) await client.del(...keys);
  } finally {
    client.disconnect();
  }
}
