import { Inject, Injectable } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app.config';
import { inTransaction } from '../database/transactions/transactions';
import { validationProblem, type ProblemException } from '../http/problem';
import type { MailToSend } from '../mail/mail-outbox.repository';
import { MailOutbox } from '../mail/mail-outbox';
import { passwordResetMail, verificationMail } from './account-mails';
import { ACCOUNT_TOKEN, accountTokenHash, AccountTokensRepository } from './account-tokens.repository';
import type { AccountTokenPurpose } from './entities/account-token.entity';

/** The answer to an expired, used, forged or malformed mailed token: 400 naming `token`. */
export function unusableToken(): ProblemException {
  return validationProblem([{ field: 'token', messages: ['token is invalid, expired or already used'] }]);
}

/** Per purpose: how long its token lives (seconds, from the config) and the mail that carries it. */
const PURPOSES: Record<
  AccountTokenPurpose,
  { ttlSeconds: (config: AppConfig) => number; mail: typeof verificationMail }
> = {
  verify_email: { ttlSeconds: (config) => config.auth.accounts.verificationTtlSeconds, mail: verificationMail },
  password_reset: { ttlSeconds: (config) => config.auth.accounts.resetTtlSeconds, mail: passwordResetMail },
};

/**
 * The single-use tokens the account mails carry (email verification, password reset), one
 * implementation for both: `send` stores a token (hashed) and queues its mail in the caller's
 * transaction; `redeem` uses one up and applies what it proves in one transaction.
 */
@Injectable()
export class MailedTokens {
  constructor(
    private readonly tokens: AccountTokensRepository,
    private readonly mail: MailOutbox,
    private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Issues a `purpose` token for `userId`, bound to `email`, and queues the mail carrying it to `email`. */
  async send(userId: number, purpose: AccountTokenPurpose, email: string): Promise<void> {
    const { ttlSeconds, mail } = PURPOSES[purpose];
    const ttl = ttlSeconds(this.config);
    const token = await this.tokens.issue(userId, purpose, email, ttl);
    await this.mail.queue(mail(email, this.config.mail.publicUrl, token, ttl));
  }

  /**
   * Uses up `token` for `purpose` and runs `apply(userId, prepared)` in the same transaction. 400
   * naming `token` when it is malformed, forged, expired, used, or mailed to an address the user no
   * longer has. `prepare` (e.g. hashing a new password) runs before the transaction and only for a
   * token that looks usable, so forged tokens cost no such work.
   */
  async redeem<T>(
    token: string,
    purpose: AccountTokenPurpose,
    prepare: () => Promise<T>,
    apply: (userId: number, prepared: T) => Promise<void>,
  ): Promise<void> {
    if (!ACCOUNT_TOKEN.test(token)) throw unusableToken();
    const hash = accountTokenHash(token);
    if (!(await this.tokens.isUsable(hash, purpose))) throw unusableToken();
    const prepared = await prepare();
    await inTransaction(this.txHost, async () => {
      const userId = await this.tokens.consume(hash, purpose);
      if (userId === undefined) throw unusableToken();
      await apply(userId, prepared);
    });
  }

  /** Every unused `purpose` token of the user stops working. */
  retireAll(userId: number, purpose: AccountTokenPurpose): Promise<void> {
    return this.tokens.retireAll(userId, purpose);
  }

  /** Queues a mail without a token (e.g. the notice to an old address), in the caller's transaction. */
  notify(mail: MailToSend): Promise<void> {
    return this.mail.queue(mail);
  }
}
