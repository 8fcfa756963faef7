import { Inject, Injectable } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { createHash, randomBytes } from 'node:crypto';
import type { SqlDialect } from '../database/dialects/dialect';
import { NOW } from '../database/dialects/sql-dialect';
import { SQL_DIALECT } from '../database/dialects/sql-dialect.module';
import { inTransaction } from '../database/transactions/transactions';
import { AccountToken, type AccountTokenPurpose } from './entities/account-token.entity';

/** A token as mailed: 32 random bytes, base64url (43 characters). */
export const ACCOUNT_TOKEN = /^[\w-]{43}$/;

/** SHA-256 of a mailed token: what `account_tokens` stores and is searched by. */
export function accountTokenHash(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/** One dialect's statements on `account_tokens`. */
type Statements = {
  /** The current time with milliseconds (see NOW), for the portable query-builder UPDATE. */
  now: string;
  /** Binds (hash, userId, purpose, email, ttlSeconds); the expiry is the database's clock plus ttlSeconds. */
  issue: string;
  /**
   * Binds (hash, purpose). Usable: this purpose, not used, not expired, and mailed to the address the
   * user has now.
   */
  isUsable: string;
  /** PostgreSQL consume(): marks the token used and returns its user, in one statement; binds (hash, purpose). */
  consume: string;
  /** Portable consume(), after its UPDATE: the token's user; binds (hash). */
  userOf: string;
  /** Binds (userId, purpose). */
  retireAll: string;
};

/**
 * The statements MySQL/MariaDB and SQLite share but for the clock: `now` is the dialect's current time
 * with milliseconds, `secondsLater` "now plus `?` seconds".
 */
function portableStatements(now: string, secondsLater: string): Statements {
  return {
    now,
    issue: `INSERT INTO account_tokens (token_hash, user_id, purpose, email, expires_at) VALUES (?, ?, ?, ?, ${secondsLater})`,
    isUsable:
      'SELECT 1 AS usable FROM account_tokens t WHERE t.token_hash = ? AND ' +
      `t.purpose = ? AND t.used_at IS NULL AND t.expires_at > ${now} AND t.email = (SELECT u.email FROM users u WHERE u.id = t.user_id)`,
    consume: '', // an UPDATE through the query builder, then userOf (see consume())
    userOf: 'SELECT user_id AS "userId" FROM account_tokens WHERE token_hash = ?',
    retireAll: `UPDATE account_tokens SET used_at = ${now} WHERE user_id = ? AND purpose = ? AND used_at IS NULL`,
  };
}

/** PostgreSQL's usable condition (`t` is account_tokens), shared by isUsable and consume. */
const USABLE_PG =
  't.purpose = $2 AND t.used_at IS NULL AND t.expires_at > now() AND t.email = (SELECT u.email FROM users u WHERE u.id = t.user_id)';

/** Which statements each dialect takes (see database/dialects/sql-dialect.ts). */
const SQL: Record<SqlDialect, Statements> = {
  postgres: {
    now: NOW.postgres,
    // bench/floor.ts sends the same text.
    issue:
      'INSERT INTO account_tokens (token_hash, user_id, purpose, email, expires_at) VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))',
    isUsable: `SELECT 1 AS usable FROM account_tokens t WHERE t.token_hash = $1 AND ${USABLE_PG}`,
    consume:
      `WITH used AS (UPDATE account_tokens t SET used_at = now() WHERE t.token_hash = $1 AND ${USABLE_PG} RETURNING t.user_id) ` +
      'SELECT user_id AS "userId" FROM used',
    userOf: '', // consume() is one statement on PostgreSQL
    retireAll: 'UPDATE account_tokens SET used_at = now() WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL',
  },
  mysql: portableStatements(NOW.mysql, 'DATE_ADD(CURRENT_TIMESTAMP(3), INTERVAL ? SECOND)'),
  sqlite: portableStatements(NOW.sqlite, "strftime('%Y-%m-%d %H:%M:%f', 'now', '+' || ? || ' seconds')"),
};

/**
 * All SQL on `account_tokens`. Statements run in the caller's transaction when there is one, so a
 * token and the mail that carries it commit together.
 */
@Injectable()
export class AccountTokensRepository {
  private readonly sql: Statements;

  constructor(
    private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>,
    @Inject(SQL_DIALECT) private readonly dialect: SqlDialect,
  ) {
    this.sql = SQL[dialect];
  }

  /**
   * Stores a new token for `userId`, mailed to `email`, valid `ttlSeconds` by the database's clock;
   * returns the token itself (never stored). One plain INSERT (bench/floor.ts sends the same).
   */
  async issue(userId: number, purpose: AccountTokenPurpose, email: string, ttlSeconds: number): Promise<string> {
    const token = randomBytes(32).toString('base64url');
    await this.query(this.sql.issue, [accountTokenHash(token), userId, purpose, email, ttlSeconds]);
    return token;
  }

  /** True when `hash` names a usable token for `purpose` (a check before costly work; consume decides). */
  async isUsable(hash: Buffer, purpose: AccountTokenPurpose): Promise<boolean> {
    const rows = await this.query(this.sql.isUsable, [hash, purpose]);
    return rows.length > 0;
  }

  /**
   * Uses the token, atomically: marks it used only if it is usable, and returns its user's id, else
   * undefined (unknown, forged, used, expired, or the user's email changed since). Of two requests
   * with one token exactly one gets the id: the second UPDATE re-checks `used_at IS NULL`.
   */
  async consume(hash: Buffer, purpose: AccountTokenPurpose): Promise<number | undefined> {
    if (this.dialect === 'postgres') {
      const rows = await this.query<{ userId: number }>(this.sql.consume, [hash, purpose]);
      return rows[0]?.userId;
    }
    return inTransaction(this.txHost, async () => {
      const tx = this.txHost.tx;
      // The query builder reports the rows an UPDATE changed on MySQL and SQLite; no alias in an UPDATE there.
      const { affected } = await tx
        .createQueryBuilder()
        .update(AccountToken)
        .set({ usedAt: () => this.sql.now })
        .where(
          `token_hash = :hash AND purpose = :purpose AND used_at IS NULL AND expires_at > ${this.sql.now} ` +
            'AND email = (SELECT u.email FROM users u WHERE u.id = account_tokens.user_id)',
          { hash, purpose },
        )
        .execute();
      if (!affected) return undefined;
      const [row] = await this.query<{ userId: number }>(this.sql.userOf, [hash]);
      return Number(row.userId);
    });
  }

  /** Every unused token of the user for `purpose` stops working (a reset used one: the others go too). */
  async retireAll(userId: number, purpose: AccountTokenPurpose): Promise<void> {
    await this.query(this.sql.retireAll, [userId, purpose]);
  }

  /** Runs one of this dialect's statements in the current transaction, or on its own. */
  private query<T = unknown>(sql: string, parameters: unknown[]): Promise<T[]> {
    return this.txHost.tx.query<T[]>(sql, parameters);
  }
}
