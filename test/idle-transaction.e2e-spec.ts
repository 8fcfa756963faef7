import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { DataSource, type QueryRunner } from 'typeorm';
import { loadConfig } from '../src/config/app.config';
import { dataSourceOptions } from '../src/database/data-source.options';
import { runMigrationsExclusively } from '../src/database/migrations/migration-lock';
import { authAs } from './setup/accounts';
import { freshDatabase, type FreshDatabase } from './setup/databases';
import { describeOn, itOn, testDialect, testSql } from './setup/dialect';
import { startTestApp, type TestApp } from './setup/test-app';

const TIMEOUT_MS = 1_000;
/** Longer than the idle timeout (MariaDB's is in whole seconds, and checked as the connection's read timeout). */
const IDLE_MS = 2_500;

/**
 * DB_STATEMENT_TIMEOUT_MS also bounds how long a transaction may sit idle (PostgreSQL
 * `idle_in_transaction_session_timeout`, MariaDB `idle_transaction_timeout`): a transaction the app
 * leaves open — the network cut as COMMIT was sent — is ended by the server, its locks released, instead
 * of blocking retries until TCP keepalive ends the session hours later. On a database of its own, as
 * PostgreSQL's setting is the role's default per database.
 */
describeOn(['postgres', 'mysql'], 'SQLite runs in the process: no server keeps a transaction open for it')(
  'a transaction left idle is ended by the server',
  () => {
    let db: FreshDatabase;
    let t: TestApp;
    let other: DataSource;

    beforeAll(async () => {
      db = await freshDatabase('idle');
      t = await startTestApp({
        DATABASE_URL: db.url,
        DB_MIGRATIONS_RUN: 'true',
        DB_STATEMENT_TIMEOUT_MS: String(TIMEOUT_MS),
      });
      // Another client, with no timeouts of the app's (one connection: it waits for a lock at most a second).
      const options = dataSourceOptions({
        ...loadConfig({}).database,
        url: db.url,
        statementTimeoutMs: 0,
        poolSize: 1,
        poolMaxOverflow: 0,
      });
      other = await new DataSource({ ...options, migrations: [], logging: false }).initialize();
    }, 60_000);
    afterAll(async () => {
      await other?.destroy();
      await t?.close();
      await db?.drop();
    });

    it(`a write left idle in its transaction longer than DB_STATEMENT_TIMEOUT_MS is rolled back and its row lock released; the pool recovers (PostgreSQL docs, runtime-config-client, idle_in_transaction_session_timeout; MariaDB idle_transaction_timeout)`, async () => {
      const ada = await t.db.user('Ada');
      // As the app runs a transaction on its DataSource, then goes silent (its COMMIT lost on the way).
      const runner: QueryRunner = t.dataSource.createQueryRunner();
      await runner.connect();
      await runner.startTransaction();
      await runner.query(...testSql('UPDATE users SET name = $1 WHERE id = $2', ['Idle', ada.id]));
      const session = testDialect === 'postgres' ? 'pg_backend_pid()' : 'CONNECTION_ID()';
      const [{ id }] = (await runner.query(`SELECT ${session} AS id`)) as { id: number }[];
      await sleep(IDLE_MS);

      // The server ended that session: the row is not locked any more, and the write never committed.
      await other.query(
        testDialect === 'postgres' ? "SET lock_timeout = '1s'" : 'SET SESSION innodb_lock_wait_timeout = 1',
      );
      const started = Date.now();
      const [row] = await other.query<{ name: string }[]>(...testSql('SELECT name FROM users WHERE id = $1', [ada.id]));
      expect(row.name).toBe('Ada');
      await other.query(...testSql('UPDATE users SET name = $1 WHERE id = $2', ['Other', ada.id])); // fails after 1 s if still locked
      expect(Date.now() - started).toBeLessThan(TIMEOUT_MS);
      const sessions =
        testDialect === 'postgres' ? 'pg_stat_activity WHERE pid' : 'information_schema.processlist WHERE id';
      expect(await other.query(...testSql(`SELECT 1 FROM ${sessions} = $1`, [id]))).toEqual([]); // the server ended it
      await runner.rollbackTransaction().catch(() => undefined);
      await runner.release();

      // The pool drops that connection: the next requests are answered as usual.
      const auth = await authAs(t.app, ada.id);
      for (const name of ['One', 'Two', 'Three']) {
        await t.api.patch(`/users/${ada.id}`).set(auth).send({ name }).expect(200);
        expect((await t.api.get(`/users/${ada.id}`)).body.name).toBe(name);
      }
    });

    itOn(['postgres'], "the role defaults and SET LOCAL are PostgreSQL's (MariaDB sets both per connection)")(
      'both settings are the role defaults confirmed at startup: a session that SETs nothing gets them, and a transaction sends no SET LOCAL',
      async () => {
        const holder = new Client({ connectionString: db.url });
        await holder.connect();
        try {
          const { rows } = await holder.query<{ name: string; setting: string }>(
            "SELECT name, setting FROM pg_settings WHERE name IN ('statement_timeout', 'idle_in_transaction_session_timeout') ORDER BY name",
          );
          expect(rows).toEqual([
            { name: 'idle_in_transaction_session_timeout', setting: String(TIMEOUT_MS) },
            { name: 'statement_timeout', setting: String(TIMEOUT_MS) },
          ]);
        } finally {
          await holder.end();
        }
        const ada = await t.db.user('Ada');
        const auth = await authAs(t.app, ada.id);
        const sent = await t.queriesDuring(() =>
          t.api.patch(`/users/${ada.id}`).set(auth).send({ name: 'Ed' }).expect(200),
        );
        expect(sent.some((sql) => /^START TRANSACTION/.test(sql))).toBe(true);
        expect(sent.filter((sql) => /statement_timeout|idle_in_transaction|SET LOCAL/.test(sql))).toEqual([]);
      },
    );

    itOn(['postgres'], 'MariaDB/MySQL take a session lock (GET_LOCK) outside any transaction')(
      "the migration lock's transaction, idle while the migrations run, is not ended: the lock holds throughout",
      async () => {
        const watcher = new Client({ connectionString: db.url });
        await watcher.connect();
        const held = async () =>
          (await watcher.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'"))
            .rows[0].n;
        const run = jest.spyOn(t.dataSource, 'runMigrations').mockImplementation(async () => {
          await sleep(IDLE_MS); // migrations that take longer than DB_STATEMENT_TIMEOUT_MS
          expect(await held()).toBe(1);
          return [];
        });
        try {
          expect(await runMigrationsExclusively(t.dataSource)).toEqual([]);
          expect(run).toHaveBeenCalled();
          expect(await held()).toBe(0);
        } finally {
          run.mockRestore();
          await watcher.end();
        }
      },
    );
  },
);
