import type { Logger } from '@nestjs/common';
import { Client } from 'pg';
import { type EntitySubscriberInterface, EventSubscriber, type TransactionStartEvent } from 'typeorm';
import type { DatabaseConfig } from '../../config/app.config';
import { dialectOf } from './dialect';

/**
 * PostgreSQL's statement timeout (DB_STATEMENT_TIMEOUT_MS) without startup parameters or session
 * state, so it holds behind PgBouncer in transaction pooling mode (docs/operations.md, "PgBouncer
 * profile"), where a connection's startup packet may carry no `statement_timeout` and a `SET` would
 * stay on a server connection other clients then get:
 * - the session default of the app's role in its database, which PostgreSQL applies to every new session,
 *   PgBouncer's server connections and the replicas' included (ensureSessionStatementTimeout, at startup);
 * - where that default could not be confirmed (the role may not set it; the CLI and tests, which do not
 *   run the startup check): `SET LOCAL statement_timeout` as each transaction's first statement
 *   (statementTimeoutSubscriber). Reads outside a transaction then have no timeout: the startup warning says so.
 */

/** `url|ms` of the databases whose role default ensureSessionStatementTimeout confirmed in this process. */
const confirmedDefaults = new Set<string>();

/**
 * A TypeORM subscriber class (for DataSourceOptions.subscribers) whose instances send
 * `SET LOCAL statement_timeout = <ms>` right after a transaction's BEGIN — unless the role's default in
 * the database at `url` was confirmed to be `ms` at startup: the setting ends with the transaction, on
 * whichever server connection PgBouncer lent it. It costs one round trip per transaction (ADR 0012),
 * hence only where needed; a savepoint inherits it and sends nothing.
 */
export function statementTimeoutSubscriber(url: string, ms: number): new () => EntitySubscriberInterface {
  const statement = `SET LOCAL statement_timeout = ${Math.trunc(ms)}`;
  const key = `${url}|${Math.trunc(ms)}`;
  class StatementTimeoutInTransaction implements EntitySubscriberInterface {
    async afterTransactionStart({ queryRunner }: TransactionStartEvent): Promise<void> {
      if (confirmedDefaults.has(key)) return;
      if ((queryRunner as unknown as { transactionDepth: number }).transactionDepth === 1) {
        await queryRunner.query(statement);
      }
    }
  }
  EventSubscriber()(StatementTimeoutInTransaction); // TypeORM instantiates only registered subscriber classes
  return StatementTimeoutInTransaction;
}

/**
 * Makes DB_STATEMENT_TIMEOUT_MS the statement timeout of every new session of the app's role in its
 * database, unless it already is: `ALTER ROLE CURRENT_USER IN DATABASE <db> SET statement_timeout` (a role
 * may set its own defaults; PostgreSQL 15 docs, ALTER ROLE). Run before the pool opens, on a connection of
 * its own, so the pool's sessions start with it; sessions opened before keep their old default
 * (PgBouncer's server connections until it recycles them: docs/operations.md). Nothing for other
 * dialects or a timeout of 0. When the role may not change it, logs a warning with the statement an
 * administrator can run instead; fails only if the database cannot be reached (as the pool would).
 * `poolOpen`: the app's pool already has sessions from before (a changed default is then not trusted for
 * its transactions, which keep SET LOCAL). Returns the default new sessions now get, in ms (0 = none).
 */
export async function ensureSessionStatementTimeout(
  config: DatabaseConfig,
  logger: Pick<Logger, 'log' | 'warn'>,
  { poolOpen = false } = {},
): Promise<number> {
  const ms = Math.trunc(config.statementTimeoutMs);
  if (!config.url || dialectOf(config.url) !== 'postgres' || ms <= 0) return 0;
  const client = new Client({
    connectionString: config.url,
    connectionTimeoutMillis: config.poolTimeoutMs,
    application_name: 'nest-typeorm-users',
  });
  client.on('error', () => undefined); // a lost connection fails the query that is waiting, which says why
  await client.connect();
  try {
    // What this session got when it started: the server's, database's and role's defaults (no SET was sent).
    const { rows } = await client.query<{ setting: string; role: string; db: string }>(
      "SELECT setting, current_user AS role, current_database() AS db FROM pg_settings WHERE name = 'statement_timeout'",
    );
    const { setting, role, db } = rows[0];
    const key = `${config.url}|${ms}`;
    if (Number(setting) === ms) {
      confirmedDefaults.add(key);
      return ms;
    }
    const statement = `ALTER ROLE CURRENT_USER IN DATABASE ${quoteIdentifier(db)} SET statement_timeout = ${ms}`;
    try {
      await client.query(statement);
      // This session predates the default: behind PgBouncer it would be lent to the pool without it. End it.
      await client.query('SELECT pg_terminate_backend(pg_backend_pid())').catch(() => undefined);
      logger.log(`statement_timeout ${ms} ms is now role ${role}'s default in database ${db} (was ${setting} ms)`);
      // A pool opened before the change has sessions without it: its transactions keep SET LOCAL.
      if (!poolOpen) confirmedDefaults.add(key);
      return ms;
    } catch (error) {
      logger.warn(
        `Reads outside transactions run with statement_timeout ${setting} ms, not DB_STATEMENT_TIMEOUT_MS=${ms} (transactions SET LOCAL it): role ${role} ` +
          `could not set its default (${(error as Error).message}); an administrator can run: ${statement.replace('CURRENT_USER', quoteIdentifier(role))}`,
      );
      return Number(setting);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
