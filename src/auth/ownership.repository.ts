import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { boundFor } from '../database/dialects/sql-dialect';

/** Who wrote what: the lookups the access policy makes before a write to a post or comment. Primary-key lookups only. */
@Injectable()
export class OwnershipRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** The post's author, or undefined when there is no such post. */
  async postAuthor(postId: number): Promise<number | undefined> {
    const rows = await this.query<{ authorId: number }>('SELECT author_id AS "authorId" FROM posts WHERE id = $1', [
      postId,
    ]);
    return rows[0]?.authorId;
  }

  /** The comment's author and its post's author, or undefined when there is no such comment. */
  async commentAuthors(commentId: number): Promise<{ authorId: number; postAuthorId: number } | undefined> {
    const rows = await this.query<{ authorId: number; postAuthorId: number }>(
      'SELECT c.author_id AS "authorId", p.author_id AS "postAuthorId" FROM comments c JOIN posts p ON p.id = c.post_id WHERE c.id = $1',
      [commentId],
    );
    return rows[0];
  }

  /** PostgreSQL's statement as written; elsewhere with `?` placeholders (the text is otherwise portable). */
  private query<T>(sql: string, parameters: unknown[]): Promise<T[]> {
    return this.dataSource.query<T[]>(...boundFor(this.dataSource, sql, parameters));
  }
}
