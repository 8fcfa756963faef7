import { type DynamicModule, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ThrottlerGuard, ThrottlerModule } from '@nestjs/throttler';
import type { AppConfig } from '../config/app.config';

/** A 429's `detail`; Nest's default names the exception class ("ThrottlerException: Too Many Requests"). */
export const RATE_LIMITED_DETAIL = 'Too many requests; retry after the Retry-After delay';

/**
 * Per client IP across the whole API (health probes exempt, see HealthController): RATE_LIMIT_MAX
 * requests per window in all. The throttler's default key is per route handler, which gave each
 * client the limit once per endpoint; ours is the client alone. A 429 carries Retry-After and becomes
 * problem+json like every other error. With RATE_LIMIT_MAX=0 no guard is registered at all, rather
 * than one that runs on every request to skip.
 */
@Module({})
export class RateLimitModule {
  static forRoot({ max, windowMs }: AppConfig['rateLimit']): DynamicModule {
    if (max === 0) return { module: RateLimitModule };
    return {
      module: RateLimitModule,
      imports: [
        ThrottlerModule.forRoot({
          throttlers: [{ limit: max, ttl: windowMs }],
          generateKey: (_context, client, throttler) => `${throttler}:${client}`,
          errorMessage: RATE_LIMITED_DETAIL,
        }),
      ],
      providers: [{ provide: APP_GUARD, useClass: ThrottlerGuard }],
    };
  }
}
