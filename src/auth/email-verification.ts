import { HttpStatus, Injectable } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { inTransaction } from '../database/transactions/transactions';
import { ProblemException } from '../http/problem';
import { emailChangedNotice } from './account-mails';
import { AccountsRepository } from './accounts.repository';
import type { Caller } from './caller';
import { MailedTokens } from './mailed-tokens';
import { addressKey, Throttles } from './throttles';

/**
 * Email verification: a mailed single-use token proves the user reads mail at their address.
 * Sign-up and an email change start it inside their own transaction (the token, the mail and the
 * user row commit together); POST /auth/verify-email finishes it.
 */
@Injectable()
export class EmailVerification {
  constructor(
    private readonly mailed: MailedTokens,
    private readonly accounts: AccountsRepository,
    private readonly throttles: Throttles,
    private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>,
  ) {}

  /** Issues a verification token for `email` and queues the mail carrying it, in the caller's transaction. */
  start(userId: number, email: string): Promise<void> {
    return this.mailed.send(userId, 'verify_email', email);
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
    await this.mailed.notify(emailChangedNotice(previous, email));
  }

  /** POST /auth/verify-email: marks the address the token was sent to verified. 400 naming `token` otherwise. */
  verify(token: string): Promise<void> {
    return this.mailed.redeem(
      token,
      'verify_email',
      () => Promise.resolve(undefined),
      (userId) => this.accounts.setEmailVerified(userId, true),
    );
  }

  /**
   * POST /auth/verify-email/resend: a new link for the caller's address unless it is verified
   * already; limited per address and per client (429) on counters of its own (Throttles.verification).
   */
  async resend(caller: Caller, client: string): Promise<void> {
    await inTransaction(this.txHost, async () => {
      const account = await this.accounts.findEmailForUpdate(caller.id);
      if (!account || account.emailVerified) return;
      await this.throttles.verification.reserve(addressKey(account.email), client);
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
