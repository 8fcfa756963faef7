import { Inject, Injectable } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import type { SqlDialect } from '../database/dialects/dialect';
import { NOW } from '../database/dialects/sql-dialect';
import { SQL_DIALECT } from '../database/dialects/sql-dialect.module';
import { inTransaction } from '../database/transactions/transactions';

/** A mail as the worker sends it. `attempts` counts this one. */
export interface ClaimedMail {
  id: number;
  recipient: string;
  subject: string;
  body: string;
  attempts: number;
}

/** What a mail to queue says: one recipient, a subject, a plain-text body. */
export interface MailToSend {
  to: string;
  subject: string;
  text: string;
}

/** One dialect's statements on `mail_outbox`; "later" is the database's clock plus a number of milliseconds. */
type Statements = {
  /** Binds (recipient, subject, body); due now. */
  insert: string;
  /** PostgreSQL and SQLite: leases and returns the due rows in one statement; binds (later, limit). */
  claim: string;
  /** MySQL: the due rows, locked, skipping those another worker holds; binds (limit). */
  claimSelect: string;
  /** MySQL, after claimSelect: leases ids; binds (later, ...ids), the `IN (` list of `?` appended by claim(). */
  claimUpdate: string;
  /** Binds (id). */
  delivered: string;
  /** Binds (later, error, id). */
  retryLater: string;
  /** Binds (error, id). */
  giveUp: string;
  /** Binds (id). */
  release: string;
  /** The value a "later" placeholder takes for `ms` milliseconds. */
  later: (ms: number) => unknown;
};

const CLAIMED_COLUMNS = 'id, recipient, subject, body, attempts';

/**
 * The statements MySQL/MariaDB and SQLite share but for the clock: `now` is the dialect's current time
 * with milliseconds, `later` "now plus `?`" (see Statements.later for the value).
 */
function portableStatements(now: string, later: string): Omit<Statements, 'claim' | 'later'> {
  return {
    insert: `INSERT INTO mail_outbox (recipient, subject, body, next_attempt_at) VALUES (?, ?, ?, ${now})`,
    claimSelect: `SELECT ${CLAIMED_COLUMNS} FROM mail_outbox WHERE failed_at IS NULL AND next_attempt_at <= ${now} ORDER BY next_attempt_at, id LIMIT ? FOR UPDATE SKIP LOCKED`,
    claimUpdate: `UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_at = ${later} WHERE id IN (`,
    delivered: 'DELETE FROM mail_outbox WHERE id = ?',
    retryLater: `UPDATE mail_outbox SET next_attempt_at = ${later}, last_error = ? WHERE id = ?`,
    giveUp: `UPDATE mail_outbox SET failed_at = ${now}, last_error = ? WHERE id = ?`,
    release: `UPDATE mail_outbox SET next_attempt_at = ${now}, attempts = attempts - 1 WHERE id = ?`,
  };
}

const SQLITE_LATER = "strftime('%Y-%m-%d %H:%M:%f', 'now', ?)";

/** Which statements each dialect takes (see database/dialects/sql-dialect.ts). */
const SQL: Record<SqlDialect, Statements> = {
  postgres: {
    // bench/floor.ts sends the same text.
    insert: 'INSERT INTO mail_outbox (recipient, subject, body, next_attempt_at) VALUES ($1, $2, $3, now())',
    // A CTE, so the driver answers rows (TypeORM returns [rows, count] for a bare UPDATE).
    claim:
      'WITH claimed AS (UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => $1::float8 / 1000) ' +
      'WHERE id IN (SELECT id FROM mail_outbox WHERE failed_at IS NULL AND next_attempt_at <= now() ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) ' +
      `RETURNING ${CLAIMED_COLUMNS}) SELECT * FROM claimed ORDER BY id`,
    claimSelect: '', // claim is one statement on PostgreSQL
    claimUpdate: '',
    delivered: 'DELETE FROM mail_outbox WHERE id = $1',
    retryLater:
      'UPDATE mail_outbox SET next_attempt_at = now() + make_interval(secs => $1::float8 / 1000), last_error = $2 WHERE id = $3',
    giveUp: 'UPDATE mail_outbox SET failed_at = now(), last_error = $1 WHERE id = $2',
    release: 'UPDATE mail_outbox SET next_attempt_at = now(), attempts = attempts - 1 WHERE id = $1',
    later: (ms) => ms,
  },
  mysql: {
    ...portableStatements(NOW.mysql, 'DATE_ADD(CURRENT_TIMESTAMP(3), INTERVAL ? MICROSECOND)'),
    claim: '', // claimSelect, then claimUpdate (no UPDATE … RETURNING)
    later: (ms) => Math.round(ms * 1000),
  },
  sqlite: {
    ...portableStatements(NOW.sqlite, SQLITE_LATER),
    claim:
      `UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_at = ${SQLITE_LATER} WHERE id IN ` +
      `(SELECT id FROM mail_outbox WHERE failed_at IS NULL AND next_attempt_at <= ${NOW.sqlite} ORDER BY next_attempt_at, id LIMIT ?) ` +
      `RETURNING ${CLAIMED_COLUMNS}`,
    later: (ms) => `+${(ms / 1000).toFixed(3)} seconds`,
  },
};

/**
 * All SQL on `mail_outbox`, one statements table per dialect (SQL), picked once at construction.
 *
 * Claiming is what makes several app instances safe: a claim moves `next_attempt_at` past a lease,
 * so no other worker takes the row until the lease ends (then it is taken again: at-least-once).
 * PostgreSQL and SQLite claim in one `UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING`; PostgreSQL's
 * inner SELECT takes `FOR UPDATE SKIP LOCKED`, so two workers never wait for each other, and SQLite's
 * single writer serializes the statement. MariaDB/MySQL have no UPDATE … RETURNING: a transaction
 * selects `FOR UPDATE SKIP LOCKED` (MySQL 8, MariaDB ≥ 10.6), then updates those ids.
 */
@Injectable()
export class MailOutboxRepository {
  private readonly sql: Statements;

  constructor(
    private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>,
    @Inject(SQL_DIALECT) private readonly dialect: SqlDialect,
  ) {
    this.sql = SQL[dialect];
  }

  /** `INSERT INTO mail_outbox`, due now, in the caller's transaction when there is one. */
  async insert({ to, subject, text }: MailToSend): Promise<void> {
    await this.query(this.sql.insert, [to, subject, text]);
  }

  /**
   * Up to `limit` due mails (oldest due first), each leased for `leaseMs` and its `attempts` counted.
   * Rows another worker holds are skipped, never waited for.
   */
  async claim(limit: number, leaseMs: number): Promise<ClaimedMail[]> {
    const later = this.sql.later(leaseMs);
    if (this.dialect !== 'mysql') return this.query<ClaimedMail>(this.sql.claim, [later, limit]);
    return inTransaction(this.txHost, async () => {
      const rows = await this.query<ClaimedMail>(this.sql.claimSelect, [limit]);
      if (rows.length === 0) return rows;
      const ids = rows.map((row) => row.id);
      await this.query(`${this.sql.claimUpdate}${ids.map(() => '?').join(', ')})`, [later, ...ids]);
      return rows.map((row) => ({ ...row, attempts: Number(row.attempts) + 1 }));
    });
  }

  /** The SMTP server took it: the row goes (and with it the token in its body). */
  async delivered(id: number): Promise<void> {
    await this.query(this.sql.delivered, [id]);
  }

  /** A failed attempt: due again in `delayMs`, with the reason kept for operators. */
  async retryLater(id: number, delayMs: number, error: string): Promise<void> {
    await this.query(this.sql.retryLater, [this.sql.later(delayMs), error.slice(0, 500), id]);
  }

  /** Given up: kept with `failed_at` set, never claimed again. */
  async giveUp(id: number, error: string): Promise<void> {
    await this.query(this.sql.giveUp, [error.slice(0, 500), id]);
  }

  /** Claimed but not tried (the worker is stopping): due again now, the claim not counted. */
  async release(ids: number[]): Promise<void> {
    for (const id of ids) await this.query(this.sql.release, [id]);
  }

  /** Runs one of this dialect's statements in the current transaction, or on its own. */
  private query<T>(sql: string, parameters: unknown[]): Promise<T[]> {
    return this.txHost.tx.query<T[]>(sql, parameters);
  }
}
