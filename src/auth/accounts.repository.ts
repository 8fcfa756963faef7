import { ConflictException, Injectable } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import {
  boundFor,
  forUpdate,
  nowWithMilliseconds,
  type SqlFlavour,
  sqlFlavourOf,
} from '../database/dialects/sql-dialect';

/**
 * The account a login names. PostgreSQL: its unique expression index on lower(email); portable: the
 * stored generated column email_lower behind the same unique index name (binary collation on MySQL,
 * so the comparison folds case once, through lower(), and never accents).
 */
const ADDRESS_BY_EMAIL: Record<SqlFlavour, string> = {
  postgres: 'SELECT id, email FROM users WHERE lower(email) = lower($1)',
  portable: 'SELECT id, email FROM users WHERE email_lower = lower(?)',
};

const BY_EMAIL: Record<SqlFlavour, string> = {
  postgres: 'SELECT id, password_hash AS "passwordHash" FROM users WHERE lower(email) = lower($1)',
  portable: 'SELECT id, password_hash AS "passwordHash" FROM users WHERE email_lower = lower(?)',
};

/**
 * The SQL identity needs on `users`: credentials by email, and the admins' lock. Statements are
 * PostgreSQL's; the other dialects take them with `?` placeholders (withQuestionMarks), except BY_EMAIL.
 */
@Injectable()
export class AccountsRepository {
  constructor(private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>) {}

  /** The account a login names, found by the case-insensitive unique index users_email_lower_key. */
  async findByEmail(email: string): Promise<{ id: number; passwordHash: string | null } | undefined> {
    const rows = await this.txHost.tx.query<{ id: number; passwordHash: string | null }[]>(
      BY_EMAIL[sqlFlavourOf(this.txHost.tx)],
      [email],
    );
    return rows[0];
  }

  async findPasswordHash(userId: number): Promise<string | null | undefined> {
    const rows = await this.query<{ passwordHash: string | null }>(
      'SELECT password_hash AS "passwordHash" FROM users WHERE id = $1',
      [userId],
    );
    return rows[0]?.passwordHash;
  }

  /**
   * Refuses (409) to leave the service without an admin: called inside the transaction that demotes
   * or deletes `userId`. When that user is an admin, it locks every admin row (in id order) first, so
   * two admins demoting themselves at once queue, and the second sees it would be the last; for
   * anyone else it locks nothing, so ordinary deletes never wait on each other here. (SQLite has no
   * row locks: its single writer queues the two transactions instead.)
   */
  async assertAnotherAdminRemains(userId: number): Promise<void> {
    const admins = await this.query<{ id: number }>(
      `SELECT id FROM users WHERE role = 'admin' AND EXISTS (SELECT 1 FROM users WHERE id = $1 AND role = 'admin') ORDER BY id${forUpdate(this.txHost.tx)}`,
      [userId],
    );
    if (admins.length === 1 && admins[0].id === userId) {
      throw new ConflictException('The last admin cannot stop being one: make another user an admin first');
    }
  }

  /** The account an email names (case-insensitively, as login) with the address as stored: where its mail goes. */
  async findAddress(email: string): Promise<{ id: number; email: string } | undefined> {
    const rows = await this.txHost.tx.query<{ id: number; email: string }[]>(
      ADDRESS_BY_EMAIL[sqlFlavourOf(this.txHost.tx)],
      [email],
    );
    return rows[0];
  }

  /** The user's email and whether it is verified, locking the row for the rest of the transaction (none on SQLite). */
  async findEmailForUpdate(userId: number): Promise<{ email: string; emailVerified: boolean } | undefined> {
    const rows = await this.query<{ email: string; emailVerified: boolean | number }>(
      `SELECT email, email_verified AS "emailVerified" FROM users WHERE id = $1${forUpdate(this.txHost.tx)}`,
      [userId],
    );
    return rows[0] && { email: rows[0].email, emailVerified: Boolean(rows[0].emailVerified) };
  }

  /** Whether the user's address is verified (false for a user that does not exist). */
  async isEmailVerified(userId: number): Promise<boolean> {
    const rows = await this.query<{ emailVerified: boolean | number }>(
      'SELECT email_verified AS "emailVerified" FROM users WHERE id = $1',
      [userId],
    );
    return Boolean(rows[0]?.emailVerified);
  }

  /** Sets `email_verified`; bumps the version (the user's ETag changes) when it changed. */
  async setEmailVerified(userId: number, verified: boolean): Promise<void> {
    await this.query(
      `UPDATE users SET email_verified = $2, version = version + 1, updated_at = ${nowWithMilliseconds(this.txHost.tx)} WHERE id = $1 AND email_verified <> $2`,
      [userId, verified],
    );
  }

  /** Stores a new password hash (a reset), bumping the version like any change to the user. */
  async setPasswordHash(userId: number, passwordHash: string): Promise<void> {
    await this.query(
      `UPDATE users SET password_hash = $2, version = version + 1, updated_at = ${nowWithMilliseconds(this.txHost.tx)} WHERE id = $1`,
      [userId, passwordHash],
    );
  }

  private query<T>(sql: string, parameters: unknown[]): Promise<T[]> {
    return this.txHost.tx.query<T[]>(...boundFor(this.txHost.tx, sql, parameters));
  }
}
