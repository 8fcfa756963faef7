import { ValidateBy, type ValidationOptions } from 'class-validator';

/** Every SQL dialect the service runs on. */
export const DIALECTS = ['postgres', 'mysql', 'sqlite'] as const;
/**
 * The one vocabulary for "which database": named after what DATABASE_URL starts with —
 * `postgres://` / `postgresql://` (pg), `mysql://` / `mariadb://` (mysql2; MariaDB ≥ 10.6, MySQL 8),
 * `sqlite:./path.db` / `sqlite::memory:` (better-sqlite3 12). Worked out from the URL here only
 * (urlDialect); repositories key their statements tables by it (SQL_DIALECT, database/dialects/).
 */
export type SqlDialect = (typeof DIALECTS)[number];

/** The schemes a database URL may start with (case-insensitive), and the dialect each names. */
const SCHEME = /^(?:(postgres|postgresql|mysql|mariadb):\/\/|(sqlite):)/i;
const DIALECT_OF_SCHEME: Record<string, SqlDialect> = {
  postgres: 'postgres',
  postgresql: 'postgres',
  mysql: 'mysql',
  mariadb: 'mysql',
  sqlite: 'sqlite',
};

/**
 * The dialect a database URL names, or undefined for any other URL: the one parser of a URL's
 * scheme, which configuration validation (IsDatabaseUrl, the replica checks) and the database layer
 * (dialectOf) share. Lives in config/ because config/ may import nothing of the app.
 */
export function urlDialect(url: string): SqlDialect | undefined {
  const match = SCHEME.exec(url);
  return match ? DIALECT_OF_SCHEME[(match[1] ?? match[2]).toLowerCase()] : undefined;
}

/** Thrown for a URL the service cannot use; its message is one line saying what to do. */
export class DialectError extends Error {}

/** The dialect a database URL names (urlDialect). Throws DialectError for any other URL. */
export function dialectOf(url: string): SqlDialect {
  const dialect = urlDialect(url);
  if (!dialect) {
    const start = /^[a-z0-9+.-]+:/i.exec(url)?.[0] || url.slice(0, 12);
    throw new DialectError(
      `DATABASE_URL starts with "${start}", which is not a database this service can use: give a postgres://, mysql://, mariadb:// or sqlite: URL`,
    );
  }
  return dialect;
}

/** Validates (class-validator) that a setting is a database URL urlDialect reads; `options.message` says what it must be. */
export function IsDatabaseUrl(options: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    { name: 'isDatabaseUrl', validator: { validate: (value) => typeof value === 'string' && !!urlDialect(value) } },
    options,
  );
}
