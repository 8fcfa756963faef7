import { Inject, Injectable } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { randomUUID } from 'node:crypto';
import { queryRows } from '../database/reads/pool-queries';
import { inTransaction } from '../database/transactions/transactions';
import type { SqlDialect } from '../database/dialects/dialect';
import { NOW } from '../database/dialects/sql-dialect';
import { SQL_DIALECT } from '../database/dialects/sql-dialect.module';
import type { Role } from '../users/entities/user.entity';
import { RefreshToken } from './entities/refresh-token.entity';
import { sessionCreated } from './session-times';
import { Session } from './entities/session.entity';

/** The live session behind an access token, with its user's current role. */
export interface ActiveSession {
  userId: number;
  role: Role;
}

/** A live session as GET /auth/sessions lists it. */
export interface LiveSession {
  id: string;
  createdAt: Date;
  lastUsedAt: Date;
  expiresAt: Date;
  userAgent: string | null;
}

/** A timestamp as a Date: SQLite's UTC text (`YYYY-MM-DD HH:MM:SS.SSS`) included. */
function asDate(value: Date | string): Date {
  return value instanceof Date ? value : new Date(`${value.replace(' ', 'T')}Z`);
}

/** One dialect's statements on `sessions` and `refresh_tokens` (PostgreSQL's one-statement CTEs are in the methods). */
type Statements = {
  /** The current time with milliseconds (see NOW), for the portable query-builder UPDATEs. */
  now: string;
  findActive: string;
  /** Portable rotate(): the session of a token just rotated. */
  rotatedSession: string;
  findRecentlyRotated: string;
  revoke: string;
  /** PostgreSQL binds (userId, keep); the portable text (userId, keep, keep). */
  revokeAllOf: string;
  listLive: string;
  touch: string;
};

/**
 * The statements MySQL/MariaDB and SQLite share but for the clock: `now` is the dialect's current
 * time with milliseconds, `secondsAgo` "now minus `?` seconds". Written once, bound per dialect below.
 */
function portableStatements(now: string, secondsAgo: string): Statements {
  return {
    now,
    findActive: `SELECT u.id AS "userId", u.role FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ? AND s.revoked_at IS NULL AND s.expires_at > ${now}`,
    rotatedSession:
      'SELECT s.id AS "sessionId", s.user_id AS "userId" FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.token_hash = ?',
    findRecentlyRotated:
      'SELECT s.id AS "sessionId", s.user_id AS "userId" FROM refresh_tokens t ' +
      'JOIN sessions s ON s.id = t.session_id JOIN refresh_tokens n ON n.session_id = t.session_id ' +
      `WHERE t.token_hash = ? AND n.token_hash = ? AND n.rotated_at IS NULL AND t.rotated_at > ${secondsAgo} AND s.revoked_at IS NULL AND s.expires_at > ${now}`,
    revoke: `UPDATE sessions SET revoked_at = ${now} WHERE id = ? AND revoked_at IS NULL`,
    revokeAllOf: `UPDATE sessions SET revoked_at = ${now} WHERE user_id = ? AND revoked_at IS NULL AND (? IS NULL OR id <> ?)`,
    listLive:
      'SELECT id, created_at AS "createdAt", COALESCE(last_used_at, created_at) AS "lastUsedAt", expires_at AS "expiresAt", user_agent AS "userAgent" ' +
      `FROM sessions WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ${now} ORDER BY 3 DESC, id LIMIT ?`,
    touch: `UPDATE sessions SET last_used_at = ${now} WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ${secondsAgo})`,
  };
}

/** Which statements each dialect takes (see database/dialects/sql-dialect.ts). */
const SQL: Record<SqlDialect, Statements> = {
  postgres: {
    now: NOW.postgres,
    findActive:
      'SELECT u.id AS "userId", u.role FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > now()',
    rotatedSession: '', // rotate() is one CTE on PostgreSQL
    findRecentlyRotated:
      'SELECT s.id AS "sessionId", s.user_id AS "userId" FROM refresh_tokens t ' +
      'JOIN sessions s ON s.id = t.session_id ' +
      'JOIN refresh_tokens n ON n.session_id = t.session_id AND n.token_hash = $2 AND n.rotated_at IS NULL ' +
      'WHERE t.token_hash = $1 AND t.rotated_at > now() - make_interval(secs => $3) AND s.revoked_at IS NULL AND s.expires_at > now()',
    revoke: 'UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL',
    revokeAllOf:
      'UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL AND id IS DISTINCT FROM $2::uuid',
    listLive:
      'SELECT id, created_at AS "createdAt", COALESCE(last_used_at, created_at) AS "lastUsedAt", expires_at AS "expiresAt", user_agent AS "userAgent" ' +
      'FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now() ORDER BY 3 DESC, id LIMIT $2',
    touch:
      'UPDATE sessions SET last_used_at = now() WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => $2))',
  },
  mysql: portableStatements(NOW.mysql, 'DATE_SUB(CURRENT_TIMESTAMP(3), INTERVAL ? SECOND)'),
  sqlite: portableStatements(NOW.sqlite, "strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || ? || ' seconds')"),
};

/**
 * All SQL on `sessions` and `refresh_tokens`. Statements run in the caller's transaction when there
 * is one (TransactionHost), e.g. a password change revokes sessions in the same transaction.
 *
 * Per dialect: PostgreSQL does create, rotate and revokeIfReused each in one statement (data-modifying
 * CTEs); the portable variant (MySQL, SQLite) takes several statements, in one transaction where they
 * must be atomic, and its query-builder UPDATEs report the rows they changed. The other statements
 * are in SQL, one table per dialect, picked once at construction.
 */
@Injectable()
export class SessionsRepository {
  private readonly sql: Statements;

  constructor(
    private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>,
    @Inject(SQL_DIALECT) private readonly dialect: SqlDialect,
  ) {
    this.sql = SQL[dialect];
  }

  /**
   * A new session with its first refresh token, in one statement. Returns the session id.
   * `userAgent`: the login's User-Agent header (cut to 255 characters), shown in GET /auth/sessions.
   */
  async create(userId: number, ttlSeconds: number, refreshTokenHash: Buffer, userAgent?: string): Promise<string> {
    const id = randomUUID();
    sessionCreated(id); // "last used" is its creation time: no write for its first requests (SessionActivity)
    const agent = userAgent?.slice(0, 255) ?? null;
    if (this.portable) {
      const expiresAt = new Date(Date.now() + ttlSeconds * 1000);
      await inTransaction(this.txHost, async () => {
        await this.txHost.tx.insert(Session, { id, userId, expiresAt, userAgent: agent });
        await this.txHost.tx.insert(RefreshToken, { tokenHash: refreshTokenHash, sessionId: id });
      });
      return id;
    }
    await this.txHost.tx.query(
      'WITH session AS (INSERT INTO sessions (id, user_id, expires_at, user_agent) VALUES ($1, $2, now() + make_interval(secs => $3), $5) RETURNING id) ' +
        'INSERT INTO refresh_tokens (token_hash, session_id) SELECT $4, id FROM session',
      [id, userId, ttlSeconds, refreshTokenHash, agent],
    );
    return id;
  }

  /**
   * The per-request check behind every access token: one primary-key lookup on sessions joined to
   * the user by primary key. Undefined when the session was revoked, has expired, or its user is gone.
   */
  async findActive(sessionId: string): Promise<ActiveSession | undefined> {
    const rows = await queryRows<ActiveSession>(
      this.txHost.tx, // always the primary: a replica could still see a revoked session as live
      this.dialect,
      this.sql.findActive,
      [sessionId],
    );
    return rows[0];
  }

  /**
   * Rotation, atomically: marks the presented token rotated and issues its successor in one
   * statement, only if it is the session's current token and the session is live. Of two requests
   * presenting the same token, exactly one gets the new one: the other's UPDATE re-checks
   * `rotated_at IS NULL` after the first commits and matches nothing.
   */
  async rotate(presentedHash: Buffer, nextHash: Buffer): Promise<{ sessionId: string; userId: number } | undefined> {
    if (this.portable) {
      // The UPDATE's row lock makes the second of two requests wait, then match nothing (READ COMMITTED).
      return inTransaction(this.txHost, async () => {
        const tx = this.txHost.tx;
        const { affected } = await tx
          .createQueryBuilder()
          .update(RefreshToken)
          .set({ rotatedAt: () => this.sql.now })
          .where('token_hash = :presentedHash AND rotated_at IS NULL', { presentedHash })
          .andWhere(`session_id IN (SELECT id FROM sessions WHERE revoked_at IS NULL AND expires_at > ${this.sql.now})`)
          .execute();
        if (!affected) return undefined;
        const [rotated] = await this.query<{ sessionId: string; userId: number }>(this.sql.rotatedSession, [
          presentedHash,
        ]);
        await tx.insert(RefreshToken, { tokenHash: nextHash, sessionId: rotated.sessionId });
        return rotated;
      });
    }
    const rows = await this.txHost.tx.query<{ sessionId: string; userId: number }[]>(
      'WITH rotated AS (UPDATE refresh_tokens t SET rotated_at = now() FROM sessions s ' +
        'WHERE t.token_hash = $1 AND t.rotated_at IS NULL AND s.id = t.session_id AND s.revoked_at IS NULL AND s.expires_at > now() ' +
        'RETURNING s.id, s.user_id), ' +
        'issued AS (INSERT INTO refresh_tokens (token_hash, session_id) SELECT $2, id FROM rotated) ' +
        'SELECT id AS "sessionId", user_id AS "userId" FROM rotated',
      [presentedHash, nextHash],
    );
    return rows[0];
  }

  /**
   * The grace window of rotation (REFRESH_GRACE_SECONDS): the session of a presented token rotated at
   * most `graceSeconds` ago (database clock, like rotated_at), when that session is live and its
   * current token is `successorHash`, the successor the rotation issued (see
   * AccessTokens.refreshSuccessor). Undefined otherwise: the caller then treats it as a reuse. Reads
   * only; run after rotate(), which waits for a concurrent rotation of the same token to commit.
   */
  async findRecentlyRotated(
    presentedHash: Buffer,
    successorHash: Buffer,
    graceSeconds: number,
  ): Promise<{ sessionId: string; userId: number } | undefined> {
    const rows = await this.query<{ sessionId: string; userId: number }>(this.sql.findRecentlyRotated, [
      presentedHash,
      successorHash,
      graceSeconds,
    ]);
    return rows[0];
  }

  /**
   * Theft detection: when the presented token was already rotated, someone else holds its
   * successor, so the whole session is revoked. True when that happened just now.
   */
  async revokeIfReused(presentedHash: Buffer): Promise<boolean> {
    if (this.portable) {
      const tx = this.txHost.tx;
      const { affected } = await tx
        .createQueryBuilder()
        .update(Session)
        .set({ revokedAt: () => this.sql.now })
        .where('revoked_at IS NULL')
        .andWhere(
          'id IN (SELECT session_id FROM refresh_tokens WHERE token_hash = :presentedHash AND rotated_at IS NOT NULL)',
          {
            presentedHash,
          },
        )
        .execute();
      return Boolean(affected);
    }
    // A CTE, so the driver answers rows (TypeORM returns [rows, count] for a bare UPDATE).
    const rows = await this.txHost.tx.query<unknown[]>(
      'WITH revoked AS (UPDATE sessions s SET revoked_at = now() FROM refresh_tokens t ' +
        'WHERE t.token_hash = $1 AND t.rotated_at IS NOT NULL AND s.id = t.session_id AND s.revoked_at IS NULL RETURNING s.id) ' +
        'SELECT id FROM revoked',
      [presentedHash],
    );
    return rows.length > 0;
  }

  /** Logout: this session's access and refresh tokens stop working with the next request. */
  async revoke(sessionId: string): Promise<void> {
    await this.query(this.sql.revoke, [sessionId]);
  }

  /** Every live session of a user but `keep` (a password change ends the others). */
  async revokeAllOf(userId: number, keep?: string): Promise<void> {
    const other = keep ?? null;
    await this.query(this.sql.revokeAllOf, this.portable ? [userId, other, other] : [userId, other]);
  }

  /**
   * The user's live sessions (not revoked, not expired), most recently used first; `lastUsedAt` is
   * the creation time until an access token of the session was used. At most `limit` rows.
   */
  async listLive(userId: number, limit: number): Promise<LiveSession[]> {
    const rows = await this.query<LiveSession>(this.sql.listLive, [userId, limit]);
    // SQLite hands COALESCE's result back as text (it has no declared type): as a Date like the others.
    return rows.map((row) => ({ ...row, lastUsedAt: asDate(row.lastUsedAt) }));
  }

  /** Ends the session `sessionId` if it is a live one of `userId`'s. True when it did. */
  async revokeOwn(userId: number, sessionId: string): Promise<boolean> {
    if (this.portable) {
      const tx = this.txHost.tx;
      const { affected } = await tx
        .createQueryBuilder()
        .update(Session)
        .set({ revokedAt: () => this.sql.now })
        .where(`id = :sessionId AND user_id = :userId AND revoked_at IS NULL AND expires_at > ${this.sql.now}`, {
          sessionId,
          userId,
        })
        .execute();
      return Boolean(affected);
    }
    const rows = await this.txHost.tx.query<unknown[]>(
      'WITH revoked AS (UPDATE sessions SET revoked_at = now() WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > now() RETURNING id) SELECT id FROM revoked',
      [sessionId, userId],
    );
    return rows.length > 0;
  }

  /**
   * Records that the session was used now, unless it was recorded less than `resolutionSeconds`
   * ago (the WHERE re-checks, so instances sharing the database write at most once per interval too).
   */
  async touch(sessionId: string, resolutionSeconds: number): Promise<void> {
    await this.query(this.sql.touch, [sessionId, resolutionSeconds]);
  }

  private get portable(): boolean {
    return this.dialect !== 'postgres';
  }

  /** Runs one of this dialect's statements in the current transaction, or on its own. */
  private query<T>(sql: string, parameters: unknown[]): Promise<T[]> {
    return this.txHost.tx.query<T[]>(sql, parameters);
  }
}
