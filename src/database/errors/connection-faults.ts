import { Logger } from '@nestjs/common';
import { Client, type ClientConfig } from 'pg';
import { type AfterQueryEvent, type EntitySubscriberInterface, EventSubscriber } from 'typeorm';
import { countConnectionLost } from '../../metrics/metrics';
import { mustDiscardConnection } from './database-errors';

const logger = new Logger('Database');

/** At most one "connection lost" line per this many ms; the metric counts every one. */
const LOG_EVERY_MS = 5_000;
let lastLogged = 0;
let unlogged = 0;

/**
 * Called for every error a pooled connection reports on its own (the server terminated the backend,
 * restarted or failed over, the network cut it): counted in db_connections_lost_total and logged
 * (one line per LOG_EVERY_MS, with how many more were lost meanwhile). The pool drops the
 * connection; whoever was using it gets the error from its statement.
 */
export function connectionLost(error: unknown): void {
  countConnectionLost();
  const now = Date.now();
  if (now - lastLogged < LOG_EVERY_MS) {
    unlogged++;
    return;
  }
  const more = unlogged > 0 ? ` (and ${unlogged} more since the last report)` : '';
  lastLogged = now;
  unlogged = 0;
  logger.warn(`A database connection was lost: ${error instanceof Error ? error.message : String(error)}${more}`);
}

const DISCARD = Symbol('discard');
type PoolRelease = (error?: Error | boolean) => void;

/**
 * pg's Client as every pg pool of the app creates it (pg-pool's `Client` option, set in
 * database/data-source.options.ts), so that no connection — idle in the pool, checked out by a
 * TypeORM QueryRunner, by queryPool, by the health check or a replica's pool — can crash the
 * process: it always has an `'error'` listener (node-postgres emits `'error'` on a client whose
 * server went away, and an unheard `'error'` event kills the process; pg-pool only listens while
 * the client is idle). See node-postgres#2439, #3202.
 *
 * It also lets a connection be retired: pg-pool gives each checkout its `release` function by
 * assigning `client.release`; the accessor below keeps pg-pool's function and hands out one that
 * releases with an error — which makes pg-pool close the connection instead of reusing it — when
 * discardConnection() marked the client (it answered "read-only" or "terminating").
 */
export class GuardedPgClient extends Client {
  private poolRelease?: PoolRelease;
  private lost = false;
  [DISCARD]?: Error;

  constructor(config?: string | ClientConfig) {
    super(config);
    this.on('error', (error) => {
      if (this.lost) return;
      this.lost = true;
      connectionLost(error);
    });
  }

  set release(release: PoolRelease) {
    this.poolRelease = release;
  }

  get release(): PoolRelease {
    return (error) => this.poolRelease?.(error ?? this[DISCARD]);
  }
}

/**
 * Marks the connection behind a TypeORM QueryRunner, or a pg client, not to be reused once released:
 * pg clients through GuardedPgClient's release; mysql2 pool connections are destroyed now (their
 * pool then opens a fresh one). Does nothing for SQLite's one in-process connection.
 */
export function discardConnection(connection: unknown, reason: Error): void {
  if (connection instanceof GuardedPgClient) {
    connection[DISCARD] ??= reason;
    return;
  }
  const mysql = connection as { destroy?: () => void; _pool?: unknown } | undefined;
  if (mysql && typeof mysql.destroy === 'function' && '_pool' in mysql) mysql.destroy();
}

/**
 * A DataSource subscriber (TypeORM's afterQuery event): a statement that failed with an error after
 * which its connection must not serve again (read-only server, terminating backend, see
 * mustDiscardConnection) gets that connection discarded. queryPool does the same for its reads.
 */
@EventSubscriber() // TypeORM instantiates only decorated classes from the `subscribers` option
export class ConnectionDiscardSubscriber implements EntitySubscriberInterface {
  afterQuery(event: AfterQueryEvent): void {
    if (event.success || !mustDiscardConnection(event.error)) return;
    const connection = (event.queryRunner as { databaseConnection?: unknown }).databaseConnection;
    discardConnection(connection, event.error instanceof Error ? event.error : new Error(String(event.error)));
  }
}

/**
 * Every mysql2 pool connection gets a permanent `'error'` listener: mysql2's PoolConnection listens
 * only `once`, and TypeORM adds its own only to connections with none, so a second error on a
 * broken connection (KILL CONNECTION, server restart) would have been unheard and fatal.
 */
export function guardMysqlConnection(connection: {
  on(event: 'error', listener: (error: Error) => void): unknown;
}): void {
  let lost = false;
  connection.on('error', (error) => {
    if (lost) return;
    lost = true;
    connectionLost(error);
  });
}
