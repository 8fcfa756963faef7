import { Injectable, Logger, type BeforeApplicationShutdown } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { setImmediate } from 'node:timers/promises';
import { inTransaction } from '../database/transactions/transactions';
import { AccountsRepository } from './accounts.repository';
import { MailedTokens } from './mailed-tokens';
import { PasswordHasher } from './passwords';
import { SessionsRepository } from './sessions.repository';
import { addressKey, Throttles } from './throttles';

/**
 * Password reset by mail (OWASP Forgot Password Cheat Sheet): the request always gets the same
 * answer, and the mail carries a single-use token valid PASSWORD_RESET_TTL_SECONDS.
 *
 * No enumeration: `request` answers as soon as the rate limit let it through. Looking the address
 * up and writing the token and the mail happen after the answer, in the background, so whether an
 * account exists changes neither the answer nor its timing. (A background failure, e.g. the database
 * being away, is logged and the mail is not sent: the user asks again.)
 */
@Injectable()
export class PasswordReset implements BeforeApplicationShutdown {
  private readonly logger = new Logger(PasswordReset.name);
  /** Background work under way, awaited on shutdown so it never meets a closed pool. */
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly mailed: MailedTokens,
    private readonly accounts: AccountsRepository,
    private readonly sessions: SessionsRepository,
    private readonly passwords: PasswordHasher,
    private readonly throttles: Throttles,
    private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>,
  ) {}

  /**
   * POST /auth/password-reset: 429 when `email` (as typed, known or not) or `client` (the IP) asked
   * too often (Throttles.passwordReset), else returns at once and mails a reset link in the
   * background if `email` names an account.
   */
  async request(email: string, client: string): Promise<void> {
    await this.throttles.passwordReset.reserve(addressKey(email), client);
    const work = this.mailResetLink(email)
      .catch((error: Error) => this.logger.error(`Password reset mail not queued: ${error.message}`))
      .finally(() => this.pending.delete(work));
    this.pending.add(work);
  }

  /**
   * POST /auth/password-reset/confirm: sets `password` (already validated as at sign-up), ends every
   * session of the user, retires their other reset tokens, and counts the address as verified (the
   * token was read there). 400 naming `token` when it is unusable; the password is hashed only for
   * a token that looks usable, so forged tokens cost no argon2 time.
   */
  confirm(token: string, password: string): Promise<void> {
    return this.mailed.redeem(
      token,
      'password_reset',
      () => this.passwords.hash(password),
      async (userId, passwordHash) => {
        await this.accounts.setPasswordHash(userId, passwordHash);
        await this.accounts.setEmailVerified(userId, true);
        await this.mailed.retireAll(userId, 'password_reset');
        await this.sessions.revokeAllOf(userId);
      },
    );
  }

  async beforeApplicationShutdown(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }

  /** Resolves once the background work of every request so far has finished (tests wait on it). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }

  private async mailResetLink(email: string): Promise<void> {
    await setImmediate(); // after the answer is on its way: none of this work may delay (or time) it
    const account = await this.accounts.findByEmail(email);
    if (!account) return;
    await inTransaction(this.txHost, () => this.mailed.send(account.id, 'password_reset', account.email));
  }
}
