import { type DynamicModule, HttpStatus, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import { ThrottlerGuard, ThrottlerModule } from '@nestjs/throttler';
import type { AppConfig } from '../config/app.config';
import { ProblemException } from './problem';

/** Redis-backed counters; Redis not answering is a 503 + Retry-After (like the database), not a 500. */
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
@Module({})
export class RateLimitModule {
  static forRoot({ max, windowMs, redisUrl, redisKeyPrefix }: AppConfig['rateLimit']): DynamicModule {
    if (max === 0) return { module: RateLimitModule };
    return {
      module: RateLimitModule,
      imports: [
        ThrottlerModule.forRoot({
          throttlers: [{ limit: max, ttl: windowMs }],
          generateKey: (_context, client, throttler) => `${throttler}:${client}`,
          errorMessage: RATE_LIMITED_DETAIL,
          ...(redisUrl && {
            // The storage closes its connection on shutdown. maxRetriesPerRequest bounds how long a request
            // waits while Redis is unreachable: it then fails (503) instead of hanging.
            storage: new SharedCounters(redisUrl, { keyPrefix: redisKeyPrefix, maxRetriesPerRequest: 1 }),
          }),
        }),
      ],
      providers: [{ provide: APP_GUARD, useClass: ThrottlerGuard }],
    };
  }
}
