import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { openCliDatabase } from './cli-database';
import { seed } from './seed';

/**
 * `npm run db:seed -- --users 1000 --posts 10 --comments 5`: see seed.ts. Migrates first; prints a
 * progress line per batch of SEED_BATCH_USERS users and a summary.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      users: { type: 'string', default: '100' },
      posts: { type: 'string', default: '5' },
      comments: { type: 'string', default: '3' },
    },
  });
  const size = {
    users: Number(values.users),
    postsPerUser: Number(values.posts),
    commentsPerPost: Number(values.comments),
  };
  if (!Object.values(size).every((n) => Number.isInteger(n) && n >= 0 && n <= 1_000_000)) {
    throw new Error('--users, --posts and --comments take whole numbers from 0 to 1000000');
  }
  const database = await openCliDatabase();
  try {
    await database.dataSource.initialize();
    await database.dataSource.runMigrations();
    const started = Date.now();
    const added = await seed(database.dataSource, size, (done, total, so) => {
      // One line per committed batch, so a long seed shows it is moving (and how fast).
      const seconds = ((Date.now() - started) / 1000).toFixed(0);
      console.log(
        `… ${done}/${total} users (${so.users} added, ${so.posts} posts, ${so.comments} comments) after ${seconds} s`,
      );
    });
    console.log(
      `seeded ${added.users} users, ${added.posts} posts, ${added.comments} comments in ${Date.now() - started} ms`,
    );
  } finally {
    await database.close();
  }
}

main().catch((error: unknown) => {
  console.error(`Seeding failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
