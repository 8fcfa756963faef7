import { HttpStatus, Inject, Injectable, type OnApplicationShutdown, Optional } from '@nestjs/common';
import Redis from 'ioredis';
import {
  type IRateLimiterOptions,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';
import { APP_CONFIG, type AppConfig } from '../config/app.config';
import { ProblemException } from '../http/problem';
import { RATE_LIMIT_REDIS, type RateLimitRedis, redisOptions } from '../http/rate-limit.module';

/**
 * Two fixed-window counters spent together: one per subject (an account, an address) and one per
 * client IP. `reserve` takes one point from both — atomically per counter, so parallel requests
 * cannot all pass a check made before any of them counted — and throws 429 + Retry-After (seconds)
 * when either has none left; `refund` gives the point back (a right password is not a failure).
 * Nothing is permanent: a blocked subject or client is free again when its window ends.
 */
export class PairedLimit {
  constructor(
    private readonly perSubject: RateLimiterAbstract,
    private readonly perClient: RateLimiterAbstract,
    /** The 429's `detail`. */
    private readonly detail: string,
  ) {}

  /**
   * Spends one point for `subject` from `client`. 429 (Retry-After) when either is used up; 503
   * (Retry-After 1, `unavailableCause: rate_limiter`) when the shared counters in Redis cannot be
   * reached — fail closed, like the HTTP rate limit: a limit that stopped counting would let guesses through.
   */
  async reserve(subject: string, client: string): Promise<void> {
    const outcomes = await Promise.allSettled([this.perSubject.consume(subject), this.perClient.consume(client)]);
    const failures = outcomes.flatMap((outcome) => (outcome.status === 'rejected' ? [outcome.reason as unknown] : []));
    if (failures.length === 0) return;
    if (failures.some((failure) => !(failure instanceof RateLimiterRes))) throw countersUnavailable();
    const waits = (failures as RateLimiterRes[]).map((res) => res.msBeforeNext);
    throw new ProblemException(HttpStatus.TOO_MANY_REQUESTS, this.detail, {
      retryAfterSeconds: Math.max(1, Math.ceil(Math.max(...waits) / 1000)),
    });
  }

  /** Gives back the point `reserve` took, with the same arguments; best effort (a failure leaves it spent). */
  async refund(subject: string, client: string): Promise<void> {
    await Promise.allSettled([this.perSubject.reward(subject), this.perClient.reward(client)]);
  }
}

/**
 * The account throttles, each with counters of its own (docs/security.md):
 * - `login`: password guesses (login, and `currentPassword` on PATCH /users/{id}) per account and per
 *   client, LOGIN_MAX_FAILURES_PER_ACCOUNT / _PER_CLIENT per LOGIN_FAILURE_WINDOW_MS;
 * - `passwordReset`: POST /auth/password-reset per address (as typed, known or not) and per client;
 * - `verification`: POST /auth/verify-email/resend per address and per client — the same numbers as
 *   resets (PASSWORD_RESET_MAX_PER_ADDRESS / _PER_CLIENT per PASSWORD_RESET_WINDOW_MS), other counters,
 *   so asking for one mail never uses up the other.
 * With REDIS_URL the counters live in Redis (rate-limiter-flexible's RateLimiterRedis, on the HTTP
 * rate limit's client, or a client of their own when RATE_LIMIT_MAX=0), so every instance counts
 * against the same limit; without it each process counts alone, in memory.
 */
@Injectable()
export class Throttles implements OnApplicationShutdown {
  readonly login: PairedLimit;
  readonly passwordReset: PairedLimit;
  readonly verification: PairedLimit;
  /** A client opened here (the HTTP rate limit is off), closed on shutdown; null when shared or in memory. */
  private readonly ownRedis: Redis | null = null;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    @Optional() @Inject(RATE_LIMIT_REDIS) sharedRedis: RateLimitRedis = null,
  ) {
    const { redisUrl, redisKeyPrefix, redisCommandTimeoutMs } = config.rateLimit;
    if (!sharedRedis && redisUrl) {
      this.ownRedis = new Redis(redisUrl, { keyPrefix: redisKeyPrefix, ...redisOptions(redisCommandTimeoutMs) });
      this.ownRedis.on('error', () => undefined); // a request that needs it answers 503 (PairedLimit.reserve)
    }
    const redis = sharedRedis ?? this.ownRedis;
    const limiter = (keyPrefix: string, points: number, windowMs: number): RateLimiterAbstract => {
      const options: IRateLimiterOptions = {
        keyPrefix: `throttle:${keyPrefix}`,
        points,
        duration: Math.ceil(windowMs / 1000),
      };
      return redis ? new RateLimiterRedis({ ...options, storeClient: redis }) : new RateLimiterMemory(options);
    };
    const { maxFailuresPerAccount, maxFailuresPerClient, failureWindowMs } = config.auth.login;
    this.login = new PairedLimit(
      limiter('login-account', maxFailuresPerAccount, failureWindowMs),
      limiter('login-client', maxFailuresPerClient, failureWindowMs),
      'Too many failed password attempts; try again later',
    );
    const { resetMaxPerAddress, resetMaxPerClient, resetWindowMs } = config.auth.accounts;
    this.passwordReset = new PairedLimit(
      limiter('reset-address', resetMaxPerAddress, resetWindowMs),
      limiter('reset-client', resetMaxPerClient, resetWindowMs),
      'Too many password reset requests; try again later',
    );
    this.verification = new PairedLimit(
      limiter('verify-address', resetMaxPerAddress, resetWindowMs),
      limiter('verify-client', resetMaxPerClient, resetWindowMs),
      'Too many verification mail requests; try again later',
    );
  }

  onApplicationShutdown(): void {
    this.ownRedis?.disconnect();
  }
}

/** The throttle key of an email that matches no account (or an address as typed): NFKC, lower case. */
export const addressKey = (email: string) => `email:${email.normalize('NFKC').toLowerCase()}`;
/** The throttle key of an existing account, whatever spelling of its email found it. */
export const accountKey = (id: number) => `user:${id}`;

function countersUnavailable(): ProblemException {
  return new ProblemException(HttpStatus.SERVICE_UNAVAILABLE, 'The rate limiter is unavailable; retry shortly', {
    retryAfterSeconds: 1,
    unavailableCause: 'rate_limiter',
  });
}
