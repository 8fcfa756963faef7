import { Inject, Injectable } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager, QueryFailedError } from 'typeorm';
import type { SqlDialect } from '../database/dialects/dialect';
import { SQL_DIALECT } from '../database/dialects/sql-dialect.module';
import { queryInTransaction } from '../database/reads/pool-queries';
import { inTransaction } from '../database/transactions/transactions';

/** A key's row as the interceptor needs it. */
export interface StoredKey {
  fingerprint: string;
  /** Null only while the transaction that claimed it is open (never seen by others). */
  responseStatus: number | null;
  responseHeaders: string | null;
  responseBody: string | null;
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

/** What claim() found. */
export type Claim =
  { state: 'claimed' } | { state: 'taken'; stored: StoredKey } | { state: 'busy' } | { state: 'full' };

/** One statement of one dialect: its text, and its parameters in the order the text binds them. */
interface Statement<A> {
  sql: string;
  bind: (args: A) => unknown[];
}

/** The row claim's lookup reads: the key's row (all null when there is none) and the cap's count. */
interface ClaimRow {
  claimed?: boolean | number | string;
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
   * Inserts the key's row unless another request holds the key (PostgreSQL's try-lock; MariaDB's
   * zero lock wait), the key has a committed row, or the scope is at its cap. On PostgreSQL the same
   * statement also reads what claim() needs when it did not insert (`claimed`, the row, the count).
   */
  claim: Statement<NewKey>;
  /** The key's committed row (if any) and the scope's count: what claim() reads when it did not insert (portable). */
  lookup?: Statement<NewKey>;
  /** Stores the response of the request that claimed the key. */
  complete: Statement<{ key: NewKey; response: KeyResponse }>;
  /** PostgreSQL: complete, plus +1 on the scope's counter of the window, in one statement. */
  completeCounted?: Statement<{ key: NewKey; response: KeyResponse }>;
  /** Portable: +1 on the scope's counter of the window, a statement of its own. */
  countKey?: Statement<NewKey>;
  /** Inserts a key with its (4xx) response, unless the key has a row or the scope is at its cap. */
  insertOutcome: Statement<{ key: NewKey; response: KeyResponse }>;
  /** Forgets one expired key. */
  deleteExpired: Statement<{ scope: string; keyHash: string; now: Date }>;
  /** Deletes up to `limit` keys expired at `now`, oldest first. */
  purgeKeys: Statement<{ now: Date; limit: number }>;
  /** Deletes the counters of windows that started before `before` (ms since the epoch). */
  purgeCounts: Statement<{ before: number }>;
}

/** The columns a key row is inserted with. */
const COLUMNS = 'idempotency_keys (scope, key_hash, fingerprint, created_at, expires_at';
/** What claim() reads of the key's row. */
const ROW =
  'k.fingerprint, k.response_status AS "responseStatus", k.response_headers AS "responseHeaders", k.response_body AS "responseBody", k.expires_at AS "expiresAt"';
/** The scope's keys stored in the window and the one before (0 without counters): two rows by primary key. */
const STORED = (scope: string, previous: string, current: string) =>
  `(SELECT coalesce(sum(c.key_count), 0) FROM idempotency_key_counts c WHERE c.scope = ${scope} AND c.window_start IN (${previous}, ${current}))`;

/** A key's cap, as claim's parameters: no cap is a limit no count reaches. */
const capOf = (key: NewKey) =>
  key.cap
    ? { max: key.cap.max, previous: key.cap.windowStart - key.cap.windowMs, current: key.cap.windowStart }
    : { max: 2 ** 31 - 1, previous: 0, current: 0 };

/** The window counter's parameters; only called for a capped key. */
const windowOf = (key: NewKey) => key.cap?.windowStart ?? 0;

/** PostgreSQL: `$n` with types (a parameter used twice must be deduced alike), RETURNING, data-modifying CTEs. */
const POSTGRES: Statements = {
  claim: {
    sql:
      `WITH claimed AS (INSERT INTO ${COLUMNS}) SELECT $1::text, $2::text, $3::text, $4::timestamptz, $5::timestamptz ` +
      "WHERE pg_try_advisory_xact_lock(hashtextextended($1::text || ':' || $2::text, 0)) " +
      `AND ${STORED('$1::text', '$7::bigint', '$8::bigint')} < $6::int ON CONFLICT DO NOTHING RETURNING 1) ` +
      `SELECT EXISTS (SELECT FROM claimed) AS claimed, ${ROW}, ${STORED('$1::text', '$7::bigint', '$8::bigint')} AS stored ` +
      'FROM (SELECT) AS one LEFT JOIN idempotency_keys k ON k.scope = $1::text AND k.key_hash = $2::text',
    bind: (key) => {
      const cap = capOf(key);
      return [
        key.scope,
        key.keyHash,
        key.fingerprint,
        key.createdAt,
        key.expiresAt,
        cap.max,
        cap.previous,
        cap.current,
      ];
    },
  },
  complete: {
    sql: 'UPDATE idempotency_keys SET response_status = $1, response_headers = $2, response_body = $3 WHERE scope = $4 AND key_hash = $5',
    bind: ({ key, response }) => [response.status, response.headers, response.body, key.scope, key.keyHash],
  },
  completeCounted: {
    sql:
      'WITH counted AS (INSERT INTO idempotency_key_counts (scope, window_start, key_count) VALUES ($4, $6, 1) ' +
      'ON CONFLICT (scope, window_start) DO UPDATE SET key_count = idempotency_key_counts.key_count + 1) ' +
      'UPDATE idempotency_keys SET response_status = $1, response_headers = $2, response_body = $3 WHERE scope = $4 AND key_hash = $5',
    bind: ({ key, response }) => [
      response.status,
      response.headers,
      response.body,
      key.scope,
      key.keyHash,
      windowOf(key),
    ],
  },
  insertOutcome: {
    sql:
      `WITH stored AS (INSERT INTO ${COLUMNS}, response_status, response_headers, response_body) ` +
      'SELECT $1::text, $2::text, $3::text, $4::timestamptz, $5::timestamptz, $6::int, $7::text, $8::text ' +
      `WHERE ${STORED('$1::text', '$10::bigint', '$11::bigint')} < $9::int ON CONFLICT DO NOTHING RETURNING scope), ` +
      'counted AS (INSERT INTO idempotency_key_counts (scope, window_start, key_count) SELECT scope, $11::bigint, 1 FROM stored ' +
      'WHERE $12::boolean ON CONFLICT (scope, window_start) DO UPDATE SET key_count = idempotency_key_counts.key_count + 1) ' +
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
      ];
    },
  },
  deleteExpired: {
    sql: 'DELETE FROM idempotency_keys WHERE scope = $1 AND key_hash = $2 AND expires_at <= $3',
    bind: ({ scope, keyHash, now }) => [scope, keyHash, now],
  },
  purgeKeys: {
    // Skips rows another transaction has locked (a key being re-claimed): purges never wait.
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

/** The statements MySQL/MariaDB and SQLite share: `?` placeholders, the claim's lookup a statement of its own. */
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
  deleteExpired: {
    sql: 'DELETE FROM idempotency_keys WHERE scope = ? AND key_hash = ? AND expires_at <= ?',
    bind: POSTGRES.deleteExpired.bind,
  },
} satisfies Partial<Statements>;

/** The claim's parameters on MySQL and SQLite, in the order their text binds them. */
const portableClaim = (key: NewKey) => {
  const cap = capOf(key);
  return [
    key.scope,
    key.keyHash,
    key.fingerprint,
    key.createdAt,
    key.expiresAt,
    key.scope,
    cap.previous,
    cap.current,
    cap.max,
  ];
};
const portableOutcome = ({ key, response }: { key: NewKey; response: KeyResponse }) => {
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
const portableComplete = {
  sql: 'UPDATE idempotency_keys SET response_status = ?, response_headers = ?, response_body = ? WHERE scope = ? AND key_hash = ?',
  bind: POSTGRES.complete.bind,
};

/**
 * MySQL/MariaDB. No wait for a row another transaction inserted: `SET STATEMENT innodb_lock_wait_timeout
 * = 0` (MariaDB; MySQL 8 ignores the MariaDB-only comment and waits up to its innodb_lock_wait_timeout,
 * then answers the same 409). IGNORE: a committed duplicate is skipped and not counted (ON DUPLICATE
 * KEY UPDATE would count it: mysql2 connects with FOUND_ROWS). The cap's read is a consistent read
 * (READ COMMITTED): it locks no counter.
 */
const MYSQL: Statements = {
  ...PORTABLE,
  complete: portableComplete,
  claim: {
    sql:
      `/*M! SET STATEMENT innodb_lock_wait_timeout = 0 FOR */ INSERT IGNORE INTO ${COLUMNS}) SELECT ?, ?, ?, ?, ? FROM DUAL ` +
      `WHERE ${STORED('?', '?', '?')} < ?`,
    bind: portableClaim,
  },
  countKey: {
    sql: 'INSERT INTO idempotency_key_counts (scope, window_start, key_count) VALUES (?, ?, 1) ON DUPLICATE KEY UPDATE key_count = key_count + 1',
    bind: (key) => [key.scope, windowOf(key)],
  },
  insertOutcome: {
    sql:
      `INSERT IGNORE INTO ${COLUMNS}, response_status, response_headers, response_body) SELECT ?, ?, ?, ?, ?, ?, ?, ? FROM DUAL ` +
      `WHERE ${STORED('?', '?', '?')} < ?`,
    bind: portableOutcome,
  },
  purgeKeys: {
    sql: 'DELETE FROM idempotency_keys WHERE expires_at <= ? ORDER BY expires_at LIMIT ?',
    bind: ({ now, limit }) => [now, limit],
  },
  purgeCounts: {
    sql: 'DELETE FROM idempotency_key_counts WHERE window_start < ?',
    bind: ({ before }) => [before],
  },
};

/** SQLite: `WHERE` keeps the upsert clause from being parsed as part of the SELECT (SQLite's documented ambiguity). */
const SQLITE: Statements = {
  ...PORTABLE,
  complete: portableComplete,
  claim: {
    sql: `INSERT INTO ${COLUMNS}) SELECT ?, ?, ?, ?, ? WHERE ${STORED('?', '?', '?')} < ? ON CONFLICT DO NOTHING RETURNING 1`,
    bind: portableClaim,
  },
  countKey: {
    sql:
      'INSERT INTO idempotency_key_counts (scope, window_start, key_count) VALUES (?, ?, 1) ' +
      'ON CONFLICT (scope, window_start) DO UPDATE SET key_count = key_count + 1',
    bind: (key) => [key.scope, windowOf(key)],
  },
  insertOutcome: {
    sql:
      `INSERT INTO ${COLUMNS}, response_status, response_headers, response_body) SELECT ?, ?, ?, ?, ?, ?, ?, ? ` +
      `WHERE ${STORED('?', '?', '?')} < ? ON CONFLICT DO NOTHING RETURNING 1`,
    bind: portableOutcome,
  },
  purgeKeys: {
    sql:
      'DELETE FROM idempotency_keys WHERE rowid IN (SELECT rowid FROM idempotency_keys WHERE expires_at <= ? ' +
      'ORDER BY expires_at LIMIT ?) RETURNING 1',
    bind: ({ now, limit }) => [now, limit],
  },
  purgeCounts: {
    sql: 'DELETE FROM idempotency_key_counts WHERE window_start < ? RETURNING 1',
    bind: ({ before }) => [before],
  },
};

/** Which statements each dialect takes (see database/dialects/sql-dialect.ts). */
const SQL: Record<SqlDialect, Statements> = { postgres: POSTGRES, mysql: MYSQL, sqlite: SQLITE };

/** ER_LOCK_WAIT_TIMEOUT: another transaction holds the key (MariaDB answers at once, see MYSQL). */
const MYSQL_LOCK_WAIT_TIMEOUT = 1205;

/**
 * All SQL on `idempotency_keys` and `idempotency_key_counts`. claim() and complete() run in the
 * caller's transaction (the write's own); insertOutcome() runs in a transaction of its own, the
 * purges alone. Per dialect, claim() never waits for another request holding the same key, so that
 * request gets 409 at once instead of holding a connection:
 * - PostgreSQL: `pg_try_advisory_xact_lock` on a hash of scope and key, held to COMMIT/ROLLBACK;
 *   the claim and the lookup of a key it did not claim are one statement;
 * - MariaDB: `SET STATEMENT innodb_lock_wait_timeout = 0 FOR INSERT …` (see MYSQL);
 * - SQLite: one writer (SqliteGate): a second request waits for the first to commit, then replays.
 * The per-caller cap reads two counter rows (IdempotencyKeyCount), never counts keys; the counter is
 * incremented by the statement that stores the response, so it holds the counter's row lock only
 * from there to COMMIT, and concurrent writes of one caller do not queue behind each other's handlers.
 * Concurrent claims may each pass the cap before either counts: a caller exceeds it by at most the
 * requests it has in flight at once (bounded by the pool), so the table still cannot be filled.
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
   * Inserts the key's row in the open transaction, so it commits or rolls back with the write.
   * `claimed`: this request owns the key; `taken`: a committed row exists (`stored`, maybe expired);
   * `busy`: another transaction holds the key right now; `full`: the scope is at its cap.
   */
  async claim(key: NewKey): Promise<Claim> {
    const db = this.txHost.tx;
    let row: ClaimRow | undefined;
    if (this.dialect === 'postgres') {
      [row] = await this.run<NewKey, ClaimRow>(db, this.sql.claim, key);
      if (row.claimed === true) return { state: 'claimed' };
    } else {
      try {
        if (await this.inserted(db, this.sql.claim, key)) return { state: 'claimed' };
      } catch (error) {
        const errno = (error as QueryFailedError & { driverError?: { errno?: number } }).driverError?.errno;
        if (error instanceof QueryFailedError && errno === MYSQL_LOCK_WAIT_TIMEOUT) return { state: 'busy' };
        throw error;
      }
      [row] = await this.run<NewKey, ClaimRow>(db, this.sql.lookup!, key);
    }
    if (row?.fingerprint != null) {
      const expiresAt = row.expiresAt instanceof Date ? row.expiresAt : new Date(row.expiresAt!);
      const { fingerprint, responseStatus, responseHeaders, responseBody } = row;
      return { state: 'taken', stored: { fingerprint, responseStatus, responseHeaders, responseBody, expiresAt } };
    }
    if (key.cap && Number(row?.stored ?? 0) >= key.cap.max) return { state: 'full' };
    return { state: 'busy' };
  }

  /** Forgets an expired key, so it can be claimed again (in the caller's transaction). */
  async deleteExpired(scope: string, keyHash: string, now: Date): Promise<void> {
    await this.run(this.txHost.tx, this.sql.deleteExpired, { scope, keyHash, now });
  }

  /**
   * Stores the response of the request that claimed the key, before its transaction commits, and
   * counts the key against its scope's cap (capped keys only).
   */
  async complete(key: NewKey, response: KeyResponse): Promise<void> {
    const db = this.txHost.tx;
    if (key.cap && this.sql.completeCounted) {
      await this.run(db, this.sql.completeCounted, { key, response });
      return;
    }
    await this.run(db, this.sql.complete, { key, response });
    if (key.cap && this.sql.countKey) await this.run(db, this.sql.countKey, key);
  }

  /**
   * Stores a 4xx outcome, whose write rolled back, in a transaction of its own (counted like
   * complete()). True if stored; false if the key has a row by now (a concurrent retry won) or the
   * scope is at its cap.
   */
  async insertOutcome(key: NewKey, response: KeyResponse): Promise<boolean> {
    return inTransaction(this.txHost, async () => {
      const db = this.txHost.tx;
      if (this.dialect === 'postgres')
        return (await this.run(db, this.sql.insertOutcome, { key, response })).length === 1;
      if (!(await this.inserted(db, this.sql.insertOutcome, { key, response }))) return false;
      if (key.cap && this.sql.countKey) await this.run(db, this.sql.countKey, key);
      return true;
    });
  }

  /**
   * Deletes up to `limit` keys expired at `now`, oldest first, in one statement; returns how many.
   * PostgreSQL skips rows another transaction has locked (a key being re-claimed), so purging
   * instances never wait for each other or for requests.
   */
  async purgeExpired(now: Date, limit: number): Promise<number> {
    return this.affected(this.sql.purgeKeys, { now, limit });
  }

  /** Deletes the counters of windows that started before `before` (ms since the epoch); returns how many. */
  async purgeCounts(before: number): Promise<number> {
    return this.affected(this.sql.purgeCounts, { before });
  }

  /** Rows a DELETE on the pool removed: RETURNING rows (PostgreSQL, SQLite), affectedRows (MySQL). */
  private async affected<A>(statement: Statement<A>, args: A): Promise<number> {
    const result = await this.dataSource.query<unknown[] | { affectedRows: number }>(
      statement.sql,
      statement.bind(args),
    );
    if (Array.isArray(result)) {
      // TypeORM answers a PostgreSQL DELETE … RETURNING with [rows, rowCount].
      return this.dialect === 'postgres' ? (result[1] as number) : result.length;
    }
    return result.affectedRows;
  }

  /** Whether an INSERT inserted its row (MySQL: affectedRows; SQLite: its RETURNING row). */
  private async inserted<A>(db: EntityManager, statement: Statement<A>, args: A): Promise<boolean> {
    const result = await db.query<unknown[] | { affectedRows: number }>(statement.sql, statement.bind(args));
    return Array.isArray(result) ? result.length === 1 : result.affectedRows === 1;
  }

  /**
   * A statement's rows. PostgreSQL: in the open transaction on its own connection (queryInTransaction,
   * past TypeORM's QueryRunner, which costs more CPU per statement), else on the pool.
   */
  private run<A, T = unknown>(db: EntityManager, statement: Statement<A>, args: A): Promise<T[]> {
    const parameters = statement.bind(args);
    if (this.dialect === 'postgres' && db.queryRunner)
      return queryInTransaction<T>(db, this.dialect, statement.sql, parameters);
    return db.query<T[]>(statement.sql, parameters);
  }
}
