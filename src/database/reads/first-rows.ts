import type { SqlDialect } from '../dialects/dialect';

/**
 * How many `(SELECT … LIMIT n)` branches one portable statement unites: SQLite allows at most 500
 * terms in a compound SELECT (SQLITE_MAX_COMPOUND_SELECT).
 */
export const BRANCHES_PER_STATEMENT = 250;

/**
 * One key's read, per dialect (see firstRowsStatements), without its LIMIT: `postgres` names the key
 * `k.v` (a row of the LATERAL join), `postgresOneKey` takes it as `$1`, `portable` takes it as `?`.
 *
 * `postgres` must spell the key as a range, `col >= k.v AND col <= k.v`, and order by `col` first
 * (the index's order). PostgreSQL plans the join's inner read once for every key, so it cannot use
 * the key's statistics: for `col = k.v` it assumes the average rows per key, and when that is below
 * the LIMIT it picks a bitmap scan and a sort, which read every row of the key (all 100,000 comments
 * of a hot post) before LIMIT applies. For a range of an unknown value it assumes 0.5 % of the
 * table, so in any table where one key can hold thousands of rows it picks the index scan in order
 * that stops at LIMIT: the bound does not depend on the statistics (test/posts.e2e-spec.ts checks
 * the plan's rows).
 */
export type FirstRowsBranch = { postgres: string; postgresOneKey: string; portable: string };

/**
 * The statements that read the first rows of each of many keys (a post's first comments, an
 * author's newest posts) with a bounded read per key: every key's rows come from its own index
 * range, stopped at `LIMIT`, so a key with 100,000 rows costs what one with 20 does.
 * - PostgreSQL: one statement for any number of keys, `unnest($1::int[]) CROSS JOIN LATERAL (branch
 *   LIMIT $2)`; `branch` names the key `k.v` (as a range: see FirstRowsBranch). One key (a single
 *   post's comments, a single user's posts) is read by `postgresOneKey LIMIT $2` alone: the same rows
 *   in the same order, and PostgreSQL plans and runs a plain statement faster than the join
 *   (BENCHMARKS.md). It is planned for that key's own statistics, so it is bounded while they are
 *   current; a key that grew by many rows since the last ANALYZE is read whole (docs/scale.md).
 * - portable (MariaDB/MySQL, SQLite, neither of which has LATERAL): `SELECT * FROM (branch LIMIT n)
 *   UNION ALL …`, one statement per BRANCHES_PER_STATEMENT keys; `branch` takes the key as `?`.
 * `orderBy` orders the whole result by output column numbers (the key first), as the ids are grouped
 * by the caller. Returns `[sql, parameters]` per statement; none for no keys.
 */
export function firstRowsStatements(
  dialect: SqlDialect,
  keys: readonly number[],
  limit: number,
  branch: FirstRowsBranch,
  orderBy: string,
): [sql: string, parameters: unknown[]][] {
  const unique = [...new Set(keys)];
  if (unique.length === 0) return [];
  if (dialect === 'postgres') {
    if (unique.length === 1) return [[`${branch.postgresOneKey} LIMIT $2`, [unique[0], limit]]];
    const sql = `SELECT f.* FROM unnest($1::int[]) AS k(v) CROSS JOIN LATERAL (${branch.postgres} LIMIT $2) AS f ORDER BY ${orderBy}`;
    return [[sql, [unique, limit]]];
  }
  const statements: [string, unknown[]][] = [];
  for (let start = 0; start < unique.length; start += BRANCHES_PER_STATEMENT) {
    const chunk = unique.slice(start, start + BRANCHES_PER_STATEMENT);
    const union = chunk
      .map((_, i) => `SELECT * FROM (${branch.portable} LIMIT ${Number(limit)}) AS f${i}`)
      .join(' UNION ALL ');
    statements.push([`${union} ORDER BY ${orderBy}`, chunk]);
  }
  return statements;
}
