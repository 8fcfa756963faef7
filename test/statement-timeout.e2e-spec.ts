import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { loadConfig } from '../src/config/app.config';
import { dataSourceOptions } from '../src/database/data-source.options';
import { authAs } from './setup/accounts';
import { freshDatabase, type FreshDatabase } from './setup/databases';
import { describeOn } from './setup/dialect';
import { startTestApp, type TestApp } from './setup/test-app';

const TIMEOUT_MS = 1_000;
const PROBLEM = /application\/problem\+json/;

/**
 * DB_STATEMENT_TIMEOUT_MS reaches PostgreSQL without a startup parameter (PgBouncer in transaction mode
 * refuses one) and without session state: SET LOCAL in each transaction, the role's default in the
 * database outside them. On a database of its own, as the role default is per database.
 */
describeOn(['postgres'], "statement_timeout is PostgreSQL's (MariaDB's max_statement_time is set per connection)")(
  'statement timeout without startup parameters',
  () => {
    let db: FreshDatabase;
    let t: TestApp;
    let holder: Client;

    beforeAll(async () => {
      db = await freshDatabase('timeout');
      t = await startTestApp({
        DATABASE_URL: db.url,
        DB_MIGRATIONS_RUN: 'true',
        DB_STATEMENT_TIMEOUT_MS: String(TIMEOUT_MS),
      });
    }, 60_000);
    beforeEach(async () => {
      holder = new Client({ connectionString: db.url });
      await holder.connect();
      // It holds its locks idle in a transaction on purpose: the role's default would end it (test/idle-transaction.e2e-spec.ts).
      await holder.query('SET idle_in_transaction_session_timeout = 0');
    });
    afterEach(() => holder.end());
    afterAll(async () => {
      await t?.close();
      await db?.drop();
    });

    it('a write waiting on a row lock past the timeout answers 503 + Retry-After and changes nothing (the role default holds in transactions too; RFC 9110 §15.6.4)', async () => {
      const ada = await t.db.user('Ada');
      const auth = await authAs(t.app, ada.id); // before the lock: it writes a session row
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM users WHERE id = $1 FOR UPDATE', [ada.id]);
      const res = await t.api.patch(`/users/${ada.id}`).set(auth).send({ name: 'Changed' }).timeout(30_000); // without a statement timeout it would wait for the lock for ever
      await holder.query('ROLLBACK');
      expect(res.status).toBe(503);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      const [row] = await t.query<{ name: string }[]>('SELECT name FROM users WHERE id = $1', [ada.id]);
      expect(row.name).toBe('Ada');
    });

    it('a read outside a transaction waiting on a table lock past the timeout answers 503 (the role default of the database)', async () => {
      const ada = await t.db.user('Ada');
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE users IN ACCESS EXCLUSIVE MODE');
      const res = await t.api.get(`/users/${ada.id}`).timeout(30_000);
      await holder.query('ROLLBACK');
      expect(res.status).toBe(503);
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      expect((await t.api.get(`/users/${ada.id}`)).status).toBe(200);
    });

    it("the setting is the role's default in this database, and a session that SETs nothing gets it", async () => {
      const { rows } = await holder.query<{ setting: string }>(
        "SELECT setting FROM pg_settings WHERE name = 'statement_timeout'",
      );
      expect(Number(rows[0].setting)).toBe(TIMEOUT_MS);
      const { rows: defaults } = await holder.query<{ config: string[] }>(
        `SELECT setconfig AS config FROM pg_db_role_setting
        WHERE setrole = (SELECT oid FROM pg_roles WHERE rolname = current_user)
          AND setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      );
      expect(defaults[0].config).toContain(`statement_timeout=${TIMEOUT_MS}`);
    });

    it('where the role default was confirmed at startup, a transaction sends no SET LOCAL (one round trip less)', async () => {
      const ada = await t.db.user('Ada');
      const auth = await authAs(t.app, ada.id);
      const sent = await t.queriesDuring(() =>
        t.api.patch(`/users/${ada.id}`).set(auth).send({ name: 'Ed' }).expect(200),
      );
      expect(sent.some((sql) => /^START TRANSACTION/.test(sql))).toBe(true);
      expect(sent.filter((sql) => /statement_timeout/.test(sql))).toEqual([]);
    });

    it('elsewhere each transaction begins with SET LOCAL of both timeouts, in one statement: they hold without the role defaults, and end with the transaction', async () => {
      const database = new URL(db.url).pathname.slice(1);
      await holder.query(`ALTER ROLE CURRENT_USER IN DATABASE "${database}" RESET statement_timeout`);
      await holder.query(`ALTER ROLE CURRENT_USER IN DATABASE "${database}" RESET idle_in_transaction_session_timeout`);
      // Another timeout than the app's: one this process never confirmed as the role's default.
      const options = dataSourceOptions({ ...loadConfig({}).database, url: db.url, statementTimeoutMs: 1_500 });
      const other = await new DataSource({ ...options, migrationsRun: false, logging: false }).initialize();
      try {
        const show = async (runner: { query(sql: string): Promise<Record<string, string>[]> }) => {
          const [{ statement_timeout }] = await runner.query('SHOW statement_timeout');
          const [{ idle_in_transaction_session_timeout }] = await runner.query(
            'SHOW idle_in_transaction_session_timeout',
          );
          return [statement_timeout, idle_in_transaction_session_timeout];
        };
        const sent = jest.spyOn(other.logger, 'logQuery');
        expect(await other.transaction((manager) => show(manager))).toEqual(['1500ms', '1500ms']);
        expect(sent.mock.calls.filter(([sql]) => /statement_timeout|idle_in_transaction/.test(sql))).toHaveLength(
          1 + 2, // the one set_config statement, and the two SHOWs
        );
        expect(await show(other)).toEqual(['0', '0']); // the pool's session got nothing, and kept nothing
        // A transaction left idle on this path is ended by the server too.
        const runner = other.createQueryRunner();
        await runner.startTransaction();
        const [{ pid }] = (await runner.query('SELECT pg_backend_pid() AS pid')) as { pid: number }[];
        await sleep(2_500);
        const { rows } = await holder.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid]);
        expect(rows).toEqual([]);
        await runner.release();
      } finally {
        await other.destroy();
      }
    });
  },
);
