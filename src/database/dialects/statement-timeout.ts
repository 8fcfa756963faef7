import type { Logger } from '@nestjs/common';
import { Client } from 'pg';
import { type EntitySubscriberInterface, EventSubscriber, type TransactionStartEvent } from 'typeorm';
import type { DatabaseConfig } from '../../config/app.config';
import { dialectOf } from './dialect';

/**
 * PostgreSQL's statement timeout (DB_STATEMENT_TIMEOUT_MS) without startup parameters or session
 * state, so it holds behind PgBouncer in transaction pooling mode (docs/operations.md, "PgBouncer
 * profile"), where a connection's startup packet may carry no `statement_timeout` and a `SET` would
 * stay on a server connection other clients then get. The same value is also the session's
 * `idle_in_transaction_session_timeout`: a transaction left open (the network cut as COMMIT was sent)
 * is ended by the server, its locks released, instead of waiting hours for TCP keepalive. Both by:
 * - the session defaults of the app's role in its database, which PostgreSQL applies to every new session,
 *   PgBouncer's server connections and the replicas' included (ensureSessionStatementTimeout, at startup);
 * - where those defaults could not be confirmed (the role may not set them; the CLI and tests, which do not
 *   run the startup check): both `SET LOCAL`, in one statement, as each transaction's first statement
 *   (statementTimeoutSubscriber). Reads outside a transaction then have no timeout: the startup warning says so.
 */

/** The settings DB_STATEMENT_TIMEOUT_MS becomes, in ms, on PostgreSQL. */
const SETTINGS = ['statement_timeout', 'idle_in_transaction_session_timeout'] as const;

/** `url|ms` of the databases whose role default ensureSessionStatementTimeout confirmed in this process. */
const confirmedDefaults = new Set<string>();

/**
 * A TypeORM subscriber class (for DataSourceOptions.subscribers) whose instances set `statement_timeout`
 * and `idle_in_transaction_session_timeout` to `ms` for the transaction (`set_config(…, true)`, i.e.
 * `SET LOCAL`, both in one statement) right after its BEGIN — unless the role's defaults in the database
 * at `url` were confirmed to be `ms` at startup: the settings end with the transaction, on whichever
 * server connection PgBouncer lent it. It costs one round trip per transaction (ADR 0012), hence only
 * where needed; a savepoint inherits them and sends nothing.
 */
export function statementTimeoutSubscriber(url: string, ms: number): new () => EntitySubscriberInterface {
  const statement = `SELECT ${SETTINGS.map((name) => `set_config('${name}', '${Math.trunc(ms)}', true)`).join(', ')}`;
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
 * Makes DB_STATEMENT_TIMEOUT_MS the `statement_timeout` and `idle_in_transaction_session_timeout` of
 * every new session of the app's role in its database, unless they already are:
 * `ALTER ROLE CURRENT_USER IN DATABASE <db> SET <setting>` for each that differs (a role may set its own
 * defaults; PostgreSQL 15 docs, ALTER ROLE). Run before the pool opens, on a connection of its own, so the
 * pool's sessions start with them; sessions opened before keep their old defaults (PgBouncer's server
 * connections until it recycles them: docs/operations.md). Nothing for other dialects or a timeout of 0.
 * When the role may not change them, logs a warning with the statements an administrator can run instead;
 * fails only if the database cannot be reached (as the pool would).
 * `poolOpen`: the app's pool already has sessions from before (changed defaults are then not trusted for
 * its transactions, which keep SET LOCAL). Returns the statement timeout new sessions now get, in ms (0 = none).
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
    const { rows } = await client.query<{ name: string; setting: string; role: string; db: string }>(
      'SELECT name, setting, current_user AS role, current_database() AS db FROM pg_settings WHERE name = ANY($1)',
      [SETTINGS],
    );
    const { role, db } = rows[0];
    const was = (name: string) => Number(rows.find((row) => row.name === name)?.setting);
    const key = `${config.url}|${ms}`;
    const differing = SETTINGS.filter((name) => was(name) !== ms);
    if (differing.length === 0) {
      confirmedDefaults.add(key);
      return ms;
    }
    const statements = differing.map(
      (name) => `ALTER ROLE CURRENT_USER IN DATABASE ${quoteIdentifier(db)} SET ${name} = ${ms}`,
    );
    const before = differing.map((name) => `${name} ${was(name)} ms`).join(', ');
    try {
      for (const statement of statements) await client.query(statement);
      // This session predates the defaults: behind PgBouncer it would be lent to the pool without them. End it.
      await client.query('SELECT pg_terminate_backend(pg_backend_pid())').catch(() => undefined);
      logger.log(
        `${differing.join(' and ')} ${ms} ms ${differing.length > 1 ? 'are' : 'is'} now role ${role}'s default in database ${db} (was ${before})`,
      );
      // A pool opened before the change has sessions without them: its transactions keep SET LOCAL.
      if (!poolOpen) confirmedDefaults.add(key);
      return ms;
    } catch (error) {
      const admin = statements.map((statement) => statement.replace('CURRENT_USER', quoteIdentifier(role)));
      logger.warn(
        `Reads outside transactions run with ${before}, not DB_STATEMENT_TIMEOUT_MS=${ms} (transactions SET LOCAL it): role ${role} ` +
          `could not set its defaults (${(error as Error).message}); an administrator can run: ${admin.join('; ')}`,
      );
      return was('statement_timeout');
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
