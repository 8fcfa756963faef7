import { DataSource } from 'typeorm';
import { loadConfig } from '../src/config/app.config';
import { dataSourceOptions } from '../src/database/data-source.options';
import { SEED_BATCH_USERS, seed } from '../src/database/seed';
import { useTestApp } from './setup/test-app';
import { describeOn } from './setup/dialect';

describeOn(
  ['postgres'],
  'npm run db:seed is PostgreSQL-only (set-based SQL); CI checks its one-line refusal on MariaDB',
)('seed data', () => {
  const t = useTestApp();

  it('fills users, profiles, posts and comments in bulk, and is idempotent', async () => {
    const db = t.db;
    const first = await seed(t.dataSource, { users: 40, postsPerUser: 3, commentsPerPost: 2 });
    expect(first).toEqual({ users: 40, posts: 120, comments: 240 });
    expect(await db.count('profiles')).toBeGreaterThan(20);

    expect(await seed(t.dataSource, { users: 40, postsPerUser: 3, commentsPerPost: 2 })).toEqual({
      users: 0,
      posts: 0,
      comments: 0,
    });
    expect(await seed(t.dataSource, { users: 50, postsPerUser: 3, commentsPerPost: 2 })).toEqual({
      users: 10,
      posts: 30,
      comments: 60,
    });
    expect([await db.count('users'), await db.count('posts'), await db.count('comments')]).toEqual([50, 150, 300]);

    const page = await t.api.get('/users?limit=5').expect(200);
    expect(page.body).toHaveLength(5);
    expect(page.body[0].posts[0].comments).toHaveLength(2);
    const names = (await t.query('SELECT count(DISTINCT name)::int AS n FROM users'))[0].n;
    expect(names).toBeLessThan(50); // duplicate names, as in real data
  });

  it('loads in committed batches with a progress report, past a statement timeout, and analyzes what it filled', async () => {
    // Connections whose statement timeout (100 ms, as a role default would give every session) every
    // bulk INSERT of a batch outlasts, while BEGIN and SET LOCAL stay within it even on a loaded machine.
    const options = dataSourceOptions({ ...loadConfig({}).database, url: process.env.DATABASE_URL });
    const hurried = await new DataSource({
      ...options,
      extra: { ...(options.extra as object), options: '-c statement_timeout=100' },
      logger: undefined,
      logging: false,
      maxQueryExecutionTime: undefined,
    }).initialize();
    try {
      await expect(hurried.query('SELECT pg_sleep(0.5)')).rejects.toThrow(/statement timeout/);
      const progress: number[][] = [];
      const added = await seed(
        hurried,
        { users: SEED_BATCH_USERS + 10, postsPerUser: 2, commentsPerPost: 1 },
        (done, total) => progress.push([done, total]),
      );
      expect(added).toEqual({
        users: SEED_BATCH_USERS + 10,
        posts: 2 * (SEED_BATCH_USERS + 10),
        comments: 2 * (SEED_BATCH_USERS + 10),
      });
      expect(progress).toEqual([
        [SEED_BATCH_USERS, SEED_BATCH_USERS + 10],
        [SEED_BATCH_USERS + 10, SEED_BATCH_USERS + 10],
      ]);
    } finally {
      await hurried.destroy();
    }
    // ANALYZE ran: the planner's row estimates are the loaded tables', not an empty table's (-1: never analyzed).
    const stats = await t.query<{ relname: string; reltuples: number }[]>(
      "SELECT relname, reltuples::int AS reltuples FROM pg_class WHERE relname IN ('users', 'posts', 'comments') ORDER BY relname",
    );
    const expected = {
      comments: 2 * (SEED_BATCH_USERS + 10),
      posts: 2 * (SEED_BATCH_USERS + 10),
      users: SEED_BATCH_USERS + 10,
    };
    for (const { relname, reltuples } of stats) {
      // Sampled beyond 30,000 rows: within a tenth.
      expect(Math.abs(reltuples - expected[relname as keyof typeof expected])).toBeLessThan(
        expected[relname as keyof typeof expected] / 10,
      );
    }
    expect(stats).toHaveLength(3);
  });
});
