import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DataSource } from 'typeorm';
import { loadConfig } from '../../src/config/app.config';
import { dataSourceOptions } from '../../src/database/data-source.options';
import { startEmbeddedPostgres, type RunningPostgres } from '../../src/database/embedded-postgres';
import { sqliteDatabasePath } from '../../src/database/sqlite';

declare global {
  var testPostgres: RunningPostgres | undefined;
}

/**
 * Once per test run: a real PostgreSQL with the real migrations applied. TEST_DATABASE_URL points
 * at a server you manage (its public schema is wiped); otherwise a throwaway embedded PostgreSQL is
 * started in a temporary directory, so tests never touch the developer's ./.data database.
 */
export default async function globalSetup(): Promise<void> {
  let url = process.env.TEST_DATABASE_URL;
  if (!url) {
    const dataDir = join(tmpdir(), `nest-typeorm-users-test-${randomUUID()}`);
    globalThis.testPostgres = await startEmbeddedPostgres({ dataDir, port: 0, ephemeral: true });
    url = globalThis.testPostgres.url;
    process.env.EMBEDDED_PG_DATA_DIR = dataDir; // for tests of the CLI tools that find it there (db:psql)
  }

  // SQLite: a fresh file per run (its WAL and shared-memory files too); sqlite::memory: lives in one
  // process only, so the workers could never share it.
  if (url.startsWith('sqlite:')) {
    const path = sqliteDatabasePath(url);
    if (path === ':memory:')
      throw new Error('TEST_DATABASE_URL=sqlite::memory: cannot be shared by the test workers: give a file');
    mkdirSync(dirname(path), { recursive: true });
    for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(`${path}${suffix}`, { force: true });
  }

  const options = dataSourceOptions({ ...loadConfig({}).database, url, migrationsRun: false });
  const dataSource = new DataSource({
    ...options,
    logger: undefined,
    logging: false,
    maxQueryExecutionTime: undefined,
  }); // quiet
  await dataSource.initialize();
  if (dataSource.options.type === 'postgres') {
    await dataSource.query('DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public');
  }
  await dataSource.runMigrations();
  await dataSource.destroy();

  // Test workers inherit these: they build the app from the environment, like main.ts does.
  process.env.DATABASE_URL = url;
  process.env.DB_MIGRATIONS_RUN = 'false';
  process.env.LOG_LEVEL ??= 'silent';
  process.env.RATE_LIMIT_MAX = '0'; // the rate limit has its own test; elsewhere it would only get in the way
}
