import type { Pool } from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DataSource } from 'typeorm';

/** The app's primary pg pool (TypeORM's PostgresDriver keeps it as `master`). */
export const poolOf = (dataSource: DataSource) => (dataSource.driver as unknown as { master: Pool }).master;

/**
 * Checks out all `size` connections of the app's pool for `seconds` (each runs `pg_sleep`) and
 * returns once every one is held, so the next caller must wait for the acquire timeout. The
 * connections are opened first: on a loaded machine opening one can take longer than the short
 * acquire timeouts these tests use, and a slow query that never got its connection would leave the
 * pool free. `released` settles when the sleeps end.
 */
export async function holdEveryConnection(
  dataSource: DataSource,
  size: number,
  seconds: number,
): Promise<{ released: Promise<unknown> }> {
  const pool = poolOf(dataSource);
  for (let attempt = 1; pool.totalCount < size; attempt++) {
    if (attempt > 20) throw new Error(`could not open ${size} connections (have ${pool.totalCount})`);
    await Promise.allSettled(Array.from({ length: size }, () => dataSource.query('SELECT pg_sleep(0.05)')));
  }
  const released = Promise.all(Array.from({ length: size }, () => dataSource.query(`SELECT pg_sleep(${seconds})`)));
  while (pool.idleCount > 0 || pool.waitingCount > 0) await sleep(5);
  return { released };
}
