import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DataSource } from 'typeorm';
import { loadConfig } from '../../src/config/app.config';
import { dataSourceOptions } from '../../src/database/data-source.options';
import { dialectOf } from '../../src/database/dialects/dialect';
import { startEmbeddedPostgres, type RunningPostgres } from '../../src/database/dialects/embedded-postgres';
import { previewOpenApiDocument, writeOpenApiDocument } from '../../src/openapi.command';
import { OPENAPI_DOCUMENT_ENV } from './openapi-document';
import { sqliteDatabasePath } from '../../src/database/dialects/sqlite';

declare global {
  var testPostgres: RunningPostgres | undefined;
  var testOpenApiDocumentIsTemporary: boolean | undefined;
}

/**
 * Once per test run: a real database with the real migrations applied. TEST_DATABASE_URL points at
 * a server you manage, PostgreSQL or MariaDB/MySQL (its public schema, or its database, is wiped);
 * otherwise a throwaway embedded PostgreSQL is started in a temporary directory, so tests never touch
 * the developer's ./.data database.
 */
export default async function globalSetup(): Promise<void> {
  let url = process.env.TEST_DATABASE_URL;
  if (!url) {
    const dataDir = join(tmpdir(), `nest-typeorm-users-test-${randomUUID()}`);
    globalThis.testPostgres = await startEmbeddedPostgres({ dataDir, port: 0, ephemeral: true });
    url = globalThis.testPostgres.url;
    process.env.EMBEDDED_PG_DATA_DIR = dataDir; // for tests of the CLI tools that find it there (db:psql)
  }

  await emptyDatabase(url);
  const dataSource = await openQuietly(url);
  await dataSource.runMigrations();
  await dataSource.destroy();

  // Test workers inherit these: they build the app from the environment, like main.ts does.
  process.env.DATABASE_URL = url;
  process.env.DB_MIGRATIONS_RUN = 'false';
  process.env.LOG_LEVEL ??= 'silent';
  process.env.RATE_LIMIT_MAX = '0'; // the rate limit has its own test; elsewhere it would only get in the way
  // Mail is queued but not delivered (its own suite, test/accounts.e2e-spec.ts, runs the worker against
  // an SMTP server): a worker's background statements would blur the specs' query counts.
  process.env.MAIL_WORKER_ENABLED = 'false';
  process.env.MAIL_DIR = join(tmpdir(), `nest-typeorm-users-mail-${randomUUID()}`); // never ./.data

  // The OpenAPI document of the code under test, for the specs that check or derive requests from it.
  // A path given in the environment keeps it after the run (CI compares it with openapi.json).
  if (!process.env[OPENAPI_DOCUMENT_ENV]) {
    process.env[OPENAPI_DOCUMENT_ENV] = join(tmpdir(), `nest-typeorm-users-openapi-${randomUUID()}.json`);
    globalThis.testOpenApiDocumentIsTemporary = true;
  }
  writeOpenApiDocument(await previewOpenApiDocument(), process.env[OPENAPI_DOCUMENT_ENV]);
}

/** Drops everything in the test database: PostgreSQL's public schema, the MySQL database itself (recreated), the SQLite file. */
async function emptyDatabase(url: string): Promise<void> {
  if (dialectOf(url) === 'sqlite') {
    // A fresh file per run (its WAL and shared-memory files too); sqlite::memory: lives in one
    // process, so the test workers could never share it.
    const path = sqliteDatabasePath(url);
    if (path === ':memory:')
      throw new Error('TEST_DATABASE_URL=sqlite::memory: cannot be shared by the test workers: give a file');
    mkdirSync(dirname(path), { recursive: true });
    for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(`${path}${suffix}`, { force: true });
    return;
  }
  // MySQL: connected to information_schema (every server has it), as the test database need not exist yet.
  const server = new URL(url);
  const database = decodeURIComponent(server.pathname.slice(1));
  if (dialectOf(url) === 'mysql') server.pathname = '/information_schema';
  const dataSource = await openQuietly(server.toString());
  try {
    if (dialectOf(url) === 'mysql') {
      await dataSource.query(`DROP DATABASE IF EXISTS \`${database}\``);
      await dataSource.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
    } else {
      await dataSource.query('DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public');
    }
  } finally {
    await dataSource.destroy();
  }
}

/** The app's DataSource options for `url`, connected, without its query and slow-query logging. */
async function openQuietly(url: string): Promise<DataSource> {
  const options = dataSourceOptions({ ...loadConfig({}).database, url, migrationsRun: false });
  const dataSource = new DataSource({
    ...options,
    logger: undefined,
    logging: false,
    maxQueryExecutionTime: undefined,
  });
  return dataSource.initialize();
}
