import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app.config';
import { PasswordHasher, PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from './passwords';

export interface AdminAccount {
  email: string;
  name: string;
  password: string;
}

/** What ensureAdmin found: a new account, an existing user made admin, or nothing to do. */
export type AdminOutcome = 'created' | 'promoted' | 'unchanged';

/**
 * Makes sure `email` is an admin, in one statement: creates the account (with this password) when
 * there is none, otherwise makes it an admin and leaves its password alone. Idempotent, race-free
 * (the unique index on lower(email) decides). Throws when the password breaks the length rules.
 */
export async function ensureAdmin(
  dataSource: DataSource,
  hasher: PasswordHasher,
  { email, name, password }: AdminAccount,
): Promise<AdminOutcome> {
  const length = [...password.normalize('NFKC')].length;
  if (length < PASSWORD_MIN_LENGTH || length > PASSWORD_MAX_LENGTH) {
    throw new Error(`the admin password must be ${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters long`);
  }
  const rows = await dataSource.query<{ created: boolean }[]>(
    `INSERT INTO users (name, email, password_hash, role) VALUES ($1, $2, $3, 'admin')
     ON CONFLICT ((lower(email))) DO UPDATE SET role = 'admin', version = users.version + 1, updated_at = now()
       WHERE users.role <> 'admin'
     RETURNING (xmax = 0) AS created`,
    [name, email, await hasher.hash(password)],
  );
  if (rows.length === 0) return 'unchanged';
  return rows[0].created ? 'created' : 'promoted';
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
    const outcome = await ensureAdmin(this.dataSource, this.hasher, admin);
    if (outcome !== 'unchanged') this.logger.log(`Admin ${admin.email}: ${outcome}`);
  }
}
