import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { loadConfig } from '../../src/config/app.config';
import { dataSourceOptions } from '../../src/database/data-source.options';
import { dialectOf } from '../../src/database/dialects/dialect';

/** An empty database of its own beside the test database, and how to remove it. */
export interface FreshDatabase {
  url: string;
  /** The database's own SQL (no dialect translation), on a connection opened for it. */
  query<T = unknown>(sql: string): Promise<T>;
  drop(): Promise<void>;
}

/**
 * A new, empty database on the server of `serverUrl` (default: the test database's): a PostgreSQL or
 * MariaDB/MySQL database named `e2e_<label>_<random>`, or a SQLite file beside the test database's. For
 * what needs a database no migration has touched, or a per-database setting nobody else sees.
 */
export async function freshDatabase(label: string, serverUrl = process.env.DATABASE_URL!): Promise<FreshDatabase> {
  const name = `e2e_${label}_${randomUUID().slice(0, 8)}`;
  const dialect = dialectOf(serverUrl);
  if (dialect === 'sqlite') {
    const path = join(tmpdir(), `${name}.db`);
    const url = `sqlite:${path}`;
    return {
      url,
      query: (sql) => withDataSource(url, (db) => db.query(sql)),
      drop: () =>
        Promise.all(['', '-wal', '-shm', '-journal'].map((suffix) => rm(`${path}${suffix}`, { force: true }))).then(
          () => undefined,
        ),
    };
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const quoted = dialect === 'mysql' ? `\`${name}\`` : `"${name}"`;
  await withDataSource(serverUrl, (db) =>
    db.query(
      `CREATE DATABASE ${quoted}${dialect === 'mysql' ? ' CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci' : ''}`,
    ),
  );
  return {
    url: url.toString(),
    query: (sql) => withDataSource(url.toString(), (db) => db.query(sql)),
    drop: () =>
      withDataSource(serverUrl, (db) =>
        db.query(`DROP DATABASE IF EXISTS ${quoted}${dialect === 'postgres' ? ' WITH (FORCE)' : ''}`),
      ).then(() => undefined),
  };
}

/** Runs `work` on a DataSource for `url` (no migrations, no logging, no statement timeout), then closes it. */
async function withDataSource<T>(url: string, work: (db: DataSource) => Promise<T>): Promise<T> {
  const options = dataSourceOptions({ ...loadConfig({}).database, url, migrationsRun: false, statementTimeoutMs: 0 });
  const quiet = { migrations: [], logger: undefined, logging: false, maxQueryExecutionTime: undefined };
  const db = await new DataSource({ ...options, ...quiet }).initialize();
  try {
    return await work(db);
  } finally {
    await db.destroy();
  }
}
