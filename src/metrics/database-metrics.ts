import type { Pool, PoolClient } from 'pg';
import type { AfterQueryEvent, BeforeQueryEvent, DataSource, EntitySubscriberInterface, QueryRunner } from 'typeorm';
import { type MysqlPool, mysqlPoolEvents } from '../database/dialects/mysql-driver';
import { sqliteGate } from '../database/dialects/sqlite';
import { sqlStateOf } from '../database/errors/database-errors';
import type { PoolQueryObserver } from '../database/reads/pool-queries';
import type { SqlDialect } from '../database/dialects/dialect';
import { type PoolStats, poolAcquireDuration, poolAcquireTimeouts, queryDuration, queryErrors } from './metrics';

const OPERATIONS = new Set(['select', 'insert', 'update', 'delete']);

/** `select`, `insert`, `update`, `delete` from a statement's first word, else `other` (BEGIN, WITH, SET, …). */
export function operationOf(sql: string): string {
  const verb = /^\s*([a-z]+)/i.exec(sql)?.[1]?.toLowerCase() ?? '';
  return OPERATIONS.has(verb) ? verb : 'other';
}

/**
 * The SQLSTATE class (its first two characters, e.g. `23` for integrity violations; MySQL's errors as
 * PostgreSQL would report them, see sqlStateOf), or `driver` if none.
 */
export function sqlStateClassOf(error: unknown): string {
  const code = sqlStateOf(error);
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code.slice(0, 2) : 'driver';
}

/** Start times of a query runner's statements in flight, oldest first (QueryMetricsSubscriber). */
const STARTED = Symbol('statements started');
type TimedQueryRunner = QueryRunner & { [STARTED]?: number[] };

/**
 * Times every statement TypeORM sends (its documented beforeQuery/afterQuery subscriber events, so
 * every repository and raw query is covered) and counts failures by SQLSTATE class. A query runner
 * runs its statements one after the other on one connection, in order: a queue of start times on
 * each runner pairs each end with its start. The queue is a property of the runner rather than a
 * WeakMap entry: on MySQL and SQLite a read outside a transaction gets a new runner per statement,
 * and short-lived WeakMap keys are extra work for every garbage collection (ephemeron tables).
 * PostgreSQL's reads outside a transaction skip the runner: observePoolQuery times those.
 */
export class QueryMetricsSubscriber implements EntitySubscriberInterface, PoolQueryObserver {
  beforeQuery(event: BeforeQueryEvent): void {
    const runner = event.queryRunner as TimedQueryRunner;
    (runner[STARTED] ??= []).push(performance.now());
  }

  afterQuery(event: AfterQueryEvent): void {
    const start = (event.queryRunner as TimedQueryRunner)[STARTED]?.shift();
    if (start !== undefined)
      queryDuration.observe({ operation: operationOf(event.query) }, (performance.now() - start) / 1000);
    if (!event.success) queryErrors.inc({ sqlstate_class: sqlStateClassOf(event.error) });
  }

  /** The reads sent past TypeORM's QueryRunner (database/reads/pool-queries.ts), timed and counted the same way. */
  observePoolQuery(sql: string, seconds: number, error?: unknown): void {
    queryDuration.observe({ operation: operationOf(sql) }, seconds);
    if (error !== undefined) queryErrors.inc({ sqlstate_class: sqlStateClassOf(error) });
  }
}

type ConnectCallback = (error: Error | undefined, client: PoolClient | undefined, release: () => void) => void;
/** pg-pool's message when connectionTimeoutMillis (DB_POOL_TIMEOUT_MS) passed without a connection. */
const ACQUIRE_TIMEOUT = 'timeout exceeded when trying to connect';

/**
 * Times each `pool.connect()` (TypeORM's and pool.query()'s way to get a connection) into the
 * acquire-time histogram and counts the ones that timed out. Returns a function that undoes it.
 */
export function measurePoolAcquires(pool: Pool): () => void {
  const connect = pool.connect.bind(pool) as (callback?: ConnectCallback) => Promise<PoolClient> | undefined;
  const observe = (started: number, error: Error | undefined) => {
    poolAcquireDuration.observe((performance.now() - started) / 1000);
    if (error?.message === ACQUIRE_TIMEOUT) poolAcquireTimeouts.inc();
  };
  const measured = (callback?: ConnectCallback) => {
    const started = performance.now();
    if (callback)
      return connect((error, client, release) => {
        observe(started, error);
        callback(error, client, release);
      });
    return connect()!.then(
      (client) => {
        observe(started, undefined);
        return client;
      },
      (error: Error) => {
        observe(started, error);
        throw error;
      },
    );
  };
  Object.assign(pool, { connect: measured });
  return () => {
    delete (pool as Partial<Pool>).connect; // the prototype's method again
  };
}

/** What the metrics read of the app's pool, whatever the driver; `stop` undoes the measuring. */
export interface PoolProbe {
  stats: () => PoolStats;
  stop: () => void;
}

/**
 * A reader of the sizes of the pool behind `dataSource`: pg-pool's counters (TypeORM's `master`), or
 * mysql2's pool's own fields (it has no public counters), or SQLite's one connection behind
 * SqliteGate as a pool of one (max 1, waiting = requests queued for it). `dialect` is the
 * DataSource's (SQL_DIALECT).
 */
export function poolStatsOf(dataSource: DataSource, dialect: SqlDialect): (() => PoolStats) | undefined {
  if (dialect === 'postgres') {
    const pool = (dataSource.driver as unknown as { master: Pool }).master;
    return () => ({
      total: pool.totalCount,
      idle: pool.idleCount,
      max: pool.options.max ?? 0,
      waiting: pool.waitingCount,
    });
  }
  if (dialect === 'mysql') {
    const pool = (dataSource.driver as unknown as { pool: MysqlPool }).pool;
    return () => ({
      total: pool._allConnections.length,
      idle: pool._freeConnections.length,
      max: pool.config.connectionLimit,
      waiting: pool._connectionQueue.length,
    });
  }
  return () => sqliteGate.stats();
}

/**
 * The pool behind `dataSource`, measured: acquire times and timeouts into the histogram and counter,
 * and its sizes for the gauges (poolStatsOf). pg-pool by wrapping connect(); mysql2's pool through the
 * waits boundedMysqlDriver reports; SQLite's through SqliteGate's waits for its one connection.
 * `dialect` is the DataSource's (SQL_DIALECT).
 */
export function probePool(dataSource: DataSource, dialect: SqlDialect): PoolProbe | undefined {
  const stats = poolStatsOf(dataSource, dialect);
  if (!stats) return undefined;
  if (dialect === 'postgres') {
    return { stats, stop: measurePoolAcquires((dataSource.driver as unknown as { master: Pool }).master) };
  }
  if (dialect === 'sqlite') {
    const listener = (ms: number, timedOut: boolean) => {
      poolAcquireDuration.observe(ms / 1000);
      if (timedOut) poolAcquireTimeouts.inc();
    };
    sqliteGate.waits.on('acquired', listener);
    return { stats, stop: () => sqliteGate.waits.off('acquired', listener) };
  }
  const pool = (dataSource.driver as unknown as { pool: MysqlPool }).pool;
  const listener = (from: MysqlPool, ms: number, timedOut: boolean) => {
    if (from !== pool) return;
    poolAcquireDuration.observe(ms / 1000);
    if (timedOut) poolAcquireTimeouts.inc();
  };
  mysqlPoolEvents.on('acquired', listener);
  return { stats, stop: () => mysqlPoolEvents.off('acquired', listener) };
}
