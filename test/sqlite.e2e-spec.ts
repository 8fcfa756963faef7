import { TransactionHost } from '@nestjs-cls/transactional';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { setTimeout as sleep } from 'node:timers/promises';
import { DataSource, type MigrationInterface, type QueryRunner } from 'typeorm';
import { loadConfig } from '../src/config/app.config';
import { dataSourceOptions } from '../src/database/data-source.options';
import { sqliteDatabasePath } from '../src/database/dialects/sqlite';
import { inTransaction } from '../src/database/transactions/transactions';
import { bearer, PASSWORD, signUp } from './setup/accounts';
import { describeOn } from './setup/dialect';
import { startTestApp, useTestApp, type TestApp } from './setup/test-app';

const PROBLEM = /application\/problem\+json/;

/** better-sqlite3's connection, as far as these tests read it directly. */
interface RawConnection {
  prepare(sql: string): { get(): { n: number } };
}
const txHostOf = (t: TestApp) => t.app.get<TransactionHost<TransactionalAdapterTypeOrm>>(TransactionHost);

/**
 * What SQLite needs that PostgreSQL and MariaDB give by themselves (database/dialects/sqlite.ts): TypeORM runs
 * every statement on ONE better-sqlite3 connection, so without the gate a request would read inside
 * another's open transaction. The rest of the suite checks the same behaviour on every dialect.
 */
describeOn(['sqlite'], 'these tests are about SQLite’s single connection and text timestamps')('SQLite', () => {
  const t = useTestApp();

  /** A transaction that inserts a user and stays open until `finish` is called; then it rolls back. */
  function openTransaction() {
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    let inserted!: () => void;
    const insertedYet = new Promise<void>((resolve) => (inserted = resolve));
    const txHost = txHostOf(t);
    const done = inTransaction(txHost, async () => {
      await txHost.tx.query("INSERT INTO users (name, email) VALUES ('Ghost', 'ghost@example.com')");
      inserted();
      await finished;
      throw new Error('rolled back on purpose');
    });
    return { insertedYet, finish, done: done.catch((error: Error) => error.message) };
  }

  it('a read during another request’s open transaction does not see its uncommitted insert', async () => {
    const tx = openTransaction();
    await tx.insertedYet;
    // Both start while the insert is uncommitted; they may only run once the transaction ended.
    const count = t.db.count('users');
    const page = t.api.get('/users').then((res) => res); // supertest sends on then()
    await sleep(50);
    tx.finish();
    expect(await tx.done).toBe('rolled back on purpose');
    expect(await count).toBe(0);
    const { status, body } = await page;
    expect(status).toBe(200);
    expect(body).toEqual([]);
  });

  it('another request’s write never joins (and vanishes with) a transaction that is open', async () => {
    const ada = await signUp(t.api, 'Ada'); // before: signing up hashes a password, which would outlast the hold
    const tx = openTransaction();
    await tx.insertedYet;
    const created = t.api
      .post(`/users/${ada.id}/posts`)
      .set(bearer(ada))
      .send({ title: 'Kept', body: 'b' })
      .then((res) => res); // supertest sends on then()
    // Hold the transaction until the post shows on the connection (it would, ungated, inside this
    // transaction) or for 1.5 s; the raw connection is read past the gate.
    const connection = (t.dataSource.driver as unknown as { databaseConnection: RawConnection }).databaseConnection;
    for (let waited = 0; waited < 1_500; waited += 20) {
      if (connection.prepare('SELECT count(*) AS n FROM posts').get().n > 0) break;
      await sleep(20);
    }
    tx.finish();
    expect(await tx.done).toBe('rolled back on purpose');
    expect((await created).status).toBe(201);
    expect(await t.db.count('posts')).toBe(1);
  });

  it('30 concurrent transactions all commit, one after another (no nested BEGIN, no SAVEPOINT mix-up)', async () => {
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        t.api.post('/users').send({ name: `U${i}`, email: `u${i}@example.com`, password: PASSWORD }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array(30).fill(201));
    expect(await t.db.count('users')).toBe(30);
  });

  it('emails are unique whatever their case beyond ASCII: ÉMILE@… after émile@… is 409 naming email (NFC, as on PostgreSQL)', async () => {
    const first = await t.api.post('/users').send({ name: 'Émile', email: 'émile@example.com', password: PASSWORD });
    expect(first.status).toBe(201);
    const second = await t.api.post('/users').send({ name: 'Émile', email: 'ÉMILE@EXAMPLE.COM', password: PASSWORD });
    expect(second.status).toBe(409);
    expect(second.headers['content-type']).toMatch(PROBLEM);
    expect(second.body.errors).toEqual([{ field: 'email', messages: [expect.any(String)] }]);
  });

  it("timestamps keep their milliseconds in UTC (SQLite’s datetime('now') would drop them)", async () => {
    const ada = await t.db.user('Ada');
    const [row] = await t.dataSource.query<{ text: string }[]>(
      'SELECT CAST(created_at AS TEXT) AS text FROM users WHERE id = ?',
      [ada.id],
    );
    expect(row.text).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$/);
    const { body } = await t.api.get(`/users/${ada.id}`);
    expect(body.createdAt).toBe(`${row.text.replace(' ', 'T')}Z`);
  });

  it('a comment inserted at a clock behind the post’s latest comment still sorts after it (keyset order)', async () => {
    const ada = await t.db.user('Ada');
    const post = await t.db.post(ada.id);
    await t.dataSource.query(
      "INSERT INTO comments (post_id, author_id, body, created_at) VALUES (?, ?, 'from the future', '2999-01-01 00:00:00.000')",
      [post.id, ada.id],
    );
    await t.db.comment(post.id, ada.id, 'now');
    const rows = await t.dataSource.query<{ body: string; createdAt: Date }[]>(
      'SELECT body, created_at AS "createdAt" FROM comments WHERE post_id = ? ORDER BY id',
      [post.id],
    );
    expect(rows.map((row) => [row.body, row.createdAt.toISOString()])).toEqual([
      ['from the future', '2999-01-01T00:00:00.000Z'],
      ['now', '2999-01-01T00:00:00.001Z'],
    ]);
  });

  it('a foreign key violated inside a transaction is named: comment on a missing post → 404 naming postId', async () => {
    const writer = await signUp(t.api, 'Writer');
    const res = await t.api.post('/posts/987654/comments').set(bearer(writer)).send({ body: 'hello' });
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toMatch(PROBLEM);
  });
});

describeOn(['sqlite'], 'SQLite errors do not name constraints; the app reads the names from the schema')(
  'SQLite database created by the app at startup',
  () => {
    it('a duplicate email right after the migrations made the schema is 409 naming email (RFC 9457 §3)', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'nest-typeorm-users-new-'));
      const own = await startTestApp({ DATABASE_URL: `sqlite:${join(dir, 'app.db')}`, DB_MIGRATIONS_RUN: 'true' });
      try {
        const user = { name: 'Kate', email: 'kate@example.com', password: PASSWORD };
        await own.api.post('/users').send(user).expect(201);
        const duplicate = await own.api.post('/users').send(user).expect(409);
        expect(duplicate.body.errors.map((error: { field: string }) => error.field)).toEqual(['email']);
      } finally {
        await own.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);

describeOn(['sqlite'], 'only a SQLite file can be removed under the app')('SQLite file removed while open', () => {
  it('reads and writes answer 503 problem+json + Retry-After instead of being acknowledged and lost (RFC 9110 §15.6.4)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nest-typeorm-users-removed-'));
    const own = await startTestApp({ DATABASE_URL: `sqlite:${join(dir, 'app.db')}`, DB_MIGRATIONS_RUN: 'true' });
    try {
      const before = await own.api
        .post('/users')
        .send({ name: 'Before', email: 'before@example.com', password: PASSWORD });
      expect(before.status).toBe(201);
      for (const suffix of ['', '-wal', '-shm']) rmSync(join(dir, `app.db${suffix}`), { force: true });
      const write = await own.api
        .post('/users')
        .send({ name: 'After', email: 'after@example.com', password: PASSWORD });
      const read = await own.api.get(`/users/${before.body.id}`);
      for (const res of [write, read]) {
        expect(res.status).toBe(503);
        expect(res.headers['content-type']).toMatch(PROBLEM);
        expect(res.headers['retry-after']).toBeDefined();
      }
    } finally {
      await own.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describeOn(['sqlite'], 'the wait for the one SQLite connection is SqliteGate’s')('SQLite connection wait', () => {
  const t = useTestApp({ DB_POOL_TIMEOUT_MS: '200' });

  it('a request that waits longer than DB_POOL_TIMEOUT_MS for the connection gets 503 problem+json, never 500', async () => {
    const txHost = txHostOf(t);
    let finish = () => {};
    const held = inTransaction(txHost, () => new Promise<void>((resolve) => (finish = resolve))).catch(String);
    await sleep(20);
    const res = await t.api.get('/users');
    finish();
    await held;
    expect(res.status).toBe(503);
    expect(res.headers['content-type']).toMatch(PROBLEM);
    expect(res.headers['retry-after']).toBeDefined();
    expect((await t.api.get('/users')).status).toBe(200); // the connection is free again
  });
});

describeOn(['sqlite'], 'SQLite’s busy timeout and write lock')('SQLite write lock held by another process', () => {
  const t = useTestApp({ DB_POOL_TIMEOUT_MS: '200' });

  it('a write waits the busy timeout (DB_POOL_TIMEOUT_MS) for the write lock, then answers 503 problem+json, never 500', async () => {
    // Another process's connection (as `npm run db:seed` would hold) takes the write lock.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const Database = require('better-sqlite3') as new (path: string) => { exec(sql: string): void; close(): void };
    const other = new Database(sqliteDatabasePath(process.env.DATABASE_URL!));
    other.exec('BEGIN IMMEDIATE');
    try {
      const res = await t.api.post('/users').send({ name: 'Ada', email: 'ada@example.com', password: PASSWORD });
      expect(res.status).toBe(503);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect((await t.api.get('/users')).status).toBe(200); // WAL: readers are not blocked by that writer
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    expect(
      (await t.api.post('/users').send({ name: 'Ada', email: 'ada@example.com', password: PASSWORD })).status,
    ).toBe(201);
  });
});

/** What TypeORM's generator emits on SQLite for a column change: a rebuild of the table through a copy. */
class RebuildPosts1999999999999 implements MigrationInterface {
  name = 'RebuildPosts1999999999999';
  async up(queryRunner: QueryRunner): Promise<void> {
    const [{ sql }] = (await queryRunner.query(
      "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'posts'",
    )) as { sql: string }[];
    await queryRunner.query(sql.replace('CREATE TABLE "posts"', 'CREATE TABLE "temporary_posts"'));
    await queryRunner.query('INSERT INTO "temporary_posts" SELECT * FROM "posts"');
    await queryRunner.query('DROP TABLE "posts"');
    await queryRunner.query('ALTER TABLE "temporary_posts" RENAME TO "posts"');
  }
  async down(): Promise<void> {}
}

describeOn(['sqlite'], 'table rebuilds are how SQLite migrations change columns')('SQLite migrations', () => {
  it('a migration that rebuilds posts (copy, DROP, rename) keeps the comments ON DELETE CASCADE would have deleted', async () => {
    const path = join(tmpdir(), `wt-sqlite-rebuild-${process.pid}.db`);
    const open = (extra: MigrationInterface[] = []) => {
      const options = dataSourceOptions({ ...loadConfig({}).database, url: `sqlite:${path}`, migrationsRun: false });
      const migrations = [...(options.migrations as string[]), ...extra.map((migration) => migration.constructor)];
      return new DataSource({ ...options, migrations, logger: undefined, logging: false });
    };
    try {
      const before = await open().initialize();
      await before.runMigrations();
      await before.query("INSERT INTO users (id, name, email) VALUES (1, 'Ada', 'ada@example.com')");
      await before.query("INSERT INTO posts (id, author_id, title, body) VALUES (1, 1, 'T', 'B')");
      await before.query("INSERT INTO comments (post_id, author_id, body) VALUES (1, 1, 'kept')");
      await before.destroy();

      const after = await open([new RebuildPosts1999999999999()]).initialize();
      expect((await after.runMigrations()).map((migration) => migration.name)).toEqual(['RebuildPosts1999999999999']);
      expect(await after.query('SELECT body FROM comments')).toEqual([{ body: 'kept' }]);
      expect(await after.query('PRAGMA foreign_key_check')).toEqual([]);
      await after.destroy();
    } finally {
      for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
    }
  });
});
