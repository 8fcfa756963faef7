import { Global, Inject, Injectable, Module } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { InjectDataSource } from '@nestjs/typeorm';
import { AsyncLocalStorage } from 'node:async_hooks';
import { DataSource, type EntityManager } from 'typeorm';
import type { SqlDialect } from '../dialects/dialect';
import { SQL_DIALECT } from '../dialects/sql-dialect.module';
import { isDatabaseUnavailable } from '../errors/database-errors';
import { type FirstRowsBranch, firstRowsStatements } from './first-rows';
import { queryRows } from './pool-queries';
import { type Replica, ReplicaSet } from './replicas';

/** What one request may read from: set for safe (GET/HEAD) requests only, see allowReplicaReads. */
interface ReadContext {
  /** The client's consistency token: a WAL position the read must reflect. */
  token?: bigint;
  /** Chosen at the request's first read, so all its reads see one server's state. */
  target?: Promise<Replica | undefined>;
}

const readContext = new AsyncLocalStorage<ReadContext>();

/**
 * Runs `next` (the rest of a GET's handling) allowed to read from a replica that has replayed `token`
 * (any healthy one without it). Requests outside such a context — writes and the read-back after them —
 * read from the primary.
 */
export function allowReplicaReads(token: bigint | undefined, next: () => void): void {
  readContext.run({ token }, next);
}

/**
 * Where a read runs. Inside a transaction: in it (on the primary). On the primary: outside a GET, when no replica is healthy
 * or none has replayed the request's consistency token. Otherwise on one replica for the whole request.
 * A replica that fails mid-read is marked down and the read re-runs on the primary, so a replica going
 * away never fails a request.
 */
@Injectable()
export class ReadRouter {
  constructor(
    @InjectDataSource() private readonly primary: DataSource,
    private readonly replicas: ReplicaSet,
    private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>,
    @Inject(SQL_DIALECT) private readonly dialect: SqlDialect,
  ) {}

  /**
   * The rows of one plain-SQL read statement, run where read() runs it: in the open transaction
   * through its QueryRunner; elsewhere, on PostgreSQL, straight on the chosen server's pool
   * (queryRows, cheaper than a QueryRunner per statement: ADR 0010); on the other
   * dialects through TypeORM. Errors: the statement's QueryFailedError, or the pool's when no
   * connection could be had (see read() for a replica that fails).
   */
  query<T>(sql: string, parameters: unknown[]): Promise<T[]> {
    return this.read((db) => queryRows<T>(db, this.dialect, sql, parameters));
  }

  /**
   * The first `limit` rows of each of `keys` (a post's first comments, an author's newest posts), read
   * as query() reads: the statements of firstRowsStatements (one on PostgreSQL, one per
   * BRANCHES_PER_STATEMENT keys elsewhere), their rows concatenated, each statement's in `orderBy`
   * order. `[]` sends nothing. Errors: as query().
   */
  async firstRows<T>(keys: readonly number[], limit: number, branch: FirstRowsBranch, orderBy: string): Promise<T[]> {
    const rows: T[] = [];
    for (const [sql, parameters] of firstRowsStatements(this.dialect, keys, limit, branch, orderBy)) {
      rows.push(...(await this.query<T>(sql, parameters)));
    }
    return rows;
  }

  /** Runs `work` (reads only) with the EntityManager of the chosen server. Its errors are `work`'s own. */
  async read<T>(work: (db: EntityManager) => Promise<T>): Promise<T> {
    if (this.txHost.isTransactionActive()) return work(this.txHost.tx); // as inCurrentTransaction does
    const context = readContext.getStore();
    if (!context || !this.replicas.enabled) return work(this.primary.manager);
    context.target ??= this.replicas.pick(context.token);
    const replica = await context.target;
    if (!replica?.dataSource) return work(this.primary.manager);
    try {
      return await work(replica.dataSource.manager);
    } catch (error) {
      if (!isDatabaseUnavailable(error)) throw error;
      this.replicas.markDown(replica, error);
      context.target = Promise.resolve(undefined);
      return work(this.primary.manager);
    }
  }
}

/** ReplicaSet and ReadRouter for every module (the routing is one concern, used by every repository). */
@Global()
@Module({ providers: [ReplicaSet, ReadRouter], exports: [ReplicaSet, ReadRouter] })
export class ReadRoutingModule {}
