import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { createApp } from '../../src/app.setup';
import { loadConfig } from '../../src/config/app.config';
import { fixtures } from './fixtures';

export interface TestApp {
  app: NestFastifyApplication;
  api: ReturnType<typeof request>;
  dataSource: DataSource;
  /** Direct inserts and counts, for arranging state and checking it. */
  db: ReturnType<typeof fixtures>;
  /** Runs `action` and returns the SQL statements it sent, as seen by the real DataSource's logger. */
  queriesDuring(action: () => Promise<unknown>): Promise<string[]>;
  /** Empties every table between tests. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

/** The app exactly as main.ts builds it, on the database prepared by global-setup.ts. */
export async function startTestApp(env: NodeJS.ProcessEnv = {}): Promise<TestApp> {
  const app = await createApp(loadConfig({ ...process.env, ...env }));
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
  const dataSource = app.get(DataSource);
  const truncateAll = `TRUNCATE ${tablesOf(dataSource).join(', ')} RESTART IDENTITY CASCADE`;
  // SQLite has no TRUNCATE: DELETE every row (the foreign keys cascade, so any order empties all) and
  // restart AUTOINCREMENT's counters, one statement at a time (better-sqlite3 prepares one).
  const sqliteReset = [...tablesOf(dataSource).map((table) => `DELETE FROM ${table}`), 'DELETE FROM sqlite_sequence'];
  const reset = async () => {
    const statements = dataSource.options.type === 'better-sqlite3' ? sqliteReset : [truncateAll];
    for (const statement of statements) await dataSource.query(statement);
  };
  return {
    app,
    api: request(app.getHttpServer()),
    dataSource,
    db: fixtures(dataSource),
    async queriesDuring(action) {
      const spy = jest.spyOn(dataSource.logger, 'logQuery');
      try {
        await action();
        return spy.mock.calls.map(([sql]) => sql);
      } finally {
        spy.mockRestore();
      }
    },
    reset,
    close: () => app.close(),
  };
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
    queriesDuring: (action) => started().queriesDuring(action),
    reset: () => started().reset(),
    close: () => started().close(),
  };
}
