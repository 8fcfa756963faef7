import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app.config';
import { sqlStateOf } from '../database/errors/database-errors';
import { boundFor, nowWithMilliseconds, sqlFlavourOf } from '../database/dialects/sql-dialect';
import { PasswordHasher, PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from './passwords';

export interface AdminAccount {
  email: string;
  name: string;
  password: string;
}

/**
 * What ensureAdmin found: a new account, an existing user made admin, nothing to do, or an existing
 * user left alone because it did not prove to be the operator's (see `promote`).
 */
export type AdminOutcome = 'created' | 'promoted' | 'unchanged' | 'refused';

/**
 * Makes sure `email` is an admin: creates the account (with this password) when there is none;
 * an existing admin is left as it is. An existing ordinary user is promoted, its password kept, when
 * `promote` is 'always' (`npm run user:admin`: the operator names the account on purpose), or with
 * 'if-password-matches' only when `password` is its password (startup's ADMIN_EMAIL/ADMIN_PASSWORD:
 * otherwise whoever signed up with that email first would become admin with their own password).
 * Idempotent; the unique index on lower(email) decides races. Throws when the password breaks the
 * length rules.
 */
export async function ensureAdmin(
  dataSource: DataSource,
  hasher: PasswordHasher,
  { email, name, password }: AdminAccount,
  promote: 'always' | 'if-password-matches',
): Promise<AdminOutcome> {
  const length = [...password.normalize('NFKC')].length;
  if (length < PASSWORD_MIN_LENGTH || length > PASSWORD_MAX_LENGTH) {
    throw new Error(`the admin password must be ${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters long`);
  }
  if (await insertAdmin(dataSource, { email, name, passwordHash: await hasher.hash(password) })) return 'created';
  const existing = await findAccount(dataSource, email);
  if (!existing) return ensureAdmin(dataSource, hasher, { email, name, password }, promote); // deleted meanwhile
  if (existing.role === 'admin') return 'unchanged';
  if (promote === 'if-password-matches' && !(await hasher.verify(existing.passwordHash, password))) return 'refused';
  await makeAdmin(dataSource, existing.id);
  return 'promoted';
}

/**
 * `npm run user:admin` for an account that exists: makes it an admin without any password (the
 * operator names it on purpose; its own password is kept). 'missing' when there is no such account.
 */
export async function promoteExisting(
  dataSource: DataSource,
  email: string,
): Promise<'promoted' | 'unchanged' | 'missing'> {
  const existing = await findAccount(dataSource, email);
  if (!existing) return 'missing';
  if (existing.role === 'admin') return 'unchanged';
  await makeAdmin(dataSource, existing.id);
  return 'promoted';
}

/** The account with this email (compared as the unique index does, lower-cased), if any. */
async function findAccount(
  dataSource: DataSource,
  email: string,
): Promise<{ id: number; role: string; passwordHash: string | null } | undefined> {
  const byEmail =
    sqlFlavourOf(dataSource) === 'postgres'
      ? 'SELECT id, role, password_hash AS "passwordHash" FROM users WHERE lower(email) = lower($1)'
      : 'SELECT id, role, password_hash AS "passwordHash" FROM users WHERE email_lower = lower(?)';
  const [existing] = await dataSource.query<{ id: number; role: string; passwordHash: string | null }[]>(byEmail, [
    email,
  ]);
  return existing;
}

async function makeAdmin(dataSource: DataSource, id: number): Promise<void> {
  await dataSource.query(
    ...boundFor(
      dataSource,
      `UPDATE users SET role = 'admin', version = version + 1, updated_at = ${nowWithMilliseconds(dataSource)} WHERE id = $1 AND role <> 'admin'`,
      [id],
    ),
  );
}

/**
 * Inserts the admin account; false when its email is taken (users_email_lower_key). PostgreSQL says so
 * with ON CONFLICT … DO NOTHING RETURNING; the other dialects by the unique violation, caught (one
 * statement, no transaction around it, so nothing else is rolled back).
 */
async function insertAdmin(
  dataSource: DataSource,
  { email, name, passwordHash }: { email: string; name: string; passwordHash: string },
): Promise<boolean> {
  if (sqlFlavourOf(dataSource) === 'postgres') {
    const created = await dataSource.query<unknown[]>(
      `INSERT INTO users (name, email, password_hash, role) VALUES ($1, $2, $3, 'admin')
       ON CONFLICT ((lower(email))) DO NOTHING RETURNING id`,
      [name, email, passwordHash],
    );
    return created.length > 0;
  }
  try {
    await dataSource.query(`INSERT INTO users (name, email, password_hash, role) VALUES (?, ?, ?, 'admin')`, [
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

/** ADMIN_EMAIL + ADMIN_PASSWORD at startup: that account exists as an admin before requests are served. */
@Injectable()
export class AdminBootstrap implements OnApplicationBootstrap {
  private readonly logger = new Logger(AdminBootstrap.name);

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly hasher: PasswordHasher,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const admin = this.config.auth.admin;
    if (!admin) return;
    const outcome = await ensureAdmin(this.dataSource, this.hasher, admin, 'if-password-matches');
    if (outcome === 'refused') {
      this.logger.warn(
        `Admin ${admin.email}: not promoted: that account exists and ADMIN_PASSWORD is not its password. ` +
          'If it is yours, promote it with npm run user:admin.',
      );
    } else if (outcome !== 'unchanged') this.logger.log(`Admin ${admin.email}: ${outcome}`);
  }
}
