import { type DynamicModule, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ThrottlerGuard, ThrottlerModule } from '@nestjs/throttler';
import type { AppConfig } from '../config/app.config';

/**
 * Per client IP; a 429 carries Retry-After and becomes problem+json like every other error. With
 * RATE_LIMIT_MAX=0 no guard is registered at all, rather than one that runs on every request to skip.
 */
@Module({})
export class RateLimitModule {
  static forRoot({ max, windowMs }: AppConfig['rateLimit']): DynamicModule {
    if (max === 0) return { module: RateLimitModule };
    return {
      module: RateLimitModule,
      imports: [ThrottlerModule.forRoot({ throttlers: [{ limit: max, ttl: windowMs }] })],
      providers: [{ provide: APP_GUARD, useClass: ThrottlerGuard }],
    };
  }
}
