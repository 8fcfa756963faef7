import { HttpStatus, Inject, Injectable } from '@nestjs/common';
import { RateLimiterMemory, type RateLimiterRes } from 'rate-limiter-flexible';
import { APP_CONFIG, type AppConfig } from '../config/app.config';
import { ProblemException } from '../http/problem';
import { unknownAccountKey } from './login-throttle';

/**
 * Requests that make the service send an account mail (password reset, verification resend),
 * counted per address and per client IP in a fixed window, as LoginThrottle counts password guesses
 * (rate-limiter-flexible, in this process's memory). Each request spends one point on both counters
 * and nothing gives it back: the limit bounds mail sent to one inbox and the work one client can
 * cause. It is keyed by the address as typed (NFKC, lower case), known or not, so a 429 says nothing
 * about which addresses have accounts.
 */
@Injectable()
export class AccountMailThrottle {
  private readonly perAddress: RateLimiterMemory;
  private readonly perClient: RateLimiterMemory;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    const { resetMaxPerAddress, resetMaxPerClient, resetWindowMs } = config.auth.accounts;
    const duration = Math.ceil(resetWindowMs / 1000);
    this.perAddress = new RateLimiterMemory({ keyPrefix: 'mail-address', points: resetMaxPerAddress, duration });
    this.perClient = new RateLimiterMemory({ keyPrefix: 'mail-client', points: resetMaxPerClient, duration });
  }

  /**
   * Spends one request for `email` from `client` (its IP). Throws 429 with Retry-After (seconds)
   * when either has none left.
   */
  async spend(email: string, client: string): Promise<void> {
    const outcomes = await Promise.allSettled([
      this.perAddress.consume(unknownAccountKey(email)),
      this.perClient.consume(client),
    ]);
    const waits = outcomes.flatMap((outcome) =>
      outcome.status === 'rejected' ? [(outcome.reason as RateLimiterRes).msBeforeNext] : [],
    );
    if (waits.length === 0) return;
    throw new ProblemException(HttpStatus.TOO_MANY_REQUESTS, 'Too many mail requests; try again later', {
      retryAfterSeconds: Math.max(1, Math.ceil(Math.max(...waits) / 1000)),
    });
  }
}
