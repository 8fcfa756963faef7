import { HttpStatus, Inject, Injectable } from '@nestjs/common';
import { RateLimiterMemory, type RateLimiterRes } from 'rate-limiter-flexible';
import { APP_CONFIG, type AppConfig } from '../config/app.config';
import { ProblemException } from '../http/problem';

/**
 * Password guesses, counted per account and per client IP in a fixed window (rate-limiter-flexible,
 * in memory: per process, like the request rate limit). Each attempt first reserves one guess on
 * both counters — atomically, so parallel requests cannot all pass a check made before any of them
 * counted — and a correct password gives it back. With the guesses used up the answer is 429 +
 * Retry-After without looking at the password, until the window ends. Nothing is permanent: an
 * attacker can hold an account blocked only while spending guesses on it, which the per-client
 * limit also bounds.
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

  /**
   * Reserves one guess for `account` (the account's id when it exists, else the email as typed:
   * the same account however its email is spelled) from `client`. Throws 429 (Retry-After in
   * seconds) when either has none left. Call `refund` with the same arguments when the guess was right.
   */
  async reserve(account: string, client: string): Promise<void> {
    const outcomes = await Promise.allSettled([this.perAccount.consume(account), this.perClient.consume(client)]);
    const waits = outcomes.flatMap((outcome) =>
      outcome.status === 'rejected' ? [(outcome.reason as RateLimiterRes).msBeforeNext] : [],
    );
    if (waits.length === 0) return;
    throw new ProblemException(HttpStatus.TOO_MANY_REQUESTS, 'Too many failed password attempts; try again later', {
      retryAfterSeconds: Math.max(1, Math.ceil(Math.max(...waits) / 1000)),
    });
  }

  /** Gives back the guess `reserve` took: a right password is not a failure. */
  async refund(account: string, client: string): Promise<void> {
    await Promise.allSettled([this.perAccount.reward(account), this.perClient.reward(client)]);
  }
}

/** The throttle key of an email that matches no account: NFKC, lower case. */
export const unknownAccountKey = (email: string) => `email:${email.normalize('NFKC').toLowerCase()}`;
/** The throttle key of an existing account, whatever spelling of its email found it. */
export const accountKey = (id: number) => `user:${id}`;
