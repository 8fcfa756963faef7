import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { loadConfig } from '../../src/config/app.config';
import { dataSourceOptions } from '../../src/database/data-source.options';
import { startEmbeddedPostgres, type RunningPostgres } from '../../src/database/embedded-postgres';
import { previewOpenApiDocument, writeOpenApiDocument } from '../../src/openapi.command';
import { OPENAPI_DOCUMENT_ENV } from './openapi-document';

declare global {
  var testPostgres: RunningPostgres | undefined;
  var testOpenApiDocumentIsTemporary: boolean | undefined;
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

  const options = dataSourceOptions({ ...loadConfig({}).database, url, migrationsRun: false });
  const dataSource = new DataSource({
    ...options,
    logger: undefined,
    logging: false,
    maxQueryExecutionTime: undefined,
  }); // quiet
  await dataSource.initialize();
  await dataSource.query('DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public');
  await dataSource.runMigrations();
  await dataSource.destroy();

  // Test workers inherit these: they build the app from the environment, like main.ts does.
  process.env.DATABASE_URL = url;
  process.env.DB_MIGRATIONS_RUN = 'false';
  process.env.LOG_LEVEL ??= 'silent';
  process.env.RATE_LIMIT_MAX = '0'; // the rate limit has its own test; elsewhere it would only get in the way

  // The OpenAPI document of the code under test, for the specs that check or derive requests from it.
  // A path given in the environment keeps it after the run (CI compares it with openapi.json).
  if (!process.env[OPENAPI_DOCUMENT_ENV]) {
    process.env[OPENAPI_DOCUMENT_ENV] = join(tmpdir(), `nest-typeorm-users-openapi-${randomUUID()}.json`);
    globalThis.testOpenApiDocumentIsTemporary = true;
  }
  writeOpenApiDocument(await previewOpenApiDocument(), process.env[OPENAPI_DOCUMENT_ENV]);
}
