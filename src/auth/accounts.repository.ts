import { ConflictException, Inject, Injectable } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { DataSource, EntityManager } from 'typeorm';
import { sqlStateOf } from '../database/errors/database-errors';
import { NOW, sqlDialectOf } from '../database/dialects/sql-dialect';
import type { SqlDialect } from '../database/dialects/dialect';
import { SQL_DIALECT } from '../database/dialects/sql-dialect.module';
import type { Role } from '../users/entities/user.entity';

/** One dialect's statements on the identity columns of `users`. */
type Statements = {
  /**
   * The account an email names; binds (email). PostgreSQL: its unique expression index on lower(email);
   * portable: the stored generated column email_lower behind the same unique index name (binary
   * collation on MySQL, so the comparison folds case once, through lower(), and never accents).
   */
  byEmail: string;
  /** Binds (userId). */
  credentials: string;
  /** Binds (userId). */
  exists: string;
  /** Every admin in id order, locked, when `userId` is one (else none); binds (userId). */
  lockAdmins: string;
  /** Binds (userId); locks the row. */
  emailForUpdate: string;
  /** Binds (userId). */
  emailVerified: string;
  /** PostgreSQL binds (userId, verified); the portable text (verified, userId, verified). */
  setEmailVerified: string;
  /** Binds (passwordHash, userId). */
  setPasswordHash: string;
  /** Binds (userId). */
  promoteToAdmin: string;
  /** Binds (name, email, passwordHash). PostgreSQL answers the new id, or no row when the email is taken. */
  insertAdmin: string;
};

/**
 * The statements MySQL/MariaDB and SQLite share but for the clock (`now`, the dialect's current time
 * with milliseconds) and the locks, which each dialect's table spells out.
 */
function portableStatements(now: string): Omit<Statements, 'lockAdmins' | 'emailForUpdate'> {
  return {
    byEmail: 'SELECT id, email, role, password_hash AS "passwordHash" FROM users WHERE email_lower = lower(?)',
    credentials: 'SELECT email, password_hash AS "passwordHash" FROM users WHERE id = ?',
    exists: 'SELECT 1 FROM users WHERE id = ?',
    emailVerified: 'SELECT email_verified AS "emailVerified" FROM users WHERE id = ?',
    setEmailVerified: `UPDATE users SET email_verified = ?, version = version + 1, updated_at = ${now} WHERE id = ? AND email_verified <> ?`,
    setPasswordHash: `UPDATE users SET password_hash = ?, version = version + 1, updated_at = ${now} WHERE id = ?`,
    promoteToAdmin: `UPDATE users SET role = 'admin', version = version + 1, updated_at = ${now} WHERE id = ? AND role <> 'admin'`,
    insertAdmin: "INSERT INTO users (name, email, password_hash, role) VALUES (?, ?, ?, 'admin')",
  };
}

/** Which statements each dialect takes (see database/dialects/sql-dialect.ts). */
const SQL: Record<SqlDialect, Statements> = {
  postgres: {
    byEmail: 'SELECT id, email, role, password_hash AS "passwordHash" FROM users WHERE lower(email) = lower($1)',
    credentials: 'SELECT email, password_hash AS "passwordHash" FROM users WHERE id = $1',
    exists: 'SELECT 1 FROM users WHERE id = $1',
    lockAdmins:
      "SELECT id FROM users WHERE role = 'admin' AND EXISTS (SELECT 1 FROM users WHERE id = $1 AND role = 'admin') ORDER BY id FOR UPDATE",
    emailForUpdate: 'SELECT email, email_verified AS "emailVerified" FROM users WHERE id = $1 FOR UPDATE',
    emailVerified: 'SELECT email_verified AS "emailVerified" FROM users WHERE id = $1',
    setEmailVerified:
      'UPDATE users SET email_verified = $2, version = version + 1, updated_at = now() WHERE id = $1 AND email_verified <> $2',
    setPasswordHash: 'UPDATE users SET password_hash = $1, version = version + 1, updated_at = now() WHERE id = $2',
    promoteToAdmin:
      "UPDATE users SET role = 'admin', version = version + 1, updated_at = now() WHERE id = $1 AND role <> 'admin'",
    insertAdmin:
      "INSERT INTO users (name, email, password_hash, role) VALUES ($1, $2, $3, 'admin') ON CONFLICT ((lower(email))) DO NOTHING RETURNING id",
  },
  mysql: {
    ...portableStatements(NOW.mysql),
    lockAdmins:
      "SELECT id FROM users WHERE role = 'admin' AND EXISTS (SELECT 1 FROM users WHERE id = ? AND role = 'admin') ORDER BY id FOR UPDATE",
    emailForUpdate: 'SELECT email, email_verified AS "emailVerified" FROM users WHERE id = ? FOR UPDATE',
  },
  // No row locks: SQLite's single writer already serializes the transactions a lock would order.
  sqlite: {
    ...portableStatements(NOW.sqlite),
    lockAdmins:
      "SELECT id FROM users WHERE role = 'admin' AND EXISTS (SELECT 1 FROM users WHERE id = ? AND role = 'admin') ORDER BY id",
    emailForUpdate: 'SELECT email, email_verified AS "emailVerified" FROM users WHERE id = ?',
  },
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
 * this is the only other file that writes to `users`. One statements table per dialect (SQL), picked
 * once at construction. They run in the caller's transaction when one is open (`txHost.tx`), else on
 * the pool.
 */
@Injectable()
export class AccountsRepository {
  private readonly sql: Statements;

  constructor(
    @Inject(TransactionHost) private readonly txHost: { readonly tx: EntityManager },
    @Inject(SQL_DIALECT) private readonly dialect: SqlDialect,
  ) {
    this.sql = SQL[dialect];
  }

  /** The same statements outside dependency injection (startup's admin bootstrap, `npm run user:admin`). */
  static on(dataSource: DataSource): AccountsRepository {
    return new AccountsRepository({ tx: dataSource.manager }, sqlDialectOf(dataSource));
  }

  /** The account an email names (case-insensitively, as the unique index users_email_lower_key compares). */
  async findByEmail(email: string): Promise<Account | undefined> {
    const rows = await this.query<Account>(this.sql.byEmail, [email]);
    return rows[0];
  }

  /** The user's address and password hash (undefined for a user that does not exist). */
  async findCredentials(userId: number): Promise<Pick<Account, 'email' | 'passwordHash'> | undefined> {
    const rows = await this.query<Pick<Account, 'email' | 'passwordHash'>>(this.sql.credentials, [userId]);
    return rows[0];
  }

  /** Whether the user exists (a primary-key lookup: the access policy's 404). */
  async exists(userId: number): Promise<boolean> {
    return (await this.query(this.sql.exists, [userId])).length > 0;
  }

  /**
   * Refuses (409) to leave the service without an admin: called inside the transaction that demotes
   * or deletes `userId`. When that user is an admin, it locks every admin row (in id order) first, so
   * two admins demoting themselves at once queue, and the second sees it would be the last; for
   * anyone else it locks nothing, so ordinary deletes never wait on each other here. (SQLite has no
   * row locks: its single writer queues the two transactions instead.)
   */
  async assertAnotherAdminRemains(userId: number): Promise<void> {
    const admins = await this.query<{ id: number }>(this.sql.lockAdmins, [userId]);
    if (admins.length === 1 && admins[0].id === userId) {
      throw new ConflictException('The last admin cannot stop being one: make another user an admin first');
    }
  }

  /** The user's email and whether it is verified, locking the row for the rest of the transaction (none on SQLite). */
  async findEmailForUpdate(userId: number): Promise<{ email: string; emailVerified: boolean } | undefined> {
    const rows = await this.query<{ email: string; emailVerified: boolean | number }>(this.sql.emailForUpdate, [
      userId,
    ]);
    return rows[0] && { email: rows[0].email, emailVerified: Boolean(rows[0].emailVerified) };
  }

  /** Whether the user's address is verified (false for a user that does not exist). */
  async isEmailVerified(userId: number): Promise<boolean> {
    const rows = await this.query<{ emailVerified: boolean | number }>(this.sql.emailVerified, [userId]);
    return Boolean(rows[0]?.emailVerified);
  }

  /** Sets `email_verified`; bumps the version (the user's ETag changes) when it changed. */
  async setEmailVerified(userId: number, verified: boolean): Promise<void> {
    await this.query(
      this.sql.setEmailVerified,
      this.dialect === 'postgres' ? [userId, verified] : [verified, userId, verified],
    );
  }

  /** Stores a new password hash (a reset), bumping the version like any change to the user. */
  async setPasswordHash(userId: number, passwordHash: string): Promise<void> {
    await this.query(this.sql.setPasswordHash, [passwordHash, userId]);
  }

  /** Makes the user an admin (the admin bootstrap), bumping the version; nothing when it is one already. */
  async promoteToAdmin(userId: number): Promise<void> {
    await this.query(this.sql.promoteToAdmin, [userId]);
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
    if (this.dialect === 'postgres') {
      return (await this.query(this.sql.insertAdmin, [name, email, passwordHash])).length > 0;
    }
    try {
      await this.query(this.sql.insertAdmin, [name, email, passwordHash]);
      return true;
    } catch (error) {
      if (sqlStateOf(error) === '23505') return false;
      throw error;
    }
  }

  /** Runs one of this dialect's statements in the current transaction, or on its own. */
  private query<T = unknown>(sql: string, parameters: unknown[]): Promise<T[]> {
    return this.txHost.tx.query<T[]>(sql, parameters);
  }
}
