import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { createApp } from '../../src/app.setup';
import { loadConfig } from '../../src/config/app.config';
import { querySql, testDialect } from './dialect';
import { fixtures } from './fixtures';

export interface TestApp {
  app: NestFastifyApplication;
  api: ReturnType<typeof request>;
  dataSource: DataSource;
  /** Direct inserts and counts, for arranging state and checking it. */
  db: ReturnType<typeof fixtures>;
  /** A test's own SQL, written for PostgreSQL (`$n`, `= ANY($n)`, `::int`), on the test database (see testSql). */

  query<T = any>(sql: string, parameters?: unknown[]): Promise<T>;
  /** Runs `action` and returns the SQL statements it sent, as seen by the real DataSource's logger. */
  queriesDuring(action: () => Promise<unknown>): Promise<string[]>;
  /** Empties every table between tests. */
  reset(): Promise<void>;
  /** Listens on an ephemeral port of 127.0.0.1, for clients other than supertest (raw sockets, proxies); returns the port. */
  listen(): Promise<number>;
  close(): Promise<void>;
}

/** The app exactly as main.ts builds it, on the database prepared by global-setup.ts. */
export async function startTestApp(env: NodeJS.ProcessEnv = {}): Promise<TestApp> {
  const app = await createApp(loadConfig({ ...process.env, ...env }));
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
  const dataSource = app.get(DataSource);
  return {
    app,
    api: request(app.getHttpServer()),
    dataSource,
    db: fixtures(dataSource),
    query: (sql, parameters) => querySql(dataSource, sql, parameters),
    async queriesDuring(action) {
      const spy = jest.spyOn(dataSource.logger, 'logQuery');
      try {
        await action();
        return spy.mock.calls.map(([sql]) => sql);
      } finally {
        spy.mockRestore();
      }
    },
    reset: () => emptyTables(dataSource),
    async listen() {
      await app.listen(0, '127.0.0.1');
      return (app.getHttpServer().address() as { port: number }).port;
    },
    close: () => app.close(),
  };
}

/**
 * Empties every table and restarts its ids. PostgreSQL: one TRUNCATE … CASCADE. SQLite: DELETE. MySQL truncates one
 * table at a time and refuses a table others reference, unless foreign key checks are off — a
 * session setting, so all on one connection.
 */
async function emptyTables(dataSource: DataSource): Promise<void> {
  const tables = tablesOf(dataSource);
  if (testDialect === 'postgres') {
    await dataSource.query(`TRUNCATE ${tables.join(', ')} RESTART IDENTITY CASCADE`);
    return;
  }
  if (testDialect === 'sqlite') {
    // No TRUNCATE: DELETE every row (the foreign keys cascade, so any order empties all), then restart
    // AUTOINCREMENT's counters; one statement at a time (better-sqlite3 prepares one).
    for (const table of tables) await dataSource.query(`DELETE FROM ${table}`);
    await dataSource.query('DELETE FROM sqlite_sequence');
    return;
  }
  const runner = dataSource.createQueryRunner();
  try {
    await runner.query('SET FOREIGN_KEY_CHECKS = 0');
    for (const table of tables) await runner.query(`TRUNCATE ${table}`);
  } finally {
    await runner.query('SET FOREIGN_KEY_CHECKS = 1');
    await runner.release();
  }
}

/** Every entity's table, quoted, from the DataSource's metadata: a new entity is emptied between tests too. */
function tablesOf(dataSource: DataSource): string[] {
  return dataSource.entityMetadatas
    .filter((metadata) => metadata.tableType === 'regular' || metadata.tableType === 'junction')
    .map((metadata) =>
      metadata.tablePath
        .split('.')
        .map((part) => dataSource.driver.escape(part))
        .join('.'),
    );
}

/**
 * One app for a describe block: started before its tests, every table emptied before each test
 * (unless `resetEachTest` is false), closed after them.
 */
export function useTestApp(env: NodeJS.ProcessEnv = {}, { resetEachTest = true } = {}): TestApp {
  let current: TestApp | undefined;
  beforeAll(async () => (current = await startTestApp(env)));
  if (resetEachTest) beforeEach(() => current!.reset());
  afterAll(() => current?.close());
  const started = (): TestApp => {
    if (!current) throw new Error('useTestApp: the app is only available inside tests and hooks');
    return current;
  };
  return {
    get app() {
      return started().app;
    },
    get api() {
      return started().api;
    },
    get dataSource() {
      return started().dataSource;
    },
    get db() {
      return started().db;
    },
    query: (sql, parameters) => started().query(sql, parameters),
    queriesDuring: (action) => started().queriesDuring(action),
    reset: () => started().reset(),
    listen: () => started().listen(),
    close: () => started().close(),
  };
}
