import { HttpStatus, Inject, Injectable } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app.config';
import { inTransaction } from '../database/transactions/transactions';
import { ProblemException, validationProblem } from '../http/problem';
import { MailOutbox } from '../mail/mail-outbox';
import { AccountMailThrottle } from './account-mail-throttle';
import { emailChangedNotice, verificationMail } from './account-mails';
import { ACCOUNT_TOKEN, accountTokenHash, AccountTokensRepository } from './account-tokens.repository';
import { AccountsRepository } from './accounts.repository';
import type { Caller } from './caller';

/** The answer to an expired, used, forged or malformed mailed token: 400 naming `token`. */
export function unusableToken(): ProblemException {
  return validationProblem([{ field: 'token', messages: ['token is invalid, expired or already used'] }]);
}

/**
 * Email verification: a mailed single-use token proves the user reads mail at their address.
 * Sign-up and an email change start it inside their own transaction (the token, the mail and the
 * user row commit together); POST /auth/verify-email finishes it.
 */
@Injectable()
export class EmailVerification {
  constructor(
    private readonly tokens: AccountTokensRepository,
    private readonly accounts: AccountsRepository,
    private readonly mail: MailOutbox,
    private readonly throttle: AccountMailThrottle,
    private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Issues a verification token for `email` and queues the mail carrying it, in the caller's transaction. */
  async start(userId: number, email: string): Promise<void> {
    const ttl = this.config.auth.accounts.verificationTtlSeconds;
    const token = await this.tokens.issue(userId, 'verify_email', email, ttl);
    await this.mail.queue(verificationMail(email, this.config.mail.publicUrl, token, ttl));
  }

  /**
   * After `UPDATE users SET email` in the caller's transaction: the new address is unverified until
   * its own link is used (tokens for the old one stop working: they are bound to it), and the old
   * address is told. A change of letter case only is no new address: nothing happens.
   */
  async emailChanged(userId: number, previous: string, email: string): Promise<void> {
    if (previous.toLowerCase() === email.toLowerCase()) return;
    await this.accounts.setEmailVerified(userId, false);
    await this.start(userId, email);
    await this.mail.queue(emailChangedNotice(previous, email));
  }

  /** POST /auth/verify-email: marks the address the token was sent to verified. 400 naming `token` otherwise. */
  async verify(token: string): Promise<void> {
    if (!ACCOUNT_TOKEN.test(token)) throw unusableToken();
    await inTransaction(this.txHost, async () => {
      const userId = await this.tokens.consume(accountTokenHash(token), 'verify_email');
      if (userId === undefined) throw unusableToken();
      await this.accounts.setEmailVerified(userId, true);
    });
  }

  /**
   * POST /auth/verify-email/resend: a new link for the caller's address unless it is verified
   * already; limited like password resets (per address and client, 429).
   */
  async resend(caller: Caller, client: string): Promise<void> {
    await inTransaction(this.txHost, async () => {
      const account = await this.accounts.findEmailForUpdate(caller.id);
      if (!account || account.emailVerified) return;
      await this.throttle.spend(account.email, client);
      await this.start(caller.id, account.email);
    });
  }

  /** 403 unless the caller's address is verified (UNVERIFIED_MAY_WRITE=false, see AuthGuard). */
  async assertVerified(caller: Caller): Promise<void> {
    if (await this.accounts.isEmailVerified(caller.id)) return;
    throw new ProblemException(
      HttpStatus.FORBIDDEN,
      'Verify your email address first: follow the link mailed to you (POST /auth/verify-email/resend sends a new one)',
    );
  }
}
