import type { DataSourceOptions } from 'typeorm';
import type { DatabaseConfig } from '../config/app.config';
import { DatabaseLogger } from './database.logger';
import { type SqlDialect, dialectOf, loadDriver, migrationsFolder, useColumnTypesOf } from './dialects/dialect';
import { entities } from './entities';
import { ConnectionDiscardSubscriber, GuardedPgClient } from './errors/connection-faults';
import { boundedMysqlDriver } from './dialects/mysql-driver';
import { pgTypeParsers } from './dialects/pg-type-parsers';
import { sqliteOptions } from './dialects/sqlite';
import { statementTimeoutSubscriber } from './dialects/statement-timeout';

/**
 * The one place that turns configuration into TypeORM DataSource options, for the dialect the URL
 * names (database/dialects/dialect.ts). Used by the app (TypeOrmModule), the TypeORM CLI (ormconfig.ts) and
 * the test setup. Throws DialectError (one line) for an unknown scheme or a driver not installed.
 */
export function dataSourceOptions(config: DatabaseConfig): DataSourceOptions {
  if (!config.url) throw new Error('dataSourceOptions: the database URL is not known yet');
  const dialect = dialectOf(config.url);
  useColumnTypesOf(dialect);
  const common = {
    entities,
    migrations: [`${migrationsFolder(dialect)}/*.{ts,js}`],
    migrationsTableName: 'migrations',
    migrationsTransactionMode: 'each',
    migrationsRun: config.migrationsRun,
    synchronize: false,
    logger: new DatabaseLogger(config.logging),
    maxQueryExecutionTime: config.slowQueryMs,
    // A connection that answered "read-only" or "terminating" is not reused (database/errors/connection-faults.ts).
    subscribers: [
      ConnectionDiscardSubscriber,
      // PostgreSQL's statement timeout is not in the connection's startup packet (PgBouncer refuses it):
      // SET LOCAL in each transaction, and the role's default outside them (database/dialects/statement-timeout.ts).
      ...(dialect === 'postgres' && config.statementTimeoutMs > 0
        ? [statementTimeoutSubscriber(config.url, config.statementTimeoutMs)]
        : []),
    ],
  } as const;
  return { ...common, ...dialectOptions[dialect](config as DatabaseConfig & { url: string }) } as DataSourceOptions;
}

const dialectOptions: Record<SqlDialect, (config: DatabaseConfig & { url: string }) => Partial<DataSourceOptions>> = {
  postgres: (config) => ({
    type: 'postgres',
    url: config.url,
    applicationName: 'nest-typeorm-users',
    // pg-pool: `min` connections are kept, up to `max` are opened under load and closed again
    // after idleTimeoutMillis (SQLAlchemy's pool_size + max_overflow); connectionTimeoutMillis bounds
    // the wait for a free connection, so an exhausted pool answers 503 instead of hanging.
    extra: {
      min: config.poolSize,
      max: config.poolSize + config.poolMaxOverflow,
      idleTimeoutMillis: config.poolIdleTimeoutMs,
      connectionTimeoutMillis: config.poolTimeoutMs,
      // Every connection of the pool listens for its own 'error' event: a lost one never crashes the process.
      Client: GuardedPgClient,
      types: pgTypeParsers,
    },
  }),

  mysql: (config) => ({
    // One migrations folder for both servers, but TypeORM reads MariaDB's schema right (generated
    // columns, defaults: the drift check) only as type 'mariadb': mariadb:// says which server it is.
    type: /^mariadb:/i.test(config.url) ? 'mariadb' : 'mysql',
    url: config.url.replace(/^mariadb:/i, 'mysql:'),
    // Dates are read and written as UTC; the session time zone below matches, so CURRENT_TIMESTAMP(3)
    // and the values the app sends agree (datetime columns store no zone).
    timezone: 'Z',
    charset: 'utf8mb4_unicode_ci',
    // BIGINT (count(*), EXISTS) as a number, as pg's int4 casts give; a string only beyond 2^53.
    bigNumberStrings: false,
    connectTimeout: config.poolTimeoutMs,
    // mysql2's pool: up to connectionLimit (size + overflow) connections; at most maxIdle stay open
    // when idle, and idle ones close after idleTimeout. Its queue has no time limit, so
    // boundedMysqlDriver bounds the wait (503 on exhaustion, as pg's connectionTimeoutMillis).
    poolSize: config.poolSize + config.poolMaxOverflow,
    extra: { maxIdle: config.poolSize, idleTimeout: config.poolIdleTimeoutMs },
    // /*M! … */ runs on MariaDB only (max_statement_time, in seconds; idle_transaction_timeout, whole seconds:
    // the server closes a connection left idle in a transaction, releasing its locks); MySQL 8 has neither.
    driver: boundedMysqlDriver(loadDriver('mysql'), config.poolTimeoutMs, [
      `SET time_zone = '+00:00'${
        config.statementTimeoutMs
          ? `/*M!, max_statement_time = ${config.statementTimeoutMs / 1000}, idle_transaction_timeout = ${Math.ceil(config.statementTimeoutMs / 1000)} */`
          : ''
      }`,
      // Strict whatever the server's default: a value that does not fit is an error (the 400/422 the
      // other dialects give), never silently truncated or zeroed.
      "SET SESSION sql_mode = IF(@@sql_mode = '', 'STRICT_ALL_TABLES', CONCAT(@@sql_mode, ',STRICT_ALL_TABLES'))",
      // PostgreSQL's default: each statement sees what committed before it, and locking reads take no
      // gap locks, so the lock-ordering statements of the repositories mean the same on both.
      'SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED',
    ]),
  }),

  // One connection, one writer: see database/dialects/sqlite.ts (and README, Databases, for the pool settings).
  sqlite: (config) => {
    loadDriver('sqlite'); // the one-line startup error when better-sqlite3 is not installed
    return sqliteOptions(config);
  },
};
