import { type DataSource, type Migration, MigrationExecutor, type QueryRunner } from 'typeorm';
import { setTimeout as sleep } from 'node:timers/promises';

/** How long a waiting instance sleeps between two attempts at the lock. */
const RETRY_MS = 250;
/** PostgreSQL: the advisory lock's key is hashtext() of this (advisory locks are per database already). */
const LOCK_NAME = 'nest-typeorm-users:migrations';

/** Where runMigrationsExclusively says that it waits for another instance. */
export interface MigrationLockLogger {
  log(message: string): void;
}

/**
 * Applies the pending migrations (as `dataSource.runMigrations()` does) while holding a lock no other
 * instance on the same database can hold, so N instances started together on an empty database apply
 * each migration once: one applies them, the others wait for the lock, then find none pending.
 * - PostgreSQL: `pg_try_advisory_xact_lock` in a transaction kept open on a connection of its own while
 *   the migrations run on others, as TypeORM runs them (one transaction each, or none for a migration that
 *   says so, e.g. CREATE INDEX CONCURRENTLY). Transaction-scoped, so it holds behind PgBouncer in transaction
 *   mode (a session lock would stay on a server connection that is lent to others). Waiters retry every
 *   250 ms in short transactions: a waiter blocked inside one would hold a snapshot that CREATE INDEX
 *   CONCURRENTLY waits for, while the lock holder waits for that index. The holder's transaction lifts
 *   `idle_in_transaction_session_timeout` (DB_STATEMENT_TIMEOUT_MS otherwise) for itself: it is idle throughout.
 * - MariaDB/MySQL: `GET_LOCK` on a connection of its own (session-scoped: MySQL has no transaction-scoped
 *   named lock; DDL commits implicitly anyway), named after the database.
 * - SQLite: its write lock — the migrations run in one `BEGIN IMMEDIATE` transaction on the one
 *   connection, foreign keys off around it as TypeORM does (database/dialects/sqlite.ts turns BEGIN into BEGIN IMMEDIATE).
 * Returns the migrations this instance applied (empty when another did). Throws what a migration throws;
 * the lock is released in every case (and by the server when the process dies).
 */
export async function runMigrationsExclusively(
  dataSource: DataSource,
  logger: MigrationLockLogger = { log: () => undefined },
): Promise<Migration[]> {
  const waiting = onceOnly(() => logger.log('Another instance is applying the migrations: waiting for it'));
  const type = dataSource.options.type;
  if (type === 'postgres') return withPostgresLock(dataSource, waiting, () => dataSource.runMigrations());
  if (type === 'mysql' || type === 'mariadb') {
    return withMysqlLock(dataSource, waiting, () => dataSource.runMigrations());
  }
  if (type === 'better-sqlite3') return inSqliteWriteTransaction(dataSource, waiting);
  throw new Error(`runMigrationsExclusively: no migration lock for ${type}`);
}

async function withPostgresLock<T>(dataSource: DataSource, waiting: () => void, work: () => Promise<T>): Promise<T> {
  const holder = dataSource.createQueryRunner();
  try {
    for (;;) {
      await holder.startTransaction();
      const [{ locked }] = (await holder.query('SELECT pg_try_advisory_xact_lock(hashtext($1)) AS locked', [
        LOCK_NAME,
      ])) as { locked: boolean }[];
      if (locked) {
        // Idle while the migrations run, which may outlast DB_STATEMENT_TIMEOUT_MS: the server must not end it.
        await holder.query('SET LOCAL idle_in_transaction_session_timeout = 0');
        break;
      }
      await holder.rollbackTransaction();
      waiting();
      await sleep(RETRY_MS);
    }
    return await work();
  } finally {
    if (holder.isTransactionActive) await holder.commitTransaction().catch(() => undefined); // releases the lock
    await holder.release();
  }
}

async function withMysqlLock<T>(dataSource: DataSource, waiting: () => void, work: () => Promise<T>): Promise<T> {
  const holder = dataSource.createQueryRunner();
  // A lock name is server-wide (≤ 64 characters): this database's, so other databases do not wait.
  const name = "CONCAT('migrations:', SHA1(DATABASE()))";
  try {
    for (;;) {
      const [{ locked }] = (await holder.query(`SELECT GET_LOCK(${name}, 1) AS locked`)) as { locked: number | null }[];
      if (locked === 1) break;
      waiting();
    }
    try {
      return await work();
    } finally {
      await holder.query(`SELECT RELEASE_LOCK(${name})`).catch(() => undefined);
    }
  } finally {
    await holder.release();
  }
}

async function inSqliteWriteTransaction(dataSource: DataSource, waiting: () => void): Promise<Migration[]> {
  const runner = dataSource.createQueryRunner();
  await runner.beforeMigration(); // PRAGMA foreign_keys = OFF: it works only outside a transaction
  try {
    await beginImmediate(runner, waiting);
    try {
      const executor = new MigrationExecutor(dataSource, runner);
      executor.transaction = 'none'; // they run inside the transaction begun above
      const applied = await executor.executePendingMigrations();
      await runner.commitTransaction();
      return applied;
    } catch (error) {
      await runner.rollbackTransaction().catch(() => undefined);
      throw error;
    }
  } finally {
    await runner.afterMigration();
  }
}

/** BEGIN (IMMEDIATE, see database/dialects/sqlite.ts) on `runner`, retried while another process holds the write lock. */
async function beginImmediate(runner: QueryRunner, waiting: () => void): Promise<void> {
  for (;;) {
    try {
      await runner.startTransaction();
      return;
    } catch (error) {
      (runner as { isTransactionActive: boolean }).isTransactionActive = false; // TypeORM sets it before BEGIN
      const code = (error as { driverError?: { code?: string } }).driverError?.code ?? '';
      if (!code.startsWith('SQLITE_BUSY')) throw error;
      waiting();
      await sleep(RETRY_MS);
    }
  }
}

function onceOnly(action: () => void): () => void {
  let done = false;
  return () => {
    if (!done) action();
    done = true;
  };
}
