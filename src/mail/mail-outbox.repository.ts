import { Injectable } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { boundFor, nowWithMilliseconds, sqlDialectOf } from '../database/dialects/sql-dialect';
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

const CLAIMED_COLUMNS = 'id, recipient, subject, body, attempts';

/**
 * All SQL on `mail_outbox`. Statements are written for PostgreSQL with `NOW` for the dialect's
 * current time and `LATER($n)` for "now plus $n milliseconds"; other dialects get `?` placeholders.
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
  constructor(private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>) {}

  /** `INSERT INTO mail_outbox`, due now, in the caller's transaction when there is one. */
  async insert({ to, subject, text }: MailToSend): Promise<void> {
    await this.query('INSERT INTO mail_outbox (recipient, subject, body, next_attempt_at) VALUES ($1, $2, $3, NOW)', [
      to,
      subject,
      text,
    ]);
  }

  /**
   * Up to `limit` due mails (oldest due first), each leased for `leaseMs` and its `attempts` counted.
   * Rows another worker holds are skipped, never waited for.
   */
  async claim(limit: number, leaseMs: number): Promise<ClaimedMail[]> {
    const dialect = sqlDialectOf(this.txHost.tx);
    const due =
      'SELECT id FROM mail_outbox WHERE failed_at IS NULL AND next_attempt_at <= NOW ORDER BY next_attempt_at, id LIMIT $2';
    const update = `UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_at = LATER($1) WHERE id IN (${due}`;
    if (dialect === 'postgres') {
      // A CTE, so the driver answers rows (TypeORM returns [rows, count] for a bare UPDATE).
      return this.query<ClaimedMail>(
        `WITH claimed AS (${update} FOR UPDATE SKIP LOCKED) RETURNING ${CLAIMED_COLUMNS}) SELECT * FROM claimed ORDER BY id`,
        [leaseMs, limit],
      );
    }
    if (dialect === 'sqlite')
      return this.query<ClaimedMail>(`${update}) RETURNING ${CLAIMED_COLUMNS}`, [leaseMs, limit]);
    return inTransaction(this.txHost, async () => {
      const rows = await this.query<ClaimedMail>(
        `SELECT ${CLAIMED_COLUMNS} FROM mail_outbox WHERE failed_at IS NULL AND next_attempt_at <= NOW ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [limit],
      );
      if (rows.length === 0) return rows;
      const ids = rows.map((row) => row.id);
      await this.txHost.tx.query(
        `UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_at = ${this.later('?')} WHERE id IN (${ids.map(() => '?').join(', ')})`,
        [this.laterParameter(leaseMs), ...ids],
      );
      return rows.map((row) => ({ ...row, attempts: Number(row.attempts) + 1 }));
    });
  }

  /** The SMTP server took it: the row goes (and with it the token in its body). */
  async delivered(id: number): Promise<void> {
    await this.query('DELETE FROM mail_outbox WHERE id = $1', [id]);
  }

  /** A failed attempt: due again in `delayMs`, with the reason kept for operators. */
  async retryLater(id: number, delayMs: number, error: string): Promise<void> {
    await this.query('UPDATE mail_outbox SET next_attempt_at = LATER($2), last_error = $3 WHERE id = $1', [
      id,
      delayMs,
      error.slice(0, 500),
    ]);
  }

  /** Given up: kept with `failed_at` set, never claimed again. */
  async giveUp(id: number, error: string): Promise<void> {
    await this.query('UPDATE mail_outbox SET failed_at = NOW, last_error = $2 WHERE id = $1', [
      id,
      error.slice(0, 500),
    ]);
  }

  /** Claimed but not tried (the worker is stopping): due again now, the claim not counted. */
  async release(ids: number[]): Promise<void> {
    for (const id of ids) {
      await this.query('UPDATE mail_outbox SET next_attempt_at = NOW, attempts = attempts - 1 WHERE id = $1', [id]);
    }
  }

  /** The dialect's "now + ? milliseconds" around `placeholder` (see laterParameter for its value). */
  private later(placeholder: string): string {
    return {
      postgres: `now() + make_interval(secs => ${placeholder}::float8 / 1000)`,
      mysql: `DATE_ADD(CURRENT_TIMESTAMP(3), INTERVAL ${placeholder} MICROSECOND)`,
      sqlite: `strftime('%Y-%m-%d %H:%M:%f', 'now', ${placeholder})`,
    }[sqlDialectOf(this.txHost.tx)];
  }

  /** The value LATER's placeholder takes for `ms` milliseconds. */
  private laterParameter(ms: number): unknown {
    return { postgres: ms, mysql: Math.round(ms * 1000), sqlite: `+${(ms / 1000).toFixed(3)} seconds` }[
      sqlDialectOf(this.txHost.tx)
    ];
  }

  /** Runs `sql` (NOW, LATER($n) and `$n` rewritten for the dialect) in the current transaction, or on its own. */
  private query<T>(sql: string, parameters: unknown[]): Promise<T[]> {
    const tx = this.txHost.tx;
    const laters = new Set<number>();
    const text = sql
      .replaceAll('NOW', nowWithMilliseconds(tx))
      .replace(/LATER\(\$(\d+)\)/g, (_, n: string) => (laters.add(Number(n) - 1), this.later(`$${n}`)));
    const values = parameters.map((value, index) => (laters.has(index) ? this.laterParameter(value as number) : value));
    return tx.query<T[]>(...boundFor(tx, text, values));
  }
}
