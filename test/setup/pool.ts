import { setTimeout as sleep } from 'node:timers/promises';
import type { DataSource } from 'typeorm';
import { sqliteGate } from '../../src/database/dialects/sqlite';
import { poolStatsOf } from '../../src/metrics/database-metrics';
import type { PoolStats } from '../../src/metrics/metrics';
import { testDialect } from './dialect';

/** The app's primary pool's sizes now (pg-pool's, mysql2's, or SQLite's one connection: see poolStatsOf). */
export function poolOf(dataSource: DataSource): PoolStats {
  const stats = poolStatsOf(dataSource, testDialect);
  if (!stats) throw new Error('poolOf: this dialect has no pool');
  return stats();
}

/** A statement that holds its connection for `seconds`, in the test database's dialect. */
const sleepSql = (seconds: number) => `SELECT ${testDialect === 'postgres' ? 'pg_sleep' : 'SLEEP'}(${seconds})`;

/**
 * Checks out all `size` connections of the app's pool for `seconds` (each runs a sleep) and
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
  if (testDialect === 'sqlite') {
    // One connection, behind SqliteGate: holding the gate holds it all (whatever `size`); a SQL
    // sleep would block the event loop, better-sqlite3 being synchronous.
    let holding!: () => void;
    const held = new Promise<void>((resolve) => (holding = resolve));
    const released = sqliteGate.exclusive(async () => {
      holding();
      await sleep(seconds * 1000);
    });
    await held;
    return { released };
  }
  for (let attempt = 1; poolOf(dataSource).total < size; attempt++) {
    if (attempt > 20) throw new Error(`could not open ${size} connections (have ${poolOf(dataSource).total})`);
    await Promise.allSettled(Array.from({ length: size }, () => dataSource.query(sleepSql(0.05))));
  }
  const released = Promise.all(Array.from({ length: size }, () => dataSource.query(sleepSql(seconds))));
  while (poolOf(dataSource).idle > 0 || poolOf(dataSource).waiting > 0) await sleep(5);
  return { released };
}
