import { ConflictException, Injectable } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { boundFor, forUpdate, type SqlFlavour, sqlFlavourOf } from '../db/sql-dialect';

/**
 * The account a login names. PostgreSQL: its unique expression index on lower(email); portable: the
 * stored generated column email_lower behind the same unique index name (binary collation on MySQL,
 * so the comparison folds case once, through lower(), and never accents).
 */
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

  private query<T>(sql: string, parameters: unknown[]): Promise<T[]> {
    return this.txHost.tx.query<T[]>(...boundFor(this.txHost.tx, sql, parameters));
  }
}
