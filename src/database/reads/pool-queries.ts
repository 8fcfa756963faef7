import { DatabaseError, type Pool, type PoolClient, type QueryResult } from 'pg';
import { type DataSource, type EntityManager, QueryFailedError } from 'typeorm';
import { countStatementRetried } from '../../metrics/metrics';
import { discardConnection } from '../errors/connection-faults';
import { isConnectionLost, mustDiscardConnection } from '../errors/database-errors';
import type { SqlDialect } from '../dialects/dialect';

/**
 * A DataSource subscriber that also wants the statements queryPool sends past TypeORM's
 * QueryRunner (and so past its beforeQuery/afterQuery events): QueryMetricsSubscriber.
 */
export interface PoolQueryObserver {
  /** One statement: its SQL, how long it took in seconds (sent → last row), and its error if it failed. */
  observePoolQuery(sql: string, seconds: number, error?: unknown): void;
}

function isPoolQueryObserver(subscriber: object): subscriber is PoolQueryObserver {
  return typeof (subscriber as Partial<PoolQueryObserver>).observePoolQuery === 'function';
}

/**
 * The rows of one read statement on a PostgreSQL DataSource, on a connection of its pg pool, sent
 * with the callback form of pg's `client.query()` rather than through a TypeORM QueryRunner, which
 * sends it with the promise form and costs far more CPU per read (ADR 0010 has the measurements).
 * What the QueryRunner did for a statement is kept: the DataSource's logger sees it
 * (DB_LOGGING echo, `maxQueryExecutionTime` → slow-query warning, the tests' query counts), its
 * PoolQueryObserver subscribers time it from sending to the last row (the query metrics), and an
 * error the server reported is a QueryFailedError around pg's DatabaseError, so it becomes the same
 * problem; failing to get a connection (pool exhausted, database down) is pg-pool's error, and a
 * connection that broke mid-statement is released with its error (pg-pool then drops it), as
 * TypeORM's QueryRunner does. A connection that answered "read-only" or "terminating" is released
 * with the error too, so it is not reused (see mustDiscardConnection).
 *
 * A read whose connection was lost under it (isConnectionLost: the backend was terminated, the
 * server restarted, the network cut it) runs once more on a fresh connection, counted in
 * db_statements_retried_total: a read changes nothing, so running it twice is harmless. A second
 * loss is the caller's error (503). For statements outside a transaction only: see queryRows.
 */
export async function queryPool<T>(dataSource: DataSource, sql: string, parameters: unknown[]): Promise<T[]> {
  try {
    return await queryPoolOnce<T>(dataSource, sql, parameters);
  } catch (error) {
    if (!isConnectionLost(error)) throw error;
    countStatementRetried('read');
    return queryPoolOnce<T>(dataSource, sql, parameters);
  }
}

async function queryPoolOnce<T>(dataSource: DataSource, sql: string, parameters: unknown[]): Promise<T[]> {
  const pool = (dataSource.driver as unknown as { master: Pool }).master;
  const client = await pool.connect();
  let rows: T[];
  try {
    rows = await sendStatement<T>(dataSource, client, sql, parameters);
  } catch (error) {
    // A statement's failure: keep the connection unless it must not serve again; else it broke.
    const cause = error instanceof QueryFailedError ? (error.driverError as Error) : (error as Error);
    client.release(error instanceof QueryFailedError && !mustDiscardConnection(cause) ? undefined : cause);
    throw error;
  }
  client.release();
  return rows;
}

/**
 * One statement on `client` with the callback form of pg's `client.query()`, as TypeORM's QueryRunner
 * would have sent it otherwise: logged, timed for the PoolQueryObservers, slow-query warned; an error
 * the server reported becomes a QueryFailedError around pg's DatabaseError. Any other error (the
 * connection broke) is thrown as it came. Returns the result's rows.
 */
async function sendStatement<T>(dataSource: DataSource, client: PoolClient, sql: string, parameters: unknown[]) {
  dataSource.logger.logQuery(sql, parameters);
  const started = performance.now();
  let result: QueryResult;
  try {
    result = await new Promise<QueryResult>((resolve, reject) =>
      client.query(sql, parameters, (error, rows) => (error ? reject(error) : resolve(rows))),
    );
  } catch (error) {
    if (!(error instanceof DatabaseError)) throw error;
    observe(dataSource, sql, started, error);
    dataSource.logger.logQueryError(error, sql, parameters);
    throw new QueryFailedError(sql, parameters, error);
  }
  const milliseconds = observe(dataSource, sql, started);
  const slowAfter = dataSource.options.maxQueryExecutionTime;
  if (slowAfter && milliseconds > slowAfter) dataSource.logger.logQuerySlow(Math.round(milliseconds), sql, parameters);
  return result.rows as T[];
}

/**
 * The rows of one statement in the transaction `db` belongs to (an EntityManager with a QueryRunner);
 * `dialect` is `db`'s (SQL_DIALECT).
 * On PostgreSQL it is sent on the transaction's own connection as queryPool sends a read (sendStatement:
 * the QueryRunner's promise path costs more CPU, ADR 0010), with what the QueryRunner did kept — logging,
 * the query metrics, a QueryFailedError for any failure, the connection discarded after an error that
 * says so (mustDiscardConnection). Rows only: an UPDATE or DELETE that must count says RETURNING.
 * Elsewhere, and on a released QueryRunner (whose error wasNeverSent recognizes), `db.query()`. Never
 * re-run: a lost connection takes the transaction with it (inTransaction re-runs the whole of it).
 */
export async function queryInTransaction<T>(
  db: EntityManager,
  dialect: SqlDialect,
  sql: string,
  parameters: unknown[],
): Promise<T[]> {
  const runner = db.queryRunner;
  // TypeORM's PostgresQueryRunner holds its pg client here while connected (not in the QueryRunner interface).
  const client = (runner as { databaseConnection?: PoolClient } | undefined)?.databaseConnection;
  if (!runner || runner.isReleased || !client || dialect !== 'postgres') return db.query<T[]>(sql, parameters);
  try {
    return await sendStatement<T>(db.dataSource, client, sql, parameters);
  } catch (error) {
    const failed = error instanceof QueryFailedError ? error : new QueryFailedError(sql, parameters, error as Error);
    if (mustDiscardConnection(failed)) discardConnection(client, failed.driverError as Error);
    throw failed;
  }
}

/**
 * The rows of one plain-SQL statement on `db` (whose dialect is `dialect`, SQL_DIALECT): inside a
 * transaction (an EntityManager with a QueryRunner) with queryInTransaction; otherwise on MySQL/SQLite through TypeORM, `db.query()`, and
 * on PostgreSQL on the pool with queryPool. For statements that read (a pooled connection per statement, no transaction);
 * outside a transaction, one whose connection was lost runs once more, on every dialect.
 */
export async function queryRows<T>(
  db: EntityManager,
  dialect: SqlDialect,
  sql: string,
  parameters: unknown[],
): Promise<T[]> {
  if (db.queryRunner) return queryInTransaction<T>(db, dialect, sql, parameters);
  if (dialect === 'postgres') return queryPool<T>(db.dataSource, sql, parameters);
  try {
    return await db.query<T[]>(sql, parameters);
  } catch (error) {
    if (!isConnectionLost(error)) throw error;
    countStatementRetried('read'); // as queryPool: a read whose connection was lost runs once more
    return db.query<T[]>(sql, parameters);
  }
}

/** Tells the DataSource's PoolQueryObservers of a statement that began at `started`; returns its milliseconds. */
function observe(dataSource: DataSource, sql: string, started: number, error?: DatabaseError): number {
  const milliseconds = performance.now() - started;
  for (const subscriber of dataSource.subscribers) {
    if (isPoolQueryObserver(subscriber)) subscriber.observePoolQuery(sql, milliseconds / 1000, error);
  }
  return milliseconds;
}
