import { Inject, Injectable } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { createHash, randomBytes } from 'node:crypto';
import type { SqlDialect } from '../database/dialects/dialect';
import { boundFor, nowWithMilliseconds } from '../database/dialects/sql-dialect';
import { SQL_DIALECT } from '../database/dialects/sql-dialect.module';
import { inTransaction } from '../database/transactions/transactions';
import { AccountToken, type AccountTokenPurpose } from './entities/account-token.entity';

/** A token as mailed: 32 random bytes, base64url (43 characters). */
export const ACCOUNT_TOKEN = /^[\w-]{43}$/;

/** SHA-256 of a mailed token: what `account_tokens` stores and is searched by. */
export function accountTokenHash(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/**
 * The condition that makes a token usable: this purpose, not used, not expired, and mailed to the
 * address the user has now (`t` is account_tokens, NOW the dialect's clock).
 */
const USABLE =
  't.purpose = $2 AND t.used_at IS NULL AND t.expires_at > NOW AND t.email = (SELECT u.email FROM users u WHERE u.id = t.user_id)';

/**
 * All SQL on `account_tokens`. Statements run in the caller's transaction when there is one, so a
 * token and the mail that carries it commit together.
 */
@Injectable()
export class AccountTokensRepository {
  constructor(
    private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>,
    @Inject(SQL_DIALECT) private readonly dialect: SqlDialect,
  ) {}

  /**
   * Stores a new token for `userId`, mailed to `email`, valid `ttlSeconds` by the database's clock;
   * returns the token itself (never stored). One plain INSERT (bench/floor.ts sends the same).
   */
  async issue(userId: number, purpose: AccountTokenPurpose, email: string, ttlSeconds: number): Promise<string> {
    const token = randomBytes(32).toString('base64url');
    const dialect = this.dialect;
    const expires = {
      postgres: 'now() + make_interval(secs => $5)',
      mysql: 'DATE_ADD(CURRENT_TIMESTAMP(3), INTERVAL $5 SECOND)',
      sqlite: "strftime('%Y-%m-%d %H:%M:%f', 'now', $5)",
    }[dialect];
    await this.query(
      `INSERT INTO account_tokens (token_hash, user_id, purpose, email, expires_at) VALUES ($1, $2, $3, $4, ${expires})`,
      [accountTokenHash(token), userId, purpose, email, dialect === 'sqlite' ? `+${ttlSeconds} seconds` : ttlSeconds],
    );
    return token;
  }

  /** True when `hash` names a usable token for `purpose` (a check before costly work; consume decides). */
  async isUsable(hash: Buffer, purpose: AccountTokenPurpose): Promise<boolean> {
    const rows = await this.query(`SELECT 1 AS usable FROM account_tokens t WHERE t.token_hash = $1 AND ${USABLE}`, [
      hash,
      purpose,
    ]);
    return rows.length > 0;
  }

  /**
   * Uses the token, atomically: marks it used only if it is usable, and returns its user's id, else
   * undefined (unknown, forged, used, expired, or the user's email changed since). Of two requests
   * with one token exactly one gets the id: the second UPDATE re-checks `used_at IS NULL`.
   */
  async consume(hash: Buffer, purpose: AccountTokenPurpose): Promise<number | undefined> {
    if (this.dialect === 'postgres') {
      const rows = await this.query<{ userId: number }>(
        `WITH used AS (UPDATE account_tokens t SET used_at = now() WHERE t.token_hash = $1 AND ${USABLE} RETURNING t.user_id) ` +
          'SELECT user_id AS "userId" FROM used',
        [hash, purpose],
      );
      return rows[0]?.userId;
    }
    return inTransaction(this.txHost, async () => {
      const tx = this.txHost.tx;
      // The query builder reports the rows an UPDATE changed on MySQL and SQLite; no alias in an UPDATE there.
      const { affected } = await tx
        .createQueryBuilder()
        .update(AccountToken)
        .set({ usedAt: () => nowWithMilliseconds(tx) })
        .where(
          `token_hash = :hash AND purpose = :purpose AND used_at IS NULL AND expires_at > ${nowWithMilliseconds(tx)} ` +
            'AND email = (SELECT u.email FROM users u WHERE u.id = account_tokens.user_id)',
          { hash, purpose },
        )
        .execute();
      if (!affected) return undefined;
      const [row] = await this.query<{ userId: number }>(
        'SELECT user_id AS "userId" FROM account_tokens WHERE token_hash = $1',
        [hash],
      );
      return Number(row.userId);
    });
  }

  /** Every unused token of the user for `purpose` stops working (a reset used one: the others go too). */
  async retireAll(userId: number, purpose: AccountTokenPurpose): Promise<void> {
    await this.query(
      'UPDATE account_tokens SET used_at = NOW WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL',
      [userId, purpose],
    );
  }

  /** Runs `sql` (NOW as the dialect's clock, `?` placeholders outside PostgreSQL) in the current transaction. */
  private query<T = unknown>(sql: string, parameters: unknown[]): Promise<T[]> {
    const tx = this.txHost.tx;
    return tx.query<T[]>(...boundFor(tx, sql.replaceAll('NOW', nowWithMilliseconds(tx)), parameters));
  }
}
