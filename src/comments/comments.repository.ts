import { Inject, Injectable } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { InjectRepository } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import { ReadRouter } from '../database/reads/read-routing';
import type { SqlDialect } from '../database/dialects/dialect';
import { SQL_DIALECT } from '../database/dialects/sql-dialect.module';
import { inCurrentTransaction } from '../database/transactions/transactions';
import { Comment } from './entities/comment.entity';

/** The columns a client may set on a comment row (its post comes from the path). */
export type CommentValues = Pick<Comment, 'authorId' | 'body'>;

const COMMENT_COLUMNS = 'id, post_id AS "postId", author_id AS "authorId", body, created_at AS "createdAt"';

/** One dialect's statements. */
type Statements = { page: string; pageAfter: string; postExists: string };

/** The statements MySQL/MariaDB and SQLite share: `?` placeholders, no arrays or JSON building. */
const PORTABLE_SQL: Statements = {
  page: `SELECT ${COMMENT_COLUMNS} FROM comments WHERE post_id = ? ORDER BY created_at, id LIMIT ?`,
  pageAfter:
    `SELECT ${COMMENT_COLUMNS} FROM comments WHERE post_id = ? AND (created_at > ? OR (created_at = ? AND id > ?)) ` +
    'ORDER BY created_at, id LIMIT ?',
  postExists: 'SELECT EXISTS (SELECT 1 FROM posts WHERE id = ?) AS "exists"',
};

/**
 * The first comments of one post, in keyset order, on comments_post_id_created_at_id_idx: the branch
 * of the batch loader behind every nested read (findFirstByPostIds, see ReadRouter.firstRows). Plain
 * SQL for speed (ADR 0002, BENCHMARKS.md); each column is aliased to its `Comment` property, so the
 * rows come back as Comments with no mapping (a test checks they equal what the repository loads).
 */
const FIRST_OF_POST = {
  postgres: `SELECT ${COMMENT_COLUMNS} FROM comments WHERE post_id >= k.v AND post_id <= k.v ORDER BY post_id, created_at, id`,
  postgresOneKey: `SELECT ${COMMENT_COLUMNS} FROM comments WHERE post_id = $1 ORDER BY created_at, id`,
  portable: `SELECT ${COMMENT_COLUMNS} FROM comments WHERE post_id = ? ORDER BY created_at, id`,
};
/** postId, createdAt, id: COMMENT_COLUMNS' 2nd, 5th and 1st. */
const BY_POST_IN_KEYSET_ORDER = '2, 5, 1';

/**
 * Which statements each dialect takes (see database/dialects/sql-dialect.ts).
 * - FIRST_OF_POST (below): the batch loader behind every nested read.
 * - page / pageAfter: a page of one post's comments in keyset order (findPageAfter); portable spells
 *   the row comparison out, which MySQL's optimizer turns into a range on the index.
 * - postExists: 1/0 on MySQL, true/false on PostgreSQL: read with Boolean().
 */
const SQL: Record<SqlDialect, Statements> = {
  postgres: {
    page: `SELECT ${COMMENT_COLUMNS} FROM comments WHERE post_id = $1 ORDER BY created_at, id LIMIT $2`,
    pageAfter: `SELECT ${COMMENT_COLUMNS} FROM comments WHERE post_id = $1 AND (created_at, id) > ($3, $4) ORDER BY created_at, id LIMIT $2`,
    postExists: 'SELECT EXISTS (SELECT 1 FROM posts WHERE id = $1) AS "exists"',
  },
  mysql: PORTABLE_SQL,
  sqlite: PORTABLE_SQL,
};

/**
 * All SQL for the `comments` table. Every statement runs in the caller's transaction when one is
 * open (`txHost.tx`, see inCurrentTransaction), else on the pool; the service decides where
 * transactions begin and end; reads go through ReadRouter (a GET's may be served by a replica). (Deleting a user or a post locks its comments: that statement lives
 * with the delete, in UsersRepository and PostsRepository.)
 */
@Injectable()
export class CommentsRepository {
  private readonly sql: Statements;

  constructor(
    @InjectRepository(Comment) private readonly comments: Repository<Comment>,
    private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>,
    private readonly reads: ReadRouter,
    @Inject(SQL_DIALECT) private readonly dialect: SqlDialect,
  ) {
    this.sql = SQL[this.dialect];
  }

  /** One comment by id, or null. */
  findById(id: number): Promise<Comment | null> {
    return this.reads.read((db) => db.findOneBy(Comment, { id }));
  }

  /**
   * The first `limit` comments of each given post (oldest first: created_at, id), grouped by post:
   * each post's read stops at `limit`, however many comments it has. PostgreSQL: one statement
   * (`LATERAL`, or a plain one for a single post); portable: one per 250 posts (see
   * ReadRouter.firstRows). `[]` sends nothing.
   */
  findFirstByPostIds(postIds: number[], limit: number): Promise<Comment[]> {
    return this.reads.firstRows<Comment>(postIds, limit, FIRST_OF_POST, BY_POST_IN_KEYSET_ORDER);
  }

  /**
   * At most `limit` comments of a post in (createdAt, id) order, strictly after `after` ([createdAt, id]) when given:
   * one keyset statement, `WHERE (created_at, id) > ($2, $3)` on index comments_post_id_created_at_id_idx.
   * Plain SQL with the batch loader's columns (FIRST_OF_POST), for the same reason (a test checks
   * the rows against the repository's).
   */
  findPageAfter(postId: number, after: [createdAt: Date, id: number] | undefined, limit: number): Promise<Comment[]> {
    const parameters = !after
      ? [postId, limit]
      : this.dialect === 'postgres'
        ? [postId, limit, after[0], after[1]]
        : [postId, after[0], after[0], after[1], limit];
    return this.reads.query<Comment>(after ? this.sql.pageAfter : this.sql.page, parameters);
  }

  /** Whether the post a comment list belongs to exists (`SELECT EXISTS (… posts WHERE id = $1)`). */
  async postExists(postId: number): Promise<boolean> {
    const [{ exists }] = await this.reads.query<{ exists: boolean | number }>(this.sql.postExists, [postId]);
    return Boolean(exists);
  }

  /**
   * Inserts comments on one post, in order (`INSERT … RETURNING id, created_at`); returns them as
   * stored. A missing post fails on comments_post_id_fkey (404), a missing author on
   * comments_author_id_fkey (422).
   */
  insertMany(postId: number, comments: CommentValues[]): Promise<Comment[]> {
    const repository = inCurrentTransaction(this.txHost, this.comments);
    // Portable: one INSERT per comment. MySQL's foreign-key error does not say which author is
    // missing; with one row per statement the translation names it (database/errors/database-errors.ts).
    const chunk = this.dialect !== 'postgres' ? 1 : undefined;
    return repository.save(
      comments.map((comment) => repository.create({ ...comment, postId })),
      { chunk },
    );
  }

  /** `DELETE FROM comments WHERE id = $1`; false when there was no such comment. */
  async delete(id: number): Promise<boolean> {
    const { affected } = await inCurrentTransaction(this.txHost, this.comments).delete({ id });
    return Boolean(affected);
  }
}
