import { join } from 'node:path';
import { getMetadataArgsStorage } from 'typeorm';
import type { ColumnMetadataArgs } from 'typeorm/metadata-args/ColumnMetadataArgs';
import { User } from '../../users/entities/user.entity';
import { entities } from '../entities';
import { DialectError, type SqlDialect } from '../../config/database-url';
import { SQLITE_NOW } from './sqlite';

// The URL → dialect parser lives in config/ (validation uses it too); the database layer re-exports it.
export { DIALECTS, DialectError, dialectOf, type SqlDialect } from '../../config/database-url';

/** The npm package TypeORM needs for each dialect; only `pg` is a dependency, the others come from `npm run drivers`. */
export const DRIVER_PACKAGES: Record<SqlDialect, string> = {
  postgres: 'pg',
  mysql: 'mysql2',
  sqlite: 'better-sqlite3',
};

/**
 * The dialect's driver package, loaded (`require`). Throws DialectError, one line naming the fix,
 * when it is not installed: mysql2 and better-sqlite3 are optional (`npm run drivers`).
 */
export function loadDriver<T = unknown>(dialect: SqlDialect): T {
  const name = DRIVER_PACKAGES[dialect];
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(name) as T;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw error;
    throw new DialectError(
      `DATABASE_URL is a ${dialect} URL but the ${name} driver is not installed: run npm run drivers`,
    );
  }
}

/** The folder of the dialect's migrations (`src/database/migrations/<dialect>`, or its build output). */
export function migrationsFolder(dialect: SqlDialect): string {
  return join(__dirname, '..', 'migrations', dialect);
}

/**
 * The entities are written in PostgreSQL's terms. For another dialect, their column types (and
 * identity generation) are rewritten here, once, in TypeORM's metadata arguments before a DataSource
 * reads them.
 */
const COLUMN_TYPES: Record<Exclude<SqlDialect, 'postgres'>, Record<string, Partial<ColumnMetadataArgs['options']>>> = {
  // datetime(3) holds no zone: values are UTC because every connection's time_zone is +00:00 and
  // mysql2 reads and writes Dates as UTC (timezone 'Z'); see mysqlOptions in data-source.options.ts.
  mysql: {
    timestamptz: { type: 'datetime' },
    bytea: { type: 'binary', length: 32 }, // refresh_tokens.token_hash: a SHA-256
    uuid: { type: 'char', length: 36 },
    // TEXT holds 65,535 bytes: a 20,000-character post body of 4-byte UTF-8 (emoji) needs 80,000.
    text: { type: 'mediumtext' },
  },
  // SQLite has few types; these keep what the values are. Timestamps: UTC text with milliseconds (see
  // SQLITE_NOW in database/dialects/sqlite.ts), as TypeORM writes Dates; the enum becomes varchar with a CHECK on its values.
  sqlite: {
    timestamptz: { type: 'datetime', precision: undefined },
    bytea: { type: 'blob' },
    uuid: { type: 'varchar', length: 36 },
    enum: { type: 'simple-enum', enumName: undefined },
  },
};

/** SQLite's CURRENT_TIMESTAMP and datetime('now') have whole seconds; the columns hold milliseconds. */
const sqliteDateDefaults: Partial<Record<ColumnMetadataArgs['mode'], Partial<ColumnMetadataArgs['options']>>> = {
  createDate: { default: () => SQLITE_NOW },
  updateDate: { default: () => SQLITE_NOW },
};

/** TypeORM would default MySQL's create/update dates to CURRENT_TIMESTAMP(6); the columns hold milliseconds. */
const mysqlDateDefaults: Partial<Record<ColumnMetadataArgs['mode'], Partial<ColumnMetadataArgs['options']>>> = {
  createDate: { default: () => 'CURRENT_TIMESTAMP(3)' },
  updateDate: { default: () => 'CURRENT_TIMESTAMP(3)', onUpdate: 'CURRENT_TIMESTAMP(3)' },
};

/**
 * MariaDB/MySQL have no expression index, so users_email_lower_key is a unique index on this
 * stored generated column. Binary collation: compares exactly what lower() produced (the API stores
 * NFC), neither case- nor accent-folding again as a *_ci collation would.
 */
const MYSQL_EMAIL_LOWER: ColumnMetadataArgs = {
  target: User,
  propertyName: 'emailLower',
  mode: 'regular',
  options: {
    name: 'email_lower',
    type: 'varchar',
    length: 254,
    charset: 'utf8mb4',
    collation: 'utf8mb4_bin',
    generatedType: 'STORED',
    asExpression: 'lower(`email`)',
    nullable: true, // MariaDB refuses NOT NULL on a generated column; lower() of a NOT NULL email is never null
    select: false,
    insert: false,
    update: false,
  },
};

/**
 * SQLite's twin of MYSQL_EMAIL_LOWER, so the portable statements (`WHERE email_lower = lower(?)`) serve
 * both: a virtual generated column (computed when read, stored only in its unique index). Its lower()
 * is the app's Unicode one (database/dialects/sqlite.ts), as PostgreSQL's.
 */
const SQLITE_EMAIL_LOWER: ColumnMetadataArgs = {
  ...MYSQL_EMAIL_LOWER,
  options: {
    ...MYSQL_EMAIL_LOWER.options,
    charset: undefined,
    collation: undefined,
    generatedType: 'VIRTUAL',
    asExpression: 'lower("email")',
  },
};

/** The email_lower column each dialect adds to User (PostgreSQL has an expression index instead). */
const EMAIL_LOWER: Partial<Record<SqlDialect, ColumnMetadataArgs>> = {
  mysql: MYSQL_EMAIL_LOWER,
  sqlite: SQLITE_EMAIL_LOWER,
};

const original = new WeakMap<object, object>();

/**
 * Rewrites the entities' column metadata for `dialect` (idempotent, and back to PostgreSQL's own
 * terms for `postgres`). Must run before a DataSource is built; dataSourceOptions() calls it.
 */
export function useColumnTypesOf(dialect: SqlDialect): void {
  const storage = getMetadataArgsStorage();
  const ours = new Set<unknown>(entities);
  for (const column of storage.columns) {
    if (!ours.has(column.target) || Object.values(EMAIL_LOWER).includes(column)) continue;
    if (!original.has(column)) original.set(column, { ...column.options });
    const pgOptions = original.get(column) as ColumnMetadataArgs['options'];
    const mapped = dialect === 'postgres' ? undefined : COLUMN_TYPES[dialect][String(pgOptions.type)];
    Object.assign(column, {
      options: {
        ...pgOptions,
        ...mapped,
        ...(dialect === 'mysql' && mysqlDateDefaults[column.mode]),
        ...(dialect === 'sqlite' && sqliteDateDefaults[column.mode]),
      },
    });
  }
  for (const generation of storage.generations) {
    if (!ours.has(generation.target)) continue;
    if (!original.has(generation)) original.set(generation, { strategy: generation.strategy });
    const { strategy } = original.get(generation) as { strategy: string }; // 'identity' is not in its type
    // AUTO_INCREMENT / INTEGER PRIMARY KEY: the other dialects' twin of GENERATED ALWAYS AS IDENTITY.
    Object.assign(generation, { strategy: dialect !== 'postgres' && strategy === 'identity' ? 'increment' : strategy });
  }
  const columns = storage.columns;
  for (const [owner, emailLower] of Object.entries(EMAIL_LOWER)) {
    const index = columns.indexOf(emailLower);
    if (dialect === owner && index < 0) columns.push(emailLower);
    if (dialect !== owner && index >= 0) columns.splice(index, 1);
  }
}
