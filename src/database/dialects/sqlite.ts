import { AsyncLocalStorage } from 'node:async_hooks';
import { EventEmitter } from 'node:events';
import { statSync } from 'node:fs';
import type { DataSource, EntityMetadata, QueryRunner } from 'typeorm';
import type { DatabaseConfig } from '../../config/app.config';

/**
 * Everything the service does differently on SQLite (better-sqlite3 12, the only SQLite driver of
 * TypeORM 1.x) that is not SQL text: the file a `sqlite:` URL names, how each connection is set up,
 * and the gate that makes one connection safe for concurrent requests. The SQL text that differs
 * lives in the repositories and in migrations/sqlite/.
 */

/**
 * The database file a `sqlite:` URL names: `sqlite:./.data/app.db` and `sqlite:/abs/app.db` are paths
 * (relative to the working directory), `sqlite::memory:` a private in-memory database that lives as
 * long as the process. `sqlite://` is refused: it is ambiguous between a host and a path.
 */
export function sqliteDatabasePath(url: string): string {
  const path = url.replace(/^sqlite:/i, '');
  if (path === ':memory:') return ':memory:';
  if (!path || path.startsWith('//')) {
    throw new Error(`DATABASE_URL ${url}: write sqlite:./path/to.db, sqlite:/absolute/path.db or sqlite::memory:`);
  }
  return decodeURIComponent(path);
}

/**
 * The better-sqlite3 part of the DataSource options. SQLite has one writer and TypeORM one
 * connection per SQLite database, so the pool settings mean something else here (README, Databases):
 * DB_POOL_TIMEOUT_MS bounds both the wait for the connection (SqliteGate: 503 past it) and SQLite's
 * busy timeout (another process, e.g. `npm run db:seed`, holding the write lock); DB_POOL_SIZE,
 * DB_POOL_MAX_OVERFLOW and DB_POOL_IDLE_TIMEOUT_MS do not apply.
 */
export function sqliteOptions(config: DatabaseConfig & { url: string }) {
  const database = sqliteDatabasePath(config.url);
  return {
    type: 'better-sqlite3' as const,
    database,
    timeout: config.poolTimeoutMs,
    // WAL: readers in other processes (a backup, the sqlite3 shell) never block the app's writer.
    enableWAL: database !== ':memory:',
    prepareDatabase: prepareSqliteConnection,
  };
}

/** The subset of a better-sqlite3 Statement this module uses. */
interface SqliteStatement {
  reader: boolean;
  columns(): { name: string; type: string | null }[];
  all(...parameters: unknown[]): Record<string, unknown>[];
  get(...parameters: unknown[]): Record<string, unknown> | undefined;
  run(...parameters: unknown[]): unknown;
}

/** The subset of a better-sqlite3 Database this module uses. */
interface SqliteConnection {
  function(name: string, options: { deterministic: boolean }, fn: (value: unknown) => unknown): unknown;
  pragma(source: string, options?: { simple?: boolean }): unknown;
  prepare(source: string): SqliteStatement;
}

/**
 * Runs on every connection before TypeORM uses it:
 * - `lower()` becomes JavaScript's Unicode lower-casing. SQLite's own folds ASCII only, so the unique
 *   index users_email_lower_key on lower(email) would let `ÉMILE@x` and `émile@x` both in; with this
 *   one it matches PostgreSQL's lower() in a UTF-8 database (the API stores NFC). Consequence: write
 *   the users table only through this app (README, Databases) — the sqlite3 shell's lower() differs.
 * - foreign keys on (SQLite's default is off; TypeORM also sets it, but only after this hook).
 */
export function prepareSqliteConnection(connection: SqliteConnection): void {
  connection.function('lower', { deterministic: true }, (value) =>
    typeof value === 'string' ? value.toLowerCase() : value,
  );
  connection.pragma('foreign_keys = ON');
  typeTimestamps(connection);
}

/**
 * Timestamps as Dates both ways, as pg and mysql2 give them, so plain-SQL reads (the repositories'
 * portable statements) return what PostgreSQL's do: a column declared `datetime` comes back as a
 * Date (better-sqlite3 gives its text), and a Date parameter is bound as the stored text (better-sqlite3
 * refuses Dates). Only columns read as they are carry their declared type: `max(created_at)` stays text.
 */
function typeTimestamps(connection: SqliteConnection): void {
  const prepare = connection.prepare.bind(connection);
  const bindable = (parameters: unknown[]) =>
    parameters.map((value) => (value instanceof Date ? toSqliteTimestamp(value) : value));
  connection.prepare = (source) => {
    const statement = prepare(source);
    const { all, get, run } = {
      all: statement.all.bind(statement),
      get: statement.get.bind(statement),
      run: statement.run.bind(statement),
    };
    statement.run = (...parameters) => run(...bindable(parameters));
    if (!statement.reader) return statement;
    const dates = statement.columns().flatMap(({ name, type }) => (type?.toLowerCase() === 'datetime' ? [name] : []));
    const typed = (row: Record<string, unknown> | undefined) => {
      if (row) for (const name of dates) row[name] = fromSqliteTimestamp(row[name]);
      return row;
    };
    statement.all = (...parameters) => {
      const rows = all(...bindable(parameters));
      if (dates.length > 0) rows.forEach(typed);
      return rows;
    };
    statement.get = (...parameters) => typed(get(...bindable(parameters)));
    return statement;
  };
}

/** The SQL of "now" as SQLite stores timestamps: UTC `YYYY-MM-DD HH:MM:SS.SSS`, as TypeORM writes Dates. */
export const SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f','now')";

/**
 * A Date as SQLite stores it (`2026-11-30 08:58:24.490`): the text TypeORM binds for Dates, which
 * compares in time order. better-sqlite3 cannot bind a Date itself.
 */
export function toSqliteTimestamp(date: Date): string {
  return date.toISOString().replace('T', ' ').replace('Z', '');
}

/** A stored SQLite timestamp (see toSqliteTimestamp; seconds-only text too) as a Date; other values unchanged. */
export function fromSqliteTimestamp(value: unknown): unknown {
  return typeof value === 'string' ? new Date(`${value.replace(' ', 'T')}Z`) : value;
}

/** Thrown when a request waited DB_POOL_TIMEOUT_MS for the SQLite connection: 503 (database-errors.ts). */
export class SqliteGateTimeout extends Error {
  readonly code = 'SQLITE_BUSY_TIMEOUT';
}

interface Lease {
  held: boolean;
}

/**
 * TypeORM runs every statement of a SQLite DataSource on ONE connection and one QueryRunner (its
 * transaction state included). Unguarded, a request's read would run inside another request's open
 * transaction and see its uncommitted rows, a write would join it (and vanish with its rollback), and
 * a second BEGIN would become a SAVEPOINT of the first. The gate serializes instead:
 * - a transaction (inTransaction → `exclusive`) holds the connection from BEGIN to COMMIT/ROLLBACK;
 *   statements from inside it (AsyncLocalStorage) pass, everyone else's wait;
 * - a statement outside any transaction takes the connection for itself alone;
 * - a transaction TypeORM opens by itself (a bare `save()`, the seed, migrations) holds it the same
 *   way from its BEGIN; it has no context to tell its statements from others', so while it is open
 *   every statement passes: the app opens none (services own transactions, through inTransaction).
 * The wait is bounded by DB_POOL_TIMEOUT_MS, as a pool's acquire timeout is: SqliteGateTimeout, 503.
 * One gate per process: one SQLite database per process is what the app opens.
 */
export class SqliteGate {
  private tail: Promise<void> = Promise.resolve();
  private readonly lease = new AsyncLocalStorage<Lease>();
  private anonymous: (() => void) | undefined;
  private timeoutMs = 5_000;
  private installed = 0;
  private waiters = 0;
  private holders = 0;
  /** Each wait for the connection, as pools report theirs: milliseconds, and whether it timed out. */
  readonly waits = new EventEmitter<{ acquired: [ms: number, timedOut: boolean] }>();

  /** The connection as a pool of one, for the pool gauges (metrics/database-metrics.ts). */
  stats(): { total: number; idle: number; max: number; waiting: number } {
    return { total: 1, idle: this.holders > 0 ? 0 : 1, max: 1, waiting: this.waiters };
  }

  /** True while a SQLite DataSource is gated (exclusive() is a plain call otherwise, e.g. on PostgreSQL). */
  get active(): boolean {
    return this.installed > 0;
  }

  /**
   * Runs `work` holding the connection: after every earlier holder released it, and alone until
   * `work` settles. A holder calling it again just runs `work`. Throws SqliteGateTimeout when the
   * connection did not become free within the timeout.
   */
  async exclusive<T>(work: () => Promise<T>): Promise<T> {
    if (!this.active || this.lease.getStore()?.held) return work();
    const release = await this.acquire();
    const lease: Lease = { held: true };
    try {
      return await this.lease.run(lease, work);
    } finally {
      lease.held = false; // a promise that escaped `work` must queue like anyone else from now on
      release();
    }
  }

  /**
   * A statement of TypeORM's own transaction (see install). A plain COMMIT or ROLLBACK ends it (nested
   * levels use SAVEPOINTs) and hands the connection on; a COMMIT that failed leaves it open, for the
   * ROLLBACK TypeORM sends next.
   */
  private async inAnonymous<T>(sql: string, statement: () => Promise<T>): Promise<T> {
    let ended = sql === 'ROLLBACK';
    try {
      const result = await statement();
      ended ||= sql === 'COMMIT';
      return result;
    } finally {
      if (ended) this.releaseAnonymous();
    }
  }

  /** Ends the hold of TypeORM's own transaction (see install). */
  private releaseAnonymous(): void {
    const release = this.anonymous;
    this.anonymous = undefined;
    release?.();
  }

  /** Waits for the connection (in arrival order); resolves to the function that hands it on. */
  private async acquire(): Promise<() => void> {
    let release!: () => void;
    const previous = this.tail;
    this.tail = new Promise<void>((resolve) => (release = resolve));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.timeoutMs);
    });
    const started = performance.now();
    this.waiters++;
    const outcome = await Promise.race([previous, timedOut]);
    this.waiters--;
    clearTimeout(timer);
    this.waits.emit('acquired', performance.now() - started, outcome === 'timeout');
    if (outcome === 'timeout') {
      void previous.then(release); // our turn is skipped, not lost: the queue behind us moves on
      throw new SqliteGateTimeout(`waited ${this.timeoutMs} ms for the SQLite connection (DB_POOL_TIMEOUT_MS)`);
    }
    this.holders++;
    return () => {
      this.holders--;
      release();
    };
  }

  /**
   * Puts `dataSource`'s QueryRunner behind the gate (see the class). Also: BEGIN becomes BEGIN
   * IMMEDIATE (the write lock from the start, so a read-then-write never fails to upgrade when another
   * process writes), and constraint violations are named (nameForeignKeyViolation, then the
   * DataSource's SqliteConstraintNames): SQLite's errors do not say which key failed. Returns those
   * names (learn() them again after migrations); undefined on other dialects.
   */
  install(dataSource: DataSource): SqliteConstraintNames | undefined {
    if (dataSource.options.type !== 'better-sqlite3') return undefined;
    const timeoutMs = dataSource.options.timeout ?? 5_000;
    const runner = dataSource.driver.createQueryRunner('master'); // the one runner TypeORM hands everyone
    const marked = runner as QueryRunner & { gated?: SqliteConstraintNames };
    if (marked.gated) return marked.gated;
    const names = new SqliteConstraintNames(dataSource);
    marked.gated = names;
    this.installed++;
    this.timeoutMs = timeoutMs;
    const file = openedFile(dataSource.options.database);
    const query = runner.query.bind(runner) as RawQuery;
    const run = async (sql: string, parameters?: unknown[], structured?: boolean) => {
      file?.assertStillThere();
      if (sql === 'BEGIN TRANSACTION') return query('BEGIN IMMEDIATE TRANSACTION');
      try {
        return await query(sql, parameters, structured);
      } catch (error) {
        await nameForeignKeyViolation(error, sql, parameters, query, dataSource.entityMetadatas);
        names.nameIn(error, sql);
        throw error;
      }
    };
    runner.query = (async (sql: string, parameters?: unknown[], structured?: boolean) => {
      if (this.lease.getStore()?.held) return run(sql, parameters, structured);
      if (this.anonymous) return this.inAnonymous(sql, () => run(sql, parameters, structured));
      if (sql !== 'BEGIN TRANSACTION') return this.exclusive(() => run(sql, parameters, structured));
      // TypeORM's own transaction outside inTransaction: hold the connection until its COMMIT/ROLLBACK.
      this.anonymous = await this.acquire();
      try {
        return await run(sql, parameters, structured);
      } catch (error) {
        this.releaseAnonymous();
        throw error;
      }
    }) as QueryRunner['query'];
    const destroy = dataSource.destroy.bind(dataSource);
    dataSource.destroy = async () => {
      this.installed--;
      return destroy();
    };
    return names;
  }
}

/**
 * The database file the connection opened, by identity (device and inode), or undefined for
 * `:memory:`. assertStillThere() throws a SQLITE_CANTOPEN error (503, translateSqliteError) once the
 * file was removed or replaced under the app: SQLite keeps writing to the unlinked file and would
 * acknowledge writes that vanish at the next start. One stat per statement.
 */
function openedFile(path: unknown): { assertStillThere(): void } | undefined {
  if (typeof path !== 'string' || path === '' || path === ':memory:') return undefined;
  const opened = statSync(path);
  return {
    assertStillThere() {
      const now = statSync(path, { throwIfNoEntry: false });
      if (now && now.ino === opened.ino && now.dev === opened.dev) return;
      throw Object.assign(new Error(`the SQLite database file ${path} was removed or replaced while open: restart`), {
        code: 'SQLITE_CANTOPEN',
      });
    },
  };
}

/** The process's gate (see SqliteGate); inTransaction holds it for a transaction's length. */
export const sqliteGate = new SqliteGate();

type RawQuery = (sql: string, parameters?: unknown[], structured?: boolean) => Promise<unknown>;

/**
 * SQLite's foreign key error names no key. The statement that failed is run again inside a savepoint
 * with the keys checked only at its end (`defer_foreign_keys`): `PRAGMA foreign_key_check` then lists
 * the offending row and the key's number in its table, which the entity metadata turns into the
 * key's name (e.g. comments_post_id_fkey), and the row gives the missing id (pg's `detail`). Then the
 * savepoint is rolled back: nothing of the probe remains, and the error is thrown as before, at the
 * statement (as on PostgreSQL: before anything else the request would have checked). The name goes
 * on the driver error as `constraint`, where database-errors.ts reads PostgreSQL's.
 */
async function nameForeignKeyViolation(
  error: unknown,
  sql: string,
  parameters: unknown[] | undefined,
  query: RawQuery,
  metadatas: readonly EntityMetadata[],
): Promise<void> {
  const driverError = (error as { driverError?: { code?: string; constraint?: string; detail?: string } }).driverError;
  if (driverError?.code !== 'SQLITE_CONSTRAINT_FOREIGNKEY' || !/^\s*(INSERT|UPDATE)\b/i.test(sql)) return;
  await query('SAVEPOINT foreign_key_probe');
  try {
    await query('PRAGMA defer_foreign_keys = ON');
    await query(sql, parameters);
    const [violation] = (await query('PRAGMA foreign_key_check')) as { table: string; rowid: number; fkid: number }[];
    if (!violation) return;
    const keys = (await query(`PRAGMA foreign_key_list("${violation.table}")`)) as { id: number; from: string }[];
    const columns = keys.filter((key) => key.id === violation.fkid).map((key) => key.from);
    driverError.constraint = foreignKeyName(metadatas, violation.table, columns);
    if (columns.length !== 1) return;
    const [row] = (await query(`SELECT "${columns[0]}" AS value FROM "${violation.table}" WHERE rowid = ?`, [
      violation.rowid,
    ])) as { value: number | string | null }[];
    driverError.detail = `Key (${columns[0]})=(${String(row?.value ?? '')}) is not present`;
  } catch {
    // The probe failed otherwise (e.g. a unique key): the error stays unnamed, a 422 all the same.
  } finally {
    await query('ROLLBACK TO foreign_key_probe');
    await query('RELEASE foreign_key_probe');
    await query('PRAGMA defer_foreign_keys = OFF');
  }
}

/** The name the entities give the foreign key of `table` on `columns`, or undefined. */
export function foreignKeyName(
  metadatas: readonly EntityMetadata[],
  table: string,
  columns: string[],
): string | undefined {
  const metadata = metadatas.find((candidate) => candidate.tableName === table);
  return metadata?.foreignKeys.find(
    (key) => key.columnNames.length === columns.length && key.columnNames.every((name) => columns.includes(name)),
  )?.name;
}

/**
 * The constraint names SQLite's errors leave out, of one database: every unique index its schema has
 * (CREATE UNIQUE INDEX keeps its name, e.g. users_email_lower_key on users(email_lower)), the entities'
 * named unique keys, and each table's foreign keys. An adapter created once per DataSource, when
 * SqliteGate.install puts it behind the gate, whose statements it names the errors of (nameIn); call
 * learn() again after migrations ran on that connection (a new database has no indexes before), else
 * a duplicate's 409 cannot name its field until the next start.
 */
export class SqliteConstraintNames {
  /** Unique keys by what SQLite's error says instead: `table(column, …)`. */
  private readonly unique = new Map<string, string>();
  /** Each table's named foreign keys. */
  private readonly foreignKeys = new Map<string, string[]>();

  constructor(private readonly dataSource: DataSource) {
    this.learn();
  }

  /** Reads the names from the schema and the entity metadata (again). */
  learn(): void {
    const connection = (this.dataSource.driver as unknown as { databaseConnection: SqliteConnection })
      .databaseConnection;
    const pragma = <T>(source: string) => connection.pragma(source) as T[];
    const tables = pragma<{ schema: string; name: string; type: string }>('table_list').filter(
      (table) => table.schema === 'main' && table.type === 'table',
    );
    for (const { name: table } of tables) {
      for (const index of pragma<{ name: string; unique: number; origin: string }>(`index_list("${table}")`)) {
        if (!index.unique || index.origin !== 'c') continue; // pk / inline UNIQUE: sqlite_autoindex_… names
        const columns = pragma<{ name: string | null }>(`index_info("${index.name}")`).map((column) => column.name);
        if (columns.every(Boolean)) this.unique.set(`${table}(${columns.join(', ')})`, index.name);
      }
    }
    for (const metadata of this.dataSource.entityMetadatas) {
      for (const { name, columns } of metadata.uniques) {
        this.unique.set(`${metadata.tableName}(${columns.map((column) => column.databaseName).join(', ')})`, name);
      }
      this.foreignKeys.set(
        metadata.tableName,
        metadata.foreignKeys.flatMap((key) => (key.name ? [key.name] : [])),
      );
    }
  }

  /**
   * Puts the constraint's name on the driver error of `sql`, where translateSqliteError reads it (as
   * PostgreSQL's `constraint`): a unique violation reported by its columns (`users.email`), or a
   * foreign key violation of an INSERT/UPDATE not already named (nameForeignKeyViolation) on a table
   * with one foreign key only. Other errors are left as they are.
   */
  nameIn(error: unknown, sql: string): void {
    const driverError = (error as { driverError?: { code?: string; message?: string; constraint?: string } })
      .driverError;
    if (!driverError || driverError.constraint) return;
    const { code = '', message = '' } = driverError;
    if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
      const columns = /constraint failed: (.+)$/.exec(message)?.[1].split(', ');
      const table = columns?.[0].split('.')[0];
      const key = columns && `${table}(${columns.map((column) => column.split('.')[1]).join(', ')})`;
      driverError.constraint = key && this.unique.get(key);
    } else if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
      const table = /^\s*(?:INSERT\s+INTO|UPDATE)\s+"?(\w+)"?/i.exec(sql)?.[1];
      const keys = (table && this.foreignKeys.get(table)) || [];
      if (keys.length === 1) driverError.constraint = keys[0];
    }
  }
}

/** A better-sqlite3 error as database-errors.ts reads it: PostgreSQL's SQLSTATE, the constraint's name. */
export interface TranslatedSqliteError {
  code: string;
  constraint?: string;
  detail?: string;
}

/**
 * SQLite's error in PostgreSQL's terms, so one translation (database/errors/database-errors.ts) serves both:
 * - SQLITE_CONSTRAINT_UNIQUE / _PRIMARYKEY → 23505. The message names an expression index
 *   (`index 'users_email_lower_key'`), else the constraint is the one SqliteConstraintNames.nameIn put
 *   on the error from its columns (`users.email`).
 * - SQLITE_CONSTRAINT_FOREIGNKEY → 23503, as named by nameForeignKeyViolation or nameIn. A DELETE:
 *   still referenced.
 * - _CHECK → 23514, _NOTNULL → 23502, a value too big or of the wrong type → 22000.
 * - busy/locked (another process held the write lock past the busy timeout), the gate's timeout, a
 *   full disk, an I/O error, a file that cannot be opened or written → 57P03 (503, retry shortly).
 * Undefined: not a SQLite error.
 */
export function translateSqliteError(
  driverError: { code?: string; message?: string; constraint?: string; detail?: string },
  sql = '',
): TranslatedSqliteError | undefined {
  const { code = '', message = '' } = driverError;
  if (!code.startsWith('SQLITE_')) return undefined;
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    const index = /index '([^']+)'/.exec(message)?.[1];
    return { code: '23505', constraint: index ?? driverError.constraint };
  }
  if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
    if (/^\s*DELETE/i.test(sql)) return { code: '23503', detail: 'still referenced' };
    return { code: '23503', constraint: driverError.constraint, detail: driverError.detail };
  }
  if (code === 'SQLITE_CONSTRAINT_CHECK') return { code: '23514' };
  if (code === 'SQLITE_CONSTRAINT_NOTNULL') return { code: '23502' };
  if (['SQLITE_TOOBIG', 'SQLITE_MISMATCH', 'SQLITE_RANGE'].includes(code)) return { code: '22000' };
  if (/^SQLITE_(BUSY|LOCKED|FULL|IOERR|CANTOPEN|READONLY|PROTOCOL|NOLFS)/.test(code)) return { code: '57P03' };
  return undefined;
}
