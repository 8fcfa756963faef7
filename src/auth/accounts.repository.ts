import { ConflictException, Inject, Injectable } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { DataSource, EntityManager } from 'typeorm';
import { sqlStateOf } from '../database/errors/database-errors';
import { boundFor, forUpdate, nowWithMilliseconds, sqlDialectOf } from '../database/dialects/sql-dialect';
import type { SqlDialect } from '../database/dialects/dialect';
import { SQL_DIALECT } from '../database/dialects/sql-dialect.module';
import type { Role } from '../users/entities/user.entity';

/**
 * The account an email names. PostgreSQL: its unique expression index on lower(email); portable: the
 * stored generated column email_lower behind the same unique index name (binary collation on MySQL,
 * so the comparison folds case once, through lower(), and never accents).
 */
const BY_EMAIL_PORTABLE =
  'SELECT id, email, role, password_hash AS "passwordHash" FROM users WHERE email_lower = lower(?)';
const BY_EMAIL: Record<SqlDialect, string> = {
  postgres: 'SELECT id, email, role, password_hash AS "passwordHash" FROM users WHERE lower(email) = lower($1)',
  mysql: BY_EMAIL_PORTABLE,
  sqlite: BY_EMAIL_PORTABLE,
};

/** An account as identity sees it: who it is, where its mail goes, its role and credentials. */
export interface Account {
  id: number;
  email: string;
  role: Role;
  passwordHash: string | null;
}

/**
 * The SQL identity runs on the `users` table's identity columns — email, password_hash, role,
 * email_verified — for login, password reset, email verification, identity changes, the admins' lock
 * and the admin bootstrap (ADR 0016). The users feature keeps the row as a resource (UsersRepository);
 * this is the only other file that writes to `users`. Statements are PostgreSQL's; the other dialects
 * take them with `?` placeholders (withQuestionMarks), except BY_EMAIL. They run in the caller's
 * transaction when one is open (`txHost.tx`), else on the pool.
 */
@Injectable()
export class AccountsRepository {
  constructor(
    @Inject(TransactionHost) private readonly txHost: { readonly tx: EntityManager },
    @Inject(SQL_DIALECT) private readonly dialect: SqlDialect,
  ) {}

  /** The same statements outside dependency injection (startup's admin bootstrap, `npm run user:admin`). */
  static on(dataSource: DataSource): AccountsRepository {
    return new AccountsRepository({ tx: dataSource.manager }, sqlDialectOf(dataSource));
  }

  /** The account an email names (case-insensitively, as the unique index users_email_lower_key compares). */
  async findByEmail(email: string): Promise<Account | undefined> {
    const rows = await this.txHost.tx.query<Account[]>(BY_EMAIL[this.dialect], [email]);
    return rows[0];
  }

  /** The user's address and password hash (undefined for a user that does not exist). */
  async findCredentials(userId: number): Promise<Pick<Account, 'email' | 'passwordHash'> | undefined> {
    const rows = await this.query<Pick<Account, 'email' | 'passwordHash'>>(
      'SELECT email, password_hash AS "passwordHash" FROM users WHERE id = $1',
      [userId],
    );
    return rows[0];
  }

  /** Whether the user exists (a primary-key lookup: the access policy's 404). */
  async exists(userId: number): Promise<boolean> {
    return (await this.query('SELECT 1 FROM users WHERE id = $1', [userId])).length > 0;
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

  /** Makes the user an admin (the admin bootstrap), bumping the version; nothing when it is one already. */
  async promoteToAdmin(userId: number): Promise<void> {
    await this.query(
      `UPDATE users SET role = 'admin', version = version + 1, updated_at = ${nowWithMilliseconds(this.txHost.tx)} WHERE id = $1 AND role <> 'admin'`,
      [userId],
    );
  }

  /**
   * Inserts an admin account; false when its email is taken (users_email_lower_key). PostgreSQL says so
   * with ON CONFLICT … DO NOTHING RETURNING; the other dialects by the unique violation, caught (one
   * statement, no transaction around it, so nothing else is rolled back).
   */
  async insertAdmin({
    email,
    name,
    passwordHash,
  }: {
    email: string;
    name: string;
    passwordHash: string;
  }): Promise<boolean> {
    const tx = this.txHost.tx;
    if (this.dialect === 'postgres') {
      const created = await tx.query<unknown[]>(
        `INSERT INTO users (name, email, password_hash, role) VALUES ($1, $2, $3, 'admin')
         ON CONFLICT ((lower(email))) DO NOTHING RETURNING id`,
        [name, email, passwordHash],
      );
      return created.length > 0;
    }
    try {
      await tx.query(`INSERT INTO users (name, email, password_hash, role) VALUES (?, ?, ?, 'admin')`, [
        name,
        email,
        passwordHash,
      ]);
      return true;
    } catch (error) {
      if (sqlStateOf(error) === '23505') return false;
      throw error;
    }
  }

  private query<T>(sql: string, parameters: unknown[]): Promise<T[]> {
    return this.txHost.tx.query<T[]>(...boundFor(this.txHost.tx, sql, parameters));
  }
}
