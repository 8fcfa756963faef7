import { EventEmitter } from 'node:events';
import { guardMysqlConnection } from '../errors/connection-faults';

/** The parts of mysql2's callback API that TypeORM's MysqlDriver and this module use. */
export interface MysqlConnection {
  query(sql: string, callback?: (error: Error | null) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  destroy(): void;
  release(): void;
}
type GetConnectionCallback = (error: Error | null, connection?: MysqlConnection) => void;
export interface MysqlPool extends EventEmitter {
  getConnection(callback: GetConnectionCallback): void;
  config: { connectionLimit: number };
  _allConnections: { length: number };
  _freeConnections: { length: number };
  _connectionQueue: { length: number };
}
interface Mysql2 {
  createPool(options: object): MysqlPool;
}

/** The error of a connection request that waited DB_POOL_TIMEOUT_MS in vain (mapped to 503). */
export const POOL_ACQUIRE_TIMEOUT = 'POOL_ACQUIRE_TIMEOUT';

/** Hears how long each connection request waited, and whether it gave up (the metrics module listens). */
export const mysqlPoolEvents = new EventEmitter<{ acquired: [pool: MysqlPool, ms: number, timedOut: boolean] }>();

/**
 * mysql2 as TypeORM's MysqlDriver should see it (its `driver` option): each pooled connection has a
 * permanent `'error'` listener (guardMysqlConnection) and starts
 * with the `sessionSql` statements (time zone, isolation, statement timeout), and a caller waits at most `acquireTimeoutMs` for
 * a connection — mysql2's pool queues callers without limit (it has no acquire timeout), and a queue
 * that never moves would hang requests instead of answering 503. A connection that arrives after its
 * caller gave up goes straight back to the pool.
 */
export function boundedMysqlDriver(mysql2: Mysql2, acquireTimeoutMs: number, sessionSql: string[]): Mysql2 {
  return {
    ...mysql2,
    createPool(options: object): MysqlPool {
      const pool = mysql2.createPool(options);
      // Queued on the new connection before the caller's first statement, so it always runs first.
      pool.on('connection', (connection: MysqlConnection) => {
        guardMysqlConnection(connection); // a lost connection never crashes the process (database/errors/connection-faults.ts)
        // With a callback: a statement without one emits its error on itself, unheard (fatal). A connection
        // whose session could not be set up is closed; whoever waits on it gets a connection error (503).
        sessionSql.forEach((sql) => connection.query(sql, (error) => error && connection.destroy()));
      });
      const getConnection = pool.getConnection.bind(pool);
      pool.getConnection = (callback: GetConnectionCallback) => {
        const started = performance.now();
        let settled = false;
        const timer = setTimeout(() => {
          settled = true;
          mysqlPoolEvents.emit('acquired', pool, performance.now() - started, true);
          const error = Object.assign(
            new Error(`no database connection became free within ${acquireTimeoutMs} ms (DB_POOL_TIMEOUT_MS)`),
            { code: POOL_ACQUIRE_TIMEOUT },
          );
          callback(error);
        }, acquireTimeoutMs);
        getConnection((error, connection) => {
          if (settled) return connection?.release();
          settled = true;
          clearTimeout(timer);
          mysqlPoolEvents.emit('acquired', pool, performance.now() - started, false);
          callback(error, connection);
        });
      };
      return pool;
    },
  };
}
