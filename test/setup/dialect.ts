import { type SqlDialect, dialectOf } from '../../src/database/dialects/dialect';

/**
 * The dialect the e2e suite runs on: global-setup.ts hands its database to the workers as
 * DATABASE_URL (TEST_DATABASE_URL, or the embedded PostgreSQL's).
 */
export const testDialect: SqlDialect = dialectOf(process.env.DATABASE_URL ?? 'postgres://');

/**
 * A test's own SQL, written for PostgreSQL, as the test database takes it: elsewhere `$n` become `?`
 * (values repeated as needed), `= ANY($n)` an `IN (…)` list of the array's values, and `::type` casts
 * are dropped (mysql2 returns counts as numbers, see data-source.options.ts).
 */
export function testSql(sql: string, parameters: unknown[] = []): [string, unknown[]] {
  if (testDialect === 'postgres') return [sql, parameters];
  const uncast = sql.replace(/::\w+(\[\])?/g, '');
  // Already in `?` form (e.g. a statement the app logged): the parameters stay as they are.
  if (!/\$\d/.test(uncast)) return [uncast, parameters];
  const bound: unknown[] = [];
  const text = uncast.replace(
    /= ANY\(\$(\d+)\)|\$(\d+)/g,
    (_, arrayParameter: string | undefined, parameter: string | undefined) => {
      if (arrayParameter) {
        const values = parameters[Number(arrayParameter) - 1] as unknown[];
        bound.push(...values);
        return values.length === 0 ? 'IN (NULL)' : `IN (${values.map(() => '?').join(', ')})`;
      }
      bound.push(parameters[Number(parameter) - 1]);
      return '?';
    },
  );
  return [text, bound];
}

/** Runs a test's PostgreSQL-worded statement on `dataSource`, translated by testSql; `T` is the whole result. */
export function querySql<T = unknown>(
  dataSource: { query(sql: string, parameters?: unknown[]): Promise<unknown> },
  sql: string,
  parameters: unknown[] = [],
): Promise<T> {
  return dataSource.query(...testSql(sql, parameters)) as Promise<T>;
}

/**
 * `describe`, or — when the suite runs on a dialect not in `dialects` — `describe.skip`, after printing
 * why: a test that cannot apply is never skipped silently.
 */
export function describeOn(dialects: SqlDialect[], reason: string): jest.Describe {
  if (dialects.includes(testDialect)) return describe;
  process.stdout.write(`skipped on ${testDialect}: ${reason}\n`);
  return describe.skip;
}

/** `it`, or `it.skip` after printing why, as describeOn. */
export function itOn(dialects: SqlDialect[], reason: string): jest.It {
  if (dialects.includes(testDialect)) return it;
  process.stdout.write(`skipped on ${testDialect}: ${reason}\n`);
  return it.skip;
}
