import { Injectable } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager, QueryFailedError } from 'typeorm';
import { queryInTransaction } from '../database/reads/pool-queries';
import { sqlDialectOf, withQuestionMarks } from '../database/dialects/sql-dialect';

/** A key's row as the interceptor needs it. */
export interface StoredKey {
  fingerprint: string;
  /** Null only while the transaction that claimed it is open (never seen by others). */
  responseStatus: number | null;
  responseHeaders: string | null;
  responseBody: string | null;
  expiresAt: Date;
}

/** What a new key row holds: who, which key, which request, until when, and (for a 4xx) its response. */
export interface NewKey {
  scope: string;
  keyHash: string;
  fingerprint: string;
  createdAt: Date;
  expiresAt: Date;
  /** Live keys the scope may hold; undefined: no cap (anonymous sign-up, bounded by the rate limit). */
  maxLive?: number;
  response?: { status: number; headers: string; body: string };
}

/** What claim() found. */
export type Claim =
  { state: 'claimed' } | { state: 'taken'; stored: StoredKey } | { state: 'busy' } | { state: 'full' };

/** The PostgreSQL types of insert()'s parameters $1…$9. */
const PG_TYPES = ['text', 'text', 'text', 'timestamptz', 'timestamptz', 'int', 'text', 'text', 'int'];

/** ER_LOCK_WAIT_TIMEOUT: another transaction holds the key (MariaDB answers at once, see claim()). */
const MYSQL_LOCK_WAIT_TIMEOUT = 1205;

/**
 * All SQL on `idempotency_keys`. claim() and complete() run in the caller's transaction (the write's
 * own); insertOutcome() and purgeExpired() run alone. Per dialect, claim() never waits for another
 * request holding the same key, so that request gets 409 at once instead of holding a connection:
 * - PostgreSQL: `pg_try_advisory_xact_lock` on a hash of scope and key, held to COMMIT/ROLLBACK;
 * - MariaDB: `SET STATEMENT innodb_lock_wait_timeout = 0 FOR INSERT …` (MySQL 8 ignores the
 *   MariaDB-only comment and waits up to its innodb_lock_wait_timeout, then answers the same 409);
 * - SQLite: one writer (SqliteGate): a second request waits for the first to commit, then replays.
 */
@Injectable()
export class IdempotencyRepository {
  /** insert()'s PostgreSQL statement by shape (`lock:capped`). */
  private readonly pgInserts = new Map<string, string>();

  constructor(
    private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {}

  /**
   * Inserts the key's row in the open transaction, so it commits or rolls back with the write.
   * `claimed`: this request owns the key; `taken`: a committed row exists (`stored`, maybe expired);
   * `busy`: another transaction holds the key right now; `full`: the scope holds `maxLive` live keys.
   */
  async claim(key: NewKey): Promise<Claim> {
    const db = this.txHost.tx;
    try {
      if (await this.insert(db, key, sqlDialectOf(db) === 'postgres')) return { state: 'claimed' };
    } catch (error) {
      const errno = (error as QueryFailedError & { driverError?: { errno?: number } }).driverError?.errno;
      if (error instanceof QueryFailedError && errno === MYSQL_LOCK_WAIT_TIMEOUT) return { state: 'busy' };
      throw error;
    }
    const stored = await this.find(key.scope, key.keyHash);
    if (stored) return { state: 'taken', stored };
    if (key.maxLive !== undefined && (await this.countLive(db, key.scope, key.createdAt)) >= key.maxLive) {
      return { state: 'full' };
    }
    return { state: 'busy' };
  }

  /** The key's row as this transaction (or the pool) sees it: committed rows only, expired ones too. */
  async find(scope: string, keyHash: string): Promise<StoredKey | undefined> {
    const rows = await this.run<StoredKey>(
      this.txHost.tx,
      'SELECT fingerprint, response_status AS "responseStatus", response_headers AS "responseHeaders", ' +
        'response_body AS "responseBody", expires_at AS "expiresAt" FROM idempotency_keys WHERE scope = $1 AND key_hash = $2',
      [scope, keyHash],
    );
    const row = rows[0];
    if (row && !(row.expiresAt instanceof Date)) row.expiresAt = new Date(row.expiresAt);
    return row;
  }

  /** Forgets an expired key, so it can be claimed again (in the caller's transaction). */
  async deleteExpired(scope: string, keyHash: string, now: Date): Promise<void> {
    await this.run(
      this.txHost.tx,
      'DELETE FROM idempotency_keys WHERE scope = $1 AND key_hash = $2 AND expires_at <= $3',
      [scope, keyHash, now],
    );
  }

  /** Stores the response of the request that claimed the key, before its transaction commits. */
  async complete(scope: string, keyHash: string, response: { status: number; headers: string; body: string }) {
    await this.run(
      this.txHost.tx,
      'UPDATE idempotency_keys SET response_status = $1, response_headers = $2, response_body = $3 WHERE scope = $4 AND key_hash = $5',
      [response.status, response.headers, response.body, scope, keyHash],
    );
  }

  /**
   * Stores a 4xx outcome, whose write rolled back, in a transaction of its own (a statement on the
   * pool). True if stored; false if the key has a row by now (a concurrent retry won) or the scope is full.
   */
  async insertOutcome(key: NewKey): Promise<boolean> {
    return this.insert(this.dataSource.manager, key, false);
  }

  /**
   * Deletes up to `limit` keys expired at `now`, oldest first, in one statement; returns how many.
   * PostgreSQL skips rows another transaction has locked (a key being re-claimed), so purging
   * instances never wait for each other or for requests.
   */
  async purgeExpired(now: Date, limit: number): Promise<number> {
    const db = this.dataSource.manager;
    const dialect = sqlDialectOf(db);
    if (dialect === 'postgres') {
      // TypeORM answers a PostgreSQL DELETE with [rows, rowCount].
      const [, count] = await db.query<[unknown[], number]>(
        'DELETE FROM idempotency_keys WHERE (scope, key_hash) IN (SELECT scope, key_hash FROM idempotency_keys ' +
          'WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)',
        [now, limit],
      );
      return count;
    }
    if (dialect === 'mysql') {
      const result = await db.query<{ affectedRows: number }>(
        'DELETE FROM idempotency_keys WHERE expires_at <= ? ORDER BY expires_at LIMIT ?',
        [now, limit],
      );
      return result.affectedRows;
    }
    const rows = await db.query<unknown[]>(
      'DELETE FROM idempotency_keys WHERE rowid IN (SELECT rowid FROM idempotency_keys WHERE expires_at <= ? ' +
        'ORDER BY expires_at LIMIT ?) RETURNING 1',
      [now, limit],
    );
    return rows.length;
  }

  /** INSERT … SELECT … WHERE (cap) (and, with `lock`, PostgreSQL's try-lock), doing nothing on a conflict. True if inserted. */
  private async insert(db: EntityManager, key: NewKey, lock: boolean): Promise<boolean> {
    const dialect = sqlDialectOf(db);
    const conditions = [
      ...(lock ? ["pg_try_advisory_xact_lock(hashtextextended($1 || ':' || $2, 0))"] : []),
      ...(key.maxLive !== undefined
        ? ['(SELECT count(*) FROM idempotency_keys WHERE scope = $1 AND expires_at > $4) < $9']
        : []),
    ];
    const parameters = [
      key.scope,
      key.keyHash,
      key.fingerprint,
      key.createdAt,
      key.expiresAt,
      key.response?.status ?? null,
      key.response?.headers ?? null,
      key.response?.body ?? null,
      key.maxLive ?? 0,
    ];
    const columns =
      'INSERT INTO idempotency_keys (scope, key_hash, fingerprint, created_at, expires_at, response_status, response_headers, response_body)';
    const where = conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : '';
    if (dialect === 'postgres') {
      // Each parameter cast alike wherever it appears: PostgreSQL refuses one deduced as text here and varchar there.
      // Written once per shape (lock, cap): a keyed write sends it on every request.
      const shape = `${lock}:${key.maxLive !== undefined}`;
      let sql = this.pgInserts.get(shape);
      if (sql === undefined) {
        sql = `${columns} SELECT $1, $2, $3, $4, $5, $6, $7, $8${where} ON CONFLICT DO NOTHING RETURNING 1`.replace(
          /\$(\d)(?!::)/g,
          (_, n: string) => `$${n}::${PG_TYPES[Number(n) - 1]}`,
        );
        this.pgInserts.set(shape, sql);
      }
      const rows = await this.pg(db, sql, key.maxLive === undefined ? parameters.slice(0, 8) : parameters); // $9: the cap
      return rows.length === 1;
    }
    if (dialect === 'mysql') {
      // No wait for a row another transaction inserted (MariaDB; see the class). IGNORE: a committed duplicate
      // is skipped and not counted (ON DUPLICATE KEY UPDATE would count it: mysql2 connects with FOUND_ROWS).
      const [sql, bound] = withQuestionMarks(
        `/*M! SET STATEMENT innodb_lock_wait_timeout = 0 FOR */ ${columns.replace('INSERT', 'INSERT IGNORE')} SELECT $1, $2, $3, $4, $5, $6, $7, $8 FROM DUAL${where}`,
        parameters,
      );
      const result = await db.query<{ affectedRows: number }>(sql, bound);
      return result.affectedRows === 1;
    }
    // SQLite: `WHERE true` keeps the upsert clause from being parsed as part of the SELECT (SQLite's documented ambiguity).
    const [sql, bound] = withQuestionMarks(
      `${columns} SELECT $1, $2, $3, $4, $5, $6, $7, $8${where || ' WHERE true'} ON CONFLICT DO NOTHING RETURNING 1`,
      parameters,
    );
    const rows = await db.query<unknown[]>(sql, bound);
    return rows.length === 1;
  }

  /** A PostgreSQL statement's rows: in the open transaction on its own connection (queryInTransaction), else on the pool. */
  private pg<T>(db: EntityManager, sql: string, parameters: unknown[]): Promise<T[]> {
    return db.queryRunner ? queryInTransaction<T>(db, sql, parameters) : db.query<T[]>(sql, parameters);
  }

  private async countLive(db: EntityManager, scope: string, now: Date): Promise<number> {
    const [row] = await this.run<{ live: number | string }>(
      db,
      'SELECT count(*) AS live FROM idempotency_keys WHERE scope = $1 AND expires_at > $2',
      [scope, now],
    );
    return Number(row?.live ?? 0);
  }

  /** A statement written for PostgreSQL, with `?` placeholders on the other dialects. */
  private run<T>(db: EntityManager, sql: string, parameters: unknown[]): Promise<T[]> {
    if (sqlDialectOf(db) === 'postgres') return this.pg<T>(db, sql, parameters);
    const [text, bound] = withQuestionMarks(sql, parameters);
    return db.query<T[]>(text, bound);
  }
}
