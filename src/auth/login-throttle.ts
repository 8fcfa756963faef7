import { HttpStatus, Inject, Injectable } from '@nestjs/common';
import { RateLimiterMemory, type RateLimiterRes } from 'rate-limiter-flexible';
import { APP_CONFIG, type AppConfig } from '../config/app.config';
import { ProblemException } from '../http/problem';

/**
 * Failed logins, counted per account (the email, whether or not it exists) and per client IP in a
 * fixed window (rate-limiter-flexible, in memory: per process, like the request rate limit). When
 * either has used up its failures, logins for it are answered 429 + Retry-After — without looking at
 * the password — until the window ends. Nothing is permanent: an attacker can hold an account
 * blocked only while spending failures on it, which the per-client limit also bounds.
 */
@Injectable()
export class LoginThrottle {
  private readonly perAccount: RateLimiterMemory;
  private readonly perClient: RateLimiterMemory;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    const { maxFailuresPerAccount, maxFailuresPerClient, failureWindowMs } = config.auth.login;
    const duration = Math.ceil(failureWindowMs / 1000);
    this.perAccount = new RateLimiterMemory({ keyPrefix: 'login-account', points: maxFailuresPerAccount, duration });
    this.perClient = new RateLimiterMemory({ keyPrefix: 'login-client', points: maxFailuresPerClient, duration });
  }

  /** Throws 429 (with Retry-After in seconds) when the account or the client may not try again yet. */
  async assertMayTry(account: string, client: string): Promise<void> {
    const waits = [
      exhausted(await this.perAccount.get(accountKey(account)), this.perAccount.points),
      exhausted(await this.perClient.get(client), this.perClient.points),
    ].filter((ms): ms is number => ms !== undefined);
    if (waits.length === 0) return;
    throw new ProblemException(HttpStatus.TOO_MANY_REQUESTS, 'Too many failed logins; try again later', {
      retryAfterSeconds: Math.max(1, Math.ceil(Math.max(...waits) / 1000)),
    });
  }

  /** Counts one failure against both the account and the client. */
  async recordFailure(account: string, client: string): Promise<void> {
    // consume() rejects once over the limit; the count still went up, which is all that is needed.
    await Promise.allSettled([this.perAccount.consume(accountKey(account)), this.perClient.consume(client)]);
  }
}

/** The same account however its email is typed. */
const accountKey = (email: string) => email.normalize('NFKC').toLowerCase();

/** Milliseconds until the window ends, when its failures are used up. */
function exhausted(state: RateLimiterRes | null, points: number): number | undefined {
  return state && state.consumedPoints >= points ? state.msBeforeNext : undefined;
}
