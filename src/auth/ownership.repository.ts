import { Inject, Injectable } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import type { SqlDialect } from '../database/dialects/dialect';
import { SQL_DIALECT } from '../database/dialects/sql-dialect.module';
import { queryRows } from '../database/reads/pool-queries';

/** One dialect's statements; each binds (id). */
type Statements = { postAuthor: string; commentAuthors: string };

/** The statements MySQL/MariaDB and SQLite share: `?` placeholders. */
const PORTABLE_SQL: Statements = {
  postAuthor: 'SELECT author_id AS "authorId" FROM posts WHERE id = ?',
  commentAuthors:
    'SELECT c.author_id AS "authorId", p.author_id AS "postAuthorId" FROM comments c JOIN posts p ON p.id = c.post_id WHERE c.id = ?',
};

/** Which statements each dialect takes (see database/dialects/sql-dialect.ts). */
const SQL: Record<SqlDialect, Statements> = {
  postgres: {
    postAuthor: 'SELECT author_id AS "authorId" FROM posts WHERE id = $1',
    commentAuthors:
      'SELECT c.author_id AS "authorId", p.author_id AS "postAuthorId" FROM comments c JOIN posts p ON p.id = c.post_id WHERE c.id = $1',
  },
  mysql: PORTABLE_SQL,
  sqlite: PORTABLE_SQL,
};

/**
 * Who wrote what: the lookups the access policy makes before a write to a post or comment. Primary-key
 * lookups only. Inside a transaction (a keyed write: IdempotencyInterceptor runs the whole handler in
 * one) they run on its connection: a second connection taken from the pool while the transaction holds
 * one would deadlock the pool once as many such writes run at once as it has connections.
 */
@Injectable()
export class OwnershipRepository {
  private readonly sql: Statements;

  constructor(
    private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>,
    @Inject(SQL_DIALECT) private readonly dialect: SqlDialect,
  ) {
    this.sql = SQL[dialect];
  }

  /** The post's author, or undefined when there is no such post. */
  async postAuthor(postId: number): Promise<number | undefined> {
    const rows = await this.query<{ authorId: number }>(this.sql.postAuthor, [postId]);
    return rows[0]?.authorId;
  }

  /** The comment's author and its post's author, or undefined when there is no such comment. */
  async commentAuthors(commentId: number): Promise<{ authorId: number; postAuthorId: number } | undefined> {
    const rows = await this.query<{ authorId: number; postAuthorId: number }>(this.sql.commentAuthors, [commentId]);
    return rows[0];
  }

  /** In the open transaction if there is one, else on the pool (queryRows). */
  private query<T>(sql: string, parameters: unknown[]): Promise<T[]> {
    return queryRows<T>(this.txHost.tx, this.dialect, sql, parameters);
  }
}
