import { Inject, Injectable } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import type { SqlDialect } from '../database/dialects/dialect';
import { SQL_DIALECT } from '../database/dialects/sql-dialect.module';
import { queryInTransaction, queryRows } from '../database/reads/pool-queries';
import { inTransaction } from '../database/transactions/transactions';

/** A key's committed row, as the interceptor needs it. */
export interface StoredKey {
  fingerprint: string;
  responseStatus: number;
  responseHeaders: string;
  responseBody: string;
  expiresAt: Date;
}

/** A stored response: status, the headers that matter as a JSON object, and the body as sent. */
export interface KeyResponse {
  status: number;
  headers: string;
  body: string;
}

/** What a new key row holds: who, which key, which request, until when. */
export interface NewKey {
  scope: string;
  keyHash: string;
  fingerprint: string;
  createdAt: Date;
  expiresAt: Date;
  /**
   * The per-caller cap (see IdempotencyKeyCount): at most `max` keys stored in the window starting at
   * `windowStart` and the one before (milliseconds since the epoch, `windowMs` long). Undefined: no cap
   * and no counting (anonymous sign-up, bounded by the rate limit).
   */
  cap?: { max: number; windowStart: number; windowMs: number };
}

/**
 * What find() read: the key's committed, live row (`stored`), else whether the scope is at its cap
 * (`full`), else `absent`.
 */
export type KeyLookup = { state: 'stored'; stored: StoredKey } | { state: 'full' } | { state: 'absent' };

/** One statement of one dialect: its text, and its parameters in the order the text binds them. */
interface Statement<A> {
  sql: string;
  bind: (args: A) => unknown[];
}

/** The row lookup reads: the key's row (all null when there is none) and the cap's count. */
interface LookupRow {
  fingerprint: string | null;
  responseStatus: number | null;
  responseHeaders: string | null;
  responseBody: string | null;
  expiresAt: Date | string | null;
  stored: number | string | null;
}

/** One dialect's statements. */
interface Statements {
  /**
   * Inserts a key with its response, unless the key has a row (committed, or inserted by a transaction
   * still open: the statement waits for it to end) or the scope is at its cap. PostgreSQL: also +1 on
   * the scope's counter of the window, in the same statement (a data-modifying CTE).
   */
  store: Statement<{ key: NewKey; response: KeyResponse }>;
  /** Portable: +1 on the scope's counter of the window, a statement of its own. */
  countKey?: Statement<NewKey>;
  /** The key's committed row (if any) and the scope's count. */
  lookup: Statement<NewKey>;
  /** Forgets one expired key; returns a row (PostgreSQL, SQLite) or affectedRows (MySQL) if it did. */
  deleteExpired: Statement<{ scope: string; keyHash: string; now: Date }>;
  /** Deletes up to `limit` keys expired at `now`, oldest first. */
  purgeKeys: Statement<{ now: Date; limit: number }>;
  /** Deletes the counters of windows that started before `before` (ms since the epoch). */
  purgeCounts: Statement<{ before: number }>;
}

/** The columns a key row is inserted with. */
const COLUMNS =
  'idempotency_keys (scope, key_hash, fingerprint, created_at, expires_at, response_status, response_headers, response_body)';
/** What lookup reads of the key's row. */
const ROW =
  'k.fingerprint, k.response_status AS "responseStatus", k.response_headers AS "responseHeaders", k.response_body AS "responseBody", k.expires_at AS "expiresAt"';
/**
 * The scope's keys stored in the window and the one before (0 without counters): at most
 * 2 × COUNTER_SHARDS rows, a range of the primary key.
 */
const STORED = (scope: string, previous: string, current: string) =>
  `(SELECT coalesce(sum(c.key_count), 0) FROM idempotency_key_counts c WHERE c.scope = ${scope} AND c.window_start IN (${previous}, ${current}))`;

/** A key's cap, as the statements' parameters: no cap is a limit no count reaches. */
const capOf = (key: NewKey) =>
  key.cap
    ? { max: key.cap.max, previous: key.cap.windowStart - key.cap.windowMs, current: key.cap.windowStart }
    : { max: 2 ** 31 - 1, previous: 0, current: 0 };

/** The window counter's parameters; only called for a capped key. */
const windowOf = (key: NewKey) => key.cap?.windowStart ?? 0;

/** How many counter rows a caller's window is spread over (IdempotencyKeyCount.shard). */
export const COUNTER_SHARDS = 16;
/** The counter row a key increments: from its hash (a SHA-256 in hex), so spread evenly. */
const shardOf = (key: NewKey) => Number.parseInt(key.keyHash.slice(0, 4), 16) % COUNTER_SHARDS;

/**
 * PostgreSQL: `$n` with types (a parameter used twice must be deduced alike), RETURNING, data-modifying
 * CTEs. The store's advisory try-lock is what keeps it from waiting on a concurrent store of the key
 * (which ON CONFLICT would wait for): whichever store comes second inserts nothing at once.
 */
const POSTGRES: Statements = {
  store: {
    sql:
      `WITH stored AS (INSERT INTO ${COLUMNS} ` +
      'SELECT $1::text, $2::text, $3::text, $4::timestamptz, $5::timestamptz, $6::int, $7::text, $8::text ' +
      "WHERE pg_try_advisory_xact_lock(hashtextextended($1::text || ':' || $2::text, 0)) " +
      `AND ${STORED('$1::text', '$10::bigint', '$11::bigint')} < $9::int ON CONFLICT DO NOTHING RETURNING scope), ` +
      'counted AS (INSERT INTO idempotency_key_counts (scope, window_start, shard, key_count) SELECT scope, $11::bigint, $13::smallint, 1 FROM stored ' +
      'WHERE $12::boolean ON CONFLICT (scope, window_start, shard) DO UPDATE SET key_count = idempotency_key_counts.key_count + 1) ' +
      'SELECT 1 FROM stored',
    bind: ({ key, response }) => {
      const cap = capOf(key);
      return [
        key.scope,
        key.keyHash,
        key.fingerprint,
        key.createdAt,
        key.expiresAt,
        response.status,
        response.headers,
        response.body,
        cap.max,
        cap.previous,
        cap.current,
        key.cap !== undefined,
        shardOf(key),
      ];
    },
  },
  lookup: {
    sql:
      `SELECT ${ROW}, ${STORED('$1::text', '$3::bigint', '$4::bigint')} AS stored ` +
      'FROM (SELECT) AS one LEFT JOIN idempotency_keys k ON k.scope = $1::text AND k.key_hash = $2::text',
    bind: (key) => {
      const cap = capOf(key);
      return [key.scope, key.keyHash, cap.previous, cap.current];
    },
  },
  deleteExpired: {
    sql: 'DELETE FROM idempotency_keys WHERE scope = $1 AND key_hash = $2 AND expires_at <= $3 RETURNING 1',
    bind: ({ scope, keyHash, now }) => [scope, keyHash, now],
  },
  purgeKeys: {
    // Skips rows another transaction has locked (an expired key being stored anew): purges never wait.
    sql:
      'DELETE FROM idempotency_keys WHERE (scope, key_hash) IN (SELECT scope, key_hash FROM idempotency_keys ' +
      'WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)',
    bind: ({ now, limit }) => [now, limit],
  },
  purgeCounts: {
    sql: 'DELETE FROM idempotency_key_counts WHERE window_start < $1',
    bind: ({ before }) => [before],
  },
};

/** The store's parameters on MySQL and SQLite, in the order their text binds them. */
const portableStore = ({ key, response }: { key: NewKey; response: KeyResponse }) => {
  const cap = capOf(key);
  return [
    key.scope,
    key.keyHash,
    key.fingerprint,
    key.createdAt,
    key.expiresAt,
    response.status,
    response.headers,
    response.body,
    key.scope,
    cap.previous,
    cap.current,
    cap.max,
  ];
};

/** The statements MySQL/MariaDB and SQLite share: `?` placeholders, the count a statement of its own. */
const PORTABLE = {
  lookup: {
    sql:
      `SELECT ${ROW}, ${STORED('?', '?', '?')} AS stored ` +
      'FROM (SELECT 1 AS one) AS one LEFT JOIN idempotency_keys k ON k.scope = ? AND k.key_hash = ?',
    bind: (key: NewKey) => {
      const cap = capOf(key);
      return [key.scope, cap.previous, cap.current, key.scope, key.keyHash];
    },
  },
  purgeCounts: {
    sql: 'DELETE FROM idempotency_key_counts WHERE window_start < ?',
    bind: POSTGRES.purgeCounts.bind,
  },
} satisfies Partial<Statements>;

/**
 * MySQL/MariaDB. No wait for a key row another transaction inserted: `SET STATEMENT
 * innodb_lock_wait_timeout = 0` (MariaDB; MySQL 8 ignores the MariaDB-only comment and waits up to its
 * innodb_lock_wait_timeout); store() reads the lock wait timeout as "not stored". IGNORE: a committed
 * duplicate is skipped and not counted (ON DUPLICATE KEY UPDATE would count it: mysql2 connects with
 * FOUND_ROWS). The cap's read is a consistent read (READ COMMITTED): it locks no counter.
 */
const MYSQL: Statements = {
  ...PORTABLE,
  store: {
    sql:
      `/*M! SET STATEMENT innodb_lock_wait_timeout = 0 FOR */ INSERT IGNORE INTO ${COLUMNS} SELECT ?, ?, ?, ?, ?, ?, ?, ? FROM DUAL ` +
      `WHERE ${STORED('?', '?', '?')} < ?`,
    bind: portableStore,
  },
  countKey: {
    sql: 'INSERT INTO idempotency_key_counts (scope, window_start, shard, key_count) VALUES (?, ?, ?, 1) ON DUPLICATE KEY UPDATE key_count = key_count + 1',
    bind: (key) => [key.scope, windowOf(key), shardOf(key)],
  },
  deleteExpired: {
    sql: 'DELETE FROM idempotency_keys WHERE scope = ? AND key_hash = ? AND expires_at <= ?',
    bind: POSTGRES.deleteExpired.bind,
  },
  purgeKeys: {
    sql: 'DELETE FROM idempotency_keys WHERE expires_at <= ? ORDER BY expires_at LIMIT ?',
    bind: POSTGRES.purgeKeys.bind,
  },
};

/** SQLite: `WHERE` keeps the upsert clause from being parsed as part of the SELECT (SQLite's documented ambiguity). */
const SQLITE: Statements = {
  ...PORTABLE,
  store: {
    sql:
      `INSERT INTO ${COLUMNS} SELECT ?, ?, ?, ?, ?, ?, ?, ? ` +
      `WHERE ${STORED('?', '?', '?')} < ? ON CONFLICT DO NOTHING RETURNING 1`,
    bind: portableStore,
  },
  countKey: {
    sql:
      'INSERT INTO idempotency_key_counts (scope, window_start, shard, key_count) VALUES (?, ?, ?, 1) ' +
      'ON CONFLICT (scope, window_start, shard) DO UPDATE SET key_count = key_count + 1',
    bind: (key) => [key.scope, windowOf(key), shardOf(key)],
  },
  deleteExpired: {
    sql: 'DELETE FROM idempotency_keys WHERE scope = ? AND key_hash = ? AND expires_at <= ? RETURNING 1',
    bind: POSTGRES.deleteExpired.bind,
  },
  purgeKeys: {
    sql:
      'DELETE FROM idempotency_keys WHERE rowid IN (SELECT rowid FROM idempotency_keys WHERE expires_at <= ? ' +
      'ORDER BY expires_at LIMIT ?) RETURNING 1',
    bind: POSTGRES.purgeKeys.bind,
  },
  purgeCounts: {
    sql: 'DELETE FROM idempotency_key_counts WHERE window_start < ? RETURNING 1',
    bind: POSTGRES.purgeCounts.bind,
  },
};

/** ER_LOCK_WAIT_TIMEOUT: another transaction holds the key (MariaDB answers at once, see MYSQL). */
const MYSQL_LOCK_WAIT_TIMEOUT = 1205;

/** Which statements each dialect takes (see database/dialects/sql-dialect.ts). */
const SQL: Record<SqlDialect, Statements> = { postgres: POSTGRES, mysql: MYSQL, sqlite: SQLITE };

/**
 * All SQL on `idempotency_keys` and `idempotency_key_counts`. store() runs in the caller's
 * transaction — the write's own, so the key commits or rolls back with it; find() and the purges run
 * on the pool. A key is stored once, at the end of its write: a second request with the same key
 * inserts nothing, so of two writes with one key at most one commits. The store never waits for
 * another transaction holding the key (it would hold a pool connection meanwhile, and a stalled one
 * could hold it until its session ends): PostgreSQL's insert is guarded by
 * `pg_try_advisory_xact_lock` on a hash of scope and key, held to COMMIT/ROLLBACK; MariaDB's runs with
 * a zero lock wait; SQLite has one writer. The per-caller cap reads the window's counter rows (IdempotencyKeyCount), never counts keys;
 * the counter is incremented by the statement that stores the key (PostgreSQL) or the next one, so
 * its row is locked only from there to COMMIT. Concurrent writes of one caller may each pass the cap
 * before either counts: a caller exceeds it by at most the requests it has in flight at once
 * (bounded by the pool), so the table still cannot be filled.
 */
@Injectable()
export class IdempotencyRepository {
  private readonly sql: Statements;

  constructor(
    private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>,
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(SQL_DIALECT) private readonly dialect: SqlDialect,
  ) {
    this.sql = SQL[dialect];
  }

  /**
   * Stores the key with its response in the open transaction and counts it against its scope's cap
   * (capped keys only). An expired row of the key is replaced. False if the key has a live row, another
   * open transaction is storing it, or the scope is at its cap: nothing stored.
   */
  async store(key: NewKey, response: KeyResponse): Promise<boolean> {
    const db = this.txHost.tx;
    try {
      if (await this.inserted(db, key, response)) return true;
    } catch (error) {
      if ((error as { driverError?: { errno?: number } }).driverError?.errno === MYSQL_LOCK_WAIT_TIMEOUT) return false;
      throw error;
    }
    if (
      (await this.changed(db, this.sql.deleteExpired, {
        scope: key.scope,
        keyHash: key.keyHash,
        now: key.createdAt,
      })) === 0
    )
      return false;
    return this.inserted(db, key, response);
  }

  /** The key's committed row if it is live, else whether the scope is at its cap (on the pool). */
  async find(key: NewKey): Promise<KeyLookup> {
    const parameters = this.sql.lookup.bind(key);
    const [row] = await queryRows<LookupRow>(this.dataSource.manager, this.dialect, this.sql.lookup.sql, parameters);
    if (row?.fingerprint != null && row.responseStatus != null) {
      const expiresAt = row.expiresAt instanceof Date ? row.expiresAt : new Date(row.expiresAt!);
      if (expiresAt > key.createdAt) {
        const { fingerprint, responseStatus, responseHeaders, responseBody } = row;
        const stored = {
          fingerprint,
          responseStatus,
          responseHeaders: responseHeaders ?? '{}',
          responseBody: responseBody ?? '',
          expiresAt,
        };
        return { state: 'stored', stored };
      }
    }
    if (key.cap && Number(row?.stored ?? 0) >= key.cap.max) return { state: 'full' };
    return { state: 'absent' };
  }

  /**
   * Stores a 4xx outcome, whose write rolled back, in a transaction of its own (as store()). True if
   * stored; false if the key has a row by now (a concurrent retry won) or the scope is at its cap.
   */
  async insertOutcome(key: NewKey, response: KeyResponse): Promise<boolean> {
    return inTransaction(this.txHost, () => this.store(key, response));
  }

  /**
   * Deletes up to `limit` keys expired at `now`, oldest first, in one statement; returns how many.
   * PostgreSQL skips rows another transaction has locked, so purging instances never wait for each
   * other or for requests.
   */
  async purgeExpired(now: Date, limit: number): Promise<number> {
    return this.changed(this.dataSource.manager, this.sql.purgeKeys, { now, limit });
  }

  /** Deletes the counters of windows that started before `before` (ms since the epoch); returns how many. */
  async purgeCounts(before: number): Promise<number> {
    return this.changed(this.dataSource.manager, this.sql.purgeCounts, { before });
  }

  /** Whether store's INSERT inserted the key; then counts it (a statement of its own except on PostgreSQL). */
  private async inserted(db: EntityManager, key: NewKey, response: KeyResponse): Promise<boolean> {
    if ((await this.changed(db, this.sql.store, { key, response })) === 0) return false;
    if (key.cap && this.sql.countKey) await db.query(this.sql.countKey.sql, this.sql.countKey.bind(key));
    return true;
  }

  /**
   * Rows a write changed: its RETURNING rows (PostgreSQL, SQLite; TypeORM answers a PostgreSQL DELETE
   * … RETURNING outside queryInTransaction with [rows, rowCount]), affectedRows (MySQL). In a
   * transaction on PostgreSQL, on the transaction's own connection (queryInTransaction, past TypeORM's
   * QueryRunner, which costs more CPU per statement).
   */
  private async changed<A>(db: EntityManager, statement: Statement<A>, args: A): Promise<number> {
    const parameters = statement.bind(args);
    if (this.dialect === 'postgres' && db.queryRunner)
      return (await queryInTransaction(db, this.dialect, statement.sql, parameters)).length;
    const result = await db.query<unknown[] | { affectedRows: number }>(statement.sql, parameters);
    if (!Array.isArray(result)) return result.affectedRows;
    if (this.dialect === 'postgres') return result[1] as number;
    return result.length;
  }
}
