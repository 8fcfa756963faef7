import type { DataSource } from 'typeorm';
import { sqlDialectOf } from '../db/sql-dialect';

export interface SeedSize {
  users: number;
  postsPerUser: number;
  commentsPerPost: number;
}

export interface SeedResult {
  users: number;
  posts: number;
  comments: number;
}

// Few names, many users: duplicates are realistic and exercise "ordered by name, then id".
const FIRST = [
  'Ada',
  'Alan',
  'Grace',
  'Edsger',
  'Barbara',
  'Donald',
  'Frances',
  'John',
  'Katherine',
  'Linus',
  'Margaret',
  'Niklaus',
];
const LAST = [
  'Lovelace',
  'Turing',
  'Hopper',
  'Dijkstra',
  'Liskov',
  'Knuth',
  'Allen',
  'Backus',
  'Johnson',
  'Torvalds',
  'Hamilton',
  'Wirth',
];

/**
 * A realistic sample — users (two in three with a profile), their posts, comments by other users —
 * in a few set-based INSERTs. Idempotent: users are `seed-<n>@example.com`, and posts and comments
 * are only added for users this run created, so running it again adds nothing, and a larger size
 * tops the data up.
 *
 * It uses the guide's manual-commit form (start, commit, or roll back on error; docs/from-sqlalchemy.md) on a QueryRunner:
 * the seed is a script, not a request, so there is no ambient transaction to join.
 */
export async function seed(dataSource: DataSource, size: SeedSize): Promise<SeedResult> {
  // Set-based PostgreSQL (generate_series, arrays, ON CONFLICT … RETURNING): a documented limit.
  if (sqlDialectOf(dataSource) !== 'postgres') {
    throw new Error(
      'npm run db:seed works on PostgreSQL only: unset DATABASE_URL (embedded PostgreSQL) or give a postgres:// URL',
    );
  }
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  await runner.startTransaction();
  try {
    const created: { id: number }[] = await runner.query(
      `INSERT INTO users (name, email, created_at)
       SELECT ($2::text[])[1 + i % array_length($2, 1)] || ' ' || ($3::text[])[1 + (i / 4) % array_length($3, 1)],
              'seed-' || i || '@example.com',
              now() - (i || ' minutes')::interval
         FROM generate_series(1, $1::int) AS i
       ON CONFLICT ((lower(email))) DO NOTHING
       RETURNING id`,
      [size.users, FIRST, LAST],
    );
    const userIds = created.map((row) => row.id);
    if (userIds.length === 0) {
      await runner.commitTransaction();
      return { users: 0, posts: 0, comments: 0 };
    }

    await runner.query(
      `INSERT INTO profiles (user_id, bio, avatar_url)
       SELECT id, 'Writes about ' || (ARRAY['compilers', 'databases', 'networks', 'type systems'])[1 + id % 4],
              CASE WHEN id % 2 = 0 THEN 'https://example.com/avatars/' || id || '.png' END
         FROM unnest($1::int[]) AS id
        WHERE id % 3 <> 0`,
      [userIds],
    );
    const [{ posts }]: { posts: number }[] = await runner.query(
      `WITH inserted AS (
         INSERT INTO posts (author_id, title, body, created_at, updated_at)
         SELECT author, 'Notes on ' || (ARRAY['engines', 'proofs', 'queues', 'indexes', 'caches'])[1 + (author + n) % 5] || ' #' || n,
                repeat('Lorem ipsum dolor sit amet, consectetur adipiscing elit. ', 1 + (author + n) % 4),
                now() - ((author + n) || ' hours')::interval, now() - ((author + n) || ' hours')::interval
           FROM unnest($1::int[]) AS author, generate_series(1, $2::int) AS n
         RETURNING 1)
       SELECT count(*)::int AS posts FROM inserted`,
      [userIds, size.postsPerUser],
    );
    // Comment authors are other users of this batch, picked deterministically.
    const [{ comments }]: { comments: number }[] = await runner.query(
      `WITH inserted AS (
         INSERT INTO comments (post_id, author_id, body, created_at)
         SELECT p.id, ($1::int[])[1 + (p.id * 7 + c) % array_length($1, 1)], 'Comment ' || c || ' on post ' || p.id,
                p.created_at + (c || ' minutes')::interval
           FROM posts AS p, generate_series(1, $2::int) AS c
          WHERE p.author_id = ANY($1)
         RETURNING 1)
       SELECT count(*)::int AS comments FROM inserted`,
      [userIds, size.commentsPerPost],
    );
    await runner.commitTransaction();
    return { users: userIds.length, posts, comments };
  } catch (error) {
    await runner.rollbackTransaction();
    throw error;
  } finally {
    await runner.release();
  }
}
