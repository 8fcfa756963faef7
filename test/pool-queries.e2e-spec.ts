import type { Pool } from 'pg';
import { QueryFailedError } from 'typeorm';
import { driverErrorOf } from '../src/database/errors/database-errors';
import { queryInTransaction, queryPool, queryRows } from '../src/database/reads/pool-queries';
import { describeOn } from './setup/dialect';
import { startTestApp, type TestApp } from './setup/test-app';

/**
 * Reads on PostgreSQL skip TypeORM's QueryRunner (src/database/reads/pool-queries.ts). What a QueryRunner did for
 * a statement must still happen: these pin it down on the real pool.
 */
describeOn(['postgres'], 'MySQL and SQLite reads go through TypeORM')('reads on the pool (queryPool)', () => {
  let t: TestApp;
  beforeAll(async () => (t = await startTestApp()));
  afterAll(() => t.close());

  const pool = () => (t.dataSource.driver as unknown as { master: Pool }).master;

  it('returns the rows, is logged, and gives its connection back', async () => {
    const sent = await t.queriesDuring(async () => {
      expect(await queryPool(t.dataSource, 'SELECT $1::int + 1 AS "two"', [1])).toEqual([{ two: 2 }]);
    });
    expect(sent).toEqual(['SELECT $1::int + 1 AS "two"']);
    expect(pool().idleCount).toBe(pool().totalCount);
  });

  it('fails as TypeORM would: a QueryFailedError around the server error, logged, the connection given back', async () => {
    const logged = jest.spyOn(t.dataSource.logger, 'logQueryError');
    const failure = await queryPool(t.dataSource, 'SELECT 1 / $1::int', [0]).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(QueryFailedError);
    expect(driverErrorOf(failure)?.code).toBe('22012'); // division_by_zero
    expect(logged).toHaveBeenCalledTimes(1);
    logged.mockRestore();
    expect(pool().idleCount).toBe(pool().totalCount);
    expect(await queryPool(t.dataSource, 'SELECT 1 AS "one"', [])).toEqual([{ one: 1 }]);
  });

  it('warns about a statement slower than maxQueryExecutionTime', async () => {
    const slow = jest.spyOn(t.dataSource.logger, 'logQuerySlow');
    const options = t.dataSource.options as { maxQueryExecutionTime?: number };
    const before = options.maxQueryExecutionTime;
    Object.assign(options, { maxQueryExecutionTime: 5 });
    try {
      await queryPool(t.dataSource, 'SELECT pg_sleep(0.02)', []);
      expect(slow).toHaveBeenCalledWith(expect.any(Number), 'SELECT pg_sleep(0.02)', []);
    } finally {
      Object.assign(options, { maxQueryExecutionTime: before });
      slow.mockRestore();
    }
  });

  it('times a statement from sending, not from waiting for a connection: no false slow-query warning', async () => {
    const single = await startTestApp({ DB_POOL_SIZE: '1', DB_POOL_MAX_OVERFLOW: '0' });
    const options = single.dataSource.options as { maxQueryExecutionTime?: number };
    Object.assign(options, { maxQueryExecutionTime: 100 });
    const slow = jest.spyOn(single.dataSource.logger, 'logQuerySlow');
    try {
      const holding = queryPool(single.dataSource, 'SELECT pg_sleep(0.3)', []);
      await queryPool(single.dataSource, 'SELECT 1 AS "waited"', []); // ~300 ms for the one connection
      await holding;
      expect(slow.mock.calls.map(([, sql]) => sql)).toEqual(['SELECT pg_sleep(0.3)']);
    } finally {
      slow.mockRestore();
      await single.close();
    }
  });

  it("runs a statement inside a transaction on the transaction's own connection (queryInTransaction), logged", async () => {
    await t.dataSource.transaction(async (manager) => {
      await manager.query('CREATE TEMPORARY TABLE only_here (n int) ON COMMIT DROP');
      // On the pool, another connection, the temporary table would not exist.
      const sent = await t.queriesDuring(async () => {
        expect(await queryRows(manager, 'postgres', 'SELECT count(*)::int AS "n" FROM only_here', [])).toEqual([
          { n: 0 },
        ]);
        expect(
          await queryInTransaction(manager, 'postgres', 'INSERT INTO only_here VALUES ($1) RETURNING n', [7]),
        ).toEqual([{ n: 7 }]);
      });
      expect(sent).toEqual([
        'SELECT count(*)::int AS "n" FROM only_here',
        'INSERT INTO only_here VALUES ($1) RETURNING n',
      ]);
      expect(await manager.query('SELECT n FROM only_here')).toEqual([{ n: 7 }]);
    });
  });

  it('fails inside a transaction as the QueryRunner would: a QueryFailedError, logged, and the transaction rolls back', async () => {
    const logged = jest.spyOn(t.dataSource.logger, 'logQueryError');
    const failure = await t.dataSource
      .transaction(async (manager) => {
        await manager.query('CREATE TEMPORARY TABLE gone_after (n int)');
        await queryInTransaction(manager, 'postgres', 'SELECT 1 / $1::int', [0]);
      })
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(QueryFailedError);
    expect(driverErrorOf(failure)?.code).toBe('22012');
    expect(logged).toHaveBeenCalledTimes(1);
    logged.mockRestore();
    expect(pool().idleCount).toBe(pool().totalCount);
    // Rolled back: the table created in it is gone on every connection.
    await t.dataSource.transaction(async (manager) => {
      expect(
        await queryInTransaction(manager, 'postgres', "SELECT to_regclass('pg_temp.gone_after') AS t", []),
      ).toEqual([{ t: null }]);
    });
  });
});
