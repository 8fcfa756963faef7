import { seed } from '../src/database/seed';
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
});
