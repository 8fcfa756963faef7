import { type DynamicModule, Global, HttpStatus, Logger, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import { ThrottlerGuard, ThrottlerModule } from '@nestjs/throttler';
import type { Cluster, default as Redis } from 'ioredis';
import type { AppConfig } from '../config/app.config';
import { ProblemException } from './problem';

/** Injection token of the rate limit's Redis client (ioredis), or null when the counters are in memory. */
export const RATE_LIMIT_REDIS = Symbol('RATE_LIMIT_REDIS');

/**
 * Redis-backed counters. A Redis that refuses, is unreachable, or accepts and never answers fails the
 * request closed — 503 + Retry-After, like the database, never a 500 or a hang — within
 * REDIS_COMMAND_TIMEOUT_MS (see redisOptions): a rate limit that silently stopped counting would let
 * a flood through exactly when something is already wrong (docs/failures.md).
 */
class SharedCounters extends ThrottlerStorageRedisService {
  override async increment(...args: Parameters<ThrottlerStorageRedisService['increment']>) {
    try {
      return await super.increment(...args);
    } catch {
      throw new ProblemException(HttpStatus.SERVICE_UNAVAILABLE, 'The rate limiter is unavailable; retry shortly', {
        retryAfterSeconds: 1,
        unavailableCause: 'rate_limiter',
      });
    }
  }
}

/** A 429's `detail`; Nest's default names the exception class ("ThrottlerException: Too Many Requests"). */
export const RATE_LIMITED_DETAIL = 'Too many requests; retry after the Retry-After delay';

/**
 * Per client IP across the whole API (health probes exempt, see HealthController): RATE_LIMIT_MAX
 * requests per window in all. The throttler's default key is per route handler, which gave each
 * client the limit once per endpoint; ours is the client alone. A 429 carries Retry-After and becomes
 * problem+json like every other error. With RATE_LIMIT_MAX=0 no guard is registered at all, rather
 * than one that runs on every request to skip. With REDIS_URL the counters live in Redis
 * (@nest-lab/throttler-storage-redis: one atomic script per request), so every instance counts against
 * the same limit; without it each process counts alone.
 */
@Global()
@Module({})
export class RateLimitModule {
  static forRoot({
    max,
    windowMs,
    redisUrl,
    redisKeyPrefix,
    redisCommandTimeoutMs,
  }: AppConfig['rateLimit']): DynamicModule {
    const none = { provide: RATE_LIMIT_REDIS, useValue: null };
    if (max === 0) return { module: RateLimitModule, providers: [none], exports: [RATE_LIMIT_REDIS] };
    const storage = redisUrl
      ? new SharedCounters(redisUrl, { keyPrefix: redisKeyPrefix, ...redisOptions(redisCommandTimeoutMs) })
      : undefined;
    // The storage closes its connection on shutdown. Redis going away and coming back: one line each.
    if (storage) logAvailability(storage.redis);
    return {
      module: RateLimitModule,
      exports: [RATE_LIMIT_REDIS],
      imports: [
        ThrottlerModule.forRoot({
          throttlers: [{ limit: max, ttl: windowMs }],
          generateKey: (_context, client, throttler) => `${throttler}:${client}`,
          errorMessage: RATE_LIMITED_DETAIL,
          ...(storage && { storage }),
        }),
      ],
      providers: [
        { provide: APP_GUARD, useClass: ThrottlerGuard },
        storage ? { provide: RATE_LIMIT_REDIS, useValue: storage.redis } : none,
      ],
    };
  }
}

/**
 * ioredis options that bound every wait on Redis by `commandTimeoutMs`: each command — sent, or
 * queued while (re)connecting — fails after it (`commandTimeout`, which also covers a Redis that
 * accepts the connection and never answers); a connection attempt gives up after it
 * (`connectTimeout`); a command is retried on one reconnection at most (`maxRetriesPerRequest`).
 * Reconnection goes on in the background with a capped backoff, so the counters come back with Redis.
 */
export function redisOptions(commandTimeoutMs: number) {
  return {
    commandTimeout: commandTimeoutMs,
    connectTimeout: commandTimeoutMs,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt: number) => Math.min(50 * 2 ** attempt, 2_000),
  };
}

export type RateLimitRedis = Redis | Cluster | null;

/** Logs when Redis becomes unreachable (its first 'error') and when it is ready again; ioredis retries meanwhile. */
function logAvailability(redis: Redis | Cluster): void {
  const logger = new Logger('RateLimit');
  let down = false;
  redis.on('error', (error: Error) => {
    if (down) return;
    down = true;
    logger.warn(`Redis is unavailable (${error.message}): rate-limited requests get 503 until it answers`);
  });
  redis.on('ready', () => {
    if (!down) return;
    down = false;
    logger.log('Redis answers again');
  });
}
