import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';

/**
 * `count` fresh users for a DELETE benchmark, each with a profile, a post and a comment on it (so the
 * delete cascades), with consecutive ids; returns the first id. PostgreSQL only (one statement).
 * Throws when the ids came out not consecutive (another writer interleaved).
 */
export async function createVictims(db: DataSource, count: number): Promise<number> {
  const [{ first, last, created }] = await db.query<{ first: number; last: number; created: number }[]>(
    `WITH victims AS (
       INSERT INTO users (name, email)
       SELECT 'Victim ' || i, 'victim-' || $2 || '-' || i || '@example.com' FROM generate_series(1, $1::int) AS i
       RETURNING id),
     profiles AS (INSERT INTO profiles (user_id, bio) SELECT id, 'soon gone' FROM victims),
     posts AS (INSERT INTO posts (author_id, title, body) SELECT id, 'Last post', 'Bye' FROM victims RETURNING id, author_id),
     comments AS (INSERT INTO comments (post_id, author_id, body) SELECT id, author_id, 'Bye' FROM posts)
     SELECT min(id)::int AS first, max(id)::int AS last, count(*)::int AS created FROM victims`,
    [count, randomUUID()],
  );
  if (last - first + 1 !== created) throw new Error('victim ids are not consecutive');
  return first;
}
