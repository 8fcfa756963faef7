import type { DataSource } from 'typeorm';
import { sqlDialectOf } from './dialects/sql-dialect';

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

/** Users per transaction: each batch commits on its own, so a large seed shows progress and a failure keeps what committed. */
export const SEED_BATCH_USERS = 20_000;

/** Called after each committed batch: users of this run's size done so far (created or already there), of `total`. */
export type SeedProgress = (done: number, total: number, added: SeedResult) => void;

/**
 * A realistic sample — users (two in three with a profile), their posts, comments by other users —
 * in a few set-based INSERTs per batch of SEED_BATCH_USERS users. Idempotent: users are
 * `seed-<n>@example.com`, and posts and comments are only added for users this run created, so
 * running it again adds nothing, and a larger size tops the data up.
 *
 * Each batch uses the guide's manual-commit form (start, commit, or roll back on error;
 * docs/from-sqlalchemy.md) on a QueryRunner, with `SET LOCAL statement_timeout = 0`: the seed's own
 * statements are bulk loads, not requests (1M users timed out on the app's 15 s). When anything was
 * added, the four tables are ANALYZEd at the end: right after a bulk load the planner's statistics
 * still describe the empty tables (GET /users/{id} ran 50× slower until autovacuum caught up).
 */
export async function seed(dataSource: DataSource, size: SeedSize, onProgress?: SeedProgress): Promise<SeedResult> {
  // Set-based PostgreSQL (generate_series, arrays, ON CONFLICT … RETURNING): a documented limit.
  if (sqlDialectOf(dataSource) !== 'postgres') {
    throw new Error(
      'npm run db:seed works on PostgreSQL only: unset DATABASE_URL (embedded PostgreSQL) or give a postgres:// URL',
    );
  }
  const total: SeedResult = { users: 0, posts: 0, comments: 0 };
  for (let first = 1; first <= size.users; first += SEED_BATCH_USERS) {
    const last = Math.min(size.users, first + SEED_BATCH_USERS - 1);
    const added = await seedBatch(dataSource, first, last, size);
    total.users += added.users;
    total.posts += added.posts;
    total.comments += added.comments;
    onProgress?.(last, size.users, total);
  }
  if (total.users > 0) {
    // In a transaction of its own, so that SET LOCAL lifts the statement timeout for it alone.
    await dataSource.transaction(async (manager) => {
      await manager.query('SET LOCAL statement_timeout = 0');
      await manager.query('ANALYZE users, profiles, posts, comments');
    });
  }
  return total;
}

/** Users `seed-<first>` … `seed-<last>` (those not there yet) with their profiles, posts and comments, in one transaction. */
async function seedBatch(dataSource: DataSource, first: number, last: number, size: SeedSize): Promise<SeedResult> {
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  await runner.startTransaction();
  try {
    await runner.query('SET LOCAL statement_timeout = 0');
    const created: { id: number }[] = await runner.query(
      `INSERT INTO users (name, email, created_at)
       SELECT ($3::text[])[1 + i % array_length($3, 1)] || ' ' || ($4::text[])[1 + (i / 4) % array_length($4, 1)],
              'seed-' || i || '@example.com',
              now() - (i || ' minutes')::interval
         FROM generate_series($1::int, $2::int) AS i
       ON CONFLICT ((lower(email))) DO NOTHING
       RETURNING id`,
      [first, last, FIRST, LAST],
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
