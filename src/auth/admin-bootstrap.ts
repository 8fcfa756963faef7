import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app.config';
import { AccountsRepository } from './accounts.repository';
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
  const accounts = AccountsRepository.on(dataSource);
  if (await accounts.insertAdmin({ email, name, passwordHash: await hasher.hash(password) })) return 'created';
  const existing = await accounts.findByEmail(email);
  if (!existing) return ensureAdmin(dataSource, hasher, { email, name, password }, promote); // deleted meanwhile
  if (existing.role === 'admin') return 'unchanged';
  if (promote === 'if-password-matches' && !(await hasher.verify(existing.passwordHash, password))) return 'refused';
  await accounts.promoteToAdmin(existing.id);
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
  const accounts = AccountsRepository.on(dataSource);
  const existing = await accounts.findByEmail(email);
  if (!existing) return 'missing';
  if (existing.role === 'admin') return 'unchanged';
  await accounts.promoteToAdmin(existing.id);
  return 'promoted';
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
