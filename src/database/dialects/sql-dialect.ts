import type { DataSource, EntityManager } from 'typeorm';
import type { SqlDialect } from './dialect';

/**
 * The dialect of a DataSource or EntityManager, from the TypeORM driver that dataSourceOptions chose
 * for the URL's dialect (dialectOf): reads that choice back, it does not parse the URL again.
 *
 * Repositories keep one statements table keyed by SqlDialect. PostgreSQL keeps its fast statements
 * (`= ANY($1)` arrays, RETURNING, data-modifying CTEs, ON CONFLICT, `$n`); MySQL/MariaDB and SQLite
 * mostly share one portable set (`?` placeholders, chunked `IN (…)` lists, insert then select by id,
 * several statements in a transaction instead of one CTE), named once and used for both keys.
 */
export function sqlDialectOf(db: DataSource | EntityManager): SqlDialect {
  const type = ('connection' in db ? db.connection : db).options.type;
  if (type === 'postgres') return 'postgres';
  if (type === 'mysql' || type === 'mariadb') return 'mysql';
  if (type === 'better-sqlite3') return 'sqlite';
  throw new Error(`sqlDialectOf: no SQL for TypeORM driver ${type}`);
}

/**
 * Ids per `IN (…)` list: far below MySQL's 65,535 and SQLite's 32,766 placeholders per statement,
 * and large enough that a page of nested reads (≤ 1,000 ids) is one statement.
 */
export const IN_LIST_CHUNK = 1_000;

/**
 * Runs `select` once per chunk of `ids` (sorted ascending, so rows ordered by that id first come back
 * in order across chunks) with `placeholders` = `?, ?, …` for the chunk; returns all rows in order.
 * The portable twin of `= ANY($1)`.
 */
export async function selectInChunks<T>(
  ids: readonly number[],
  select: (placeholders: string, chunk: number[]) => Promise<T[]>,
): Promise<T[]> {
  const sorted = [...new Set(ids)].sort((a, b) => a - b);
  const rows: T[] = [];
  for (let start = 0; start < sorted.length; start += IN_LIST_CHUNK) {
    const chunk = sorted.slice(start, start + IN_LIST_CHUNK);
    rows.push(...(await select(chunk.map(() => '?').join(', '), chunk)));
  }
  return rows;
}

/**
 * The current time with milliseconds, as an SQL expression per dialect, for statements tables:
 * PostgreSQL's now() (the transaction's start), MySQL's CURRENT_TIMESTAMP(3) (in the session's +00:00
 * zone, see data-source.options.ts; bare CURRENT_TIMESTAMP would drop the milliseconds), SQLite's UTC
 * text with milliseconds.
 */
export const NOW: Readonly<Record<SqlDialect, string>> = {
  postgres: 'now()',
  mysql: 'CURRENT_TIMESTAMP(3)',
  sqlite: "strftime('%Y-%m-%d %H:%M:%f', 'now')",
};

/** NOW of `db`'s dialect, for code that builds a statement from entity metadata (versioned writes). */
export function nowWithMilliseconds(db: DataSource | EntityManager): string {
  return NOW[sqlDialectOf(db)];
}
