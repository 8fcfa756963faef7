import type { DynamicModule, Provider } from '@nestjs/common';
import { APP_GUARD, APP_INTERCEPTOR } from '@nestjs/core';
import { ClsPluginTransactional, type TransactionHost } from '@nestjs-cls/transactional';
import { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { getDataSourceToken, TypeOrmModule } from '@nestjs/typeorm';
import { ClsModule } from 'nestjs-cls';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ObjectLiteral, QueryFailedError, type Repository } from 'typeorm';
import { sqliteGate } from '../dialects/sqlite';
import { countStatementRetried, countTransaction } from '../../metrics/metrics';
import { isConnectionLost, sqlStateOf, wasNeverSent } from '../errors/database-errors';
import { inSpan } from '../../tracing/request-tracing';

/**
 * The guide's `async with session.begin()` (docs/from-sqlalchemy.md), as a module: TransactionHost.withTransaction() runs a
 * callback in one transaction that every service called inside it joins (nestjs-cls keeps the
 * transaction in AsyncLocalStorage). Each transaction opens its own CLS context, so nothing is
 * mounted per request.
 */
export function transactionsModule(): DynamicModule {
  return withoutIdleEnhancers(
    ClsModule.forRoot({
      global: true,
      plugins: [
        new ClsPluginTransactional({
          imports: [TypeOrmModule],
          adapter: new TransactionalAdapterTypeOrm({ dataSourceToken: getDataSourceToken() }),
        }),
      ],
    }),
  );
}

/**
 * ClsModule.forRoot() always registers a global guard and a global interceptor, which do nothing
 * when not mounted, as here. The interceptor still costs: any global interceptor makes Nest run
 * its rxjs interceptor chain on every request. Removing the two providers changes nothing else.
 */
function withoutIdleEnhancers(module: DynamicModule): DynamicModule {
  const idle = (provider: Provider) =>
    typeof provider === 'object' && [APP_GUARD, APP_INTERCEPTOR].includes(provider.provide as string);
  return {
    ...module,
    imports: module.imports?.map((imported) =>
      typeof imported === 'object' && 'providers' in imported && imported.providers
        ? { ...imported, providers: imported.providers.filter((provider) => !idle(provider)) }
        : imported,
    ),
  };
}

const MAX_ATTEMPTS = 3;
/**
 * serialization_failure, deadlock_detected: PostgreSQL rolled the transaction back; running it again
 * is safe. MariaDB/MySQL's deadlock (1213) and lock wait timeout (1205) arrive as these (sqlStateOf).
 */
const RETRYABLE = new Set(['40001', '40P01']);

/**
 * The guide's `async with session.begin()` (docs/from-sqlalchemy.md): runs `work` in one transaction — commit on success,
 * rollback on any error — and re-runs the whole transaction (up to 3 times, with jitter) when
 * PostgreSQL aborted it for a deadlock or serialization failure. Also re-run when it provably did not
 * commit: its connection was lost, or the server refused a write as read-only (25006), before COMMIT
 * was sent (or COMMIT failed without being sent: wasNeverSent) — the server rolls back a transaction
 * whose connection ends, and the pool hands the retry a fresh connection. A failure once COMMIT was
 * sent is never re-run: the outcome is unknown (the
 * caller answers 503, docs/failures.md). Called inside a transaction it just joins it: only the
 * outermost caller owns, and may retry, the transaction.
 */
export async function inTransaction<T>(
  txHost: TransactionHost<TransactionalAdapterTypeOrm>,
  work: () => Promise<T>,
): Promise<T> {
  if (txHost.isTransactionActive()) return work();
  for (let attempt = 1; ; attempt++) {
    let committing = false;
    const workThenCommit = async () => {
      const result = await work();
      committing = true; // what follows is COMMIT
      return result;
    };
    try {
      // On SQLite the transaction holds the one connection until it ends (see SqliteGate); elsewhere a plain call.
      const result = await inSpan('db.transaction', () =>
        sqliteGate.exclusive(() => txHost.withTransaction(workThenCommit)),
      );
      countTransaction('committed');
      return result;
    } catch (error) {
      const code = error instanceof QueryFailedError ? sqlStateOf(error) : undefined;
      const notCommitted =
        (!committing && (isConnectionLost(error) || sqlStateOf(error) === '25006')) || wasNeverSent(error);
      const retry = attempt < MAX_ATTEMPTS && ((code !== undefined && RETRYABLE.has(code)) || notCommitted);
      countTransaction(retry ? 'retried' : 'rolled_back');
      if (retry && notCommitted) countStatementRetried('transaction');
      if (!retry) throw error;
      await sleep(Math.random() * 20 * attempt);
    }
  }
}

/**
 * `repository` bound to the caller's transaction when one is open — so its statements join that
 * transaction's EntityManager (`txHost.tx`) and commit or roll back with it — else `repository`
 * itself (the pool). Repositories call it for every statement; services never need it.
 */
export function inCurrentTransaction<T extends ObjectLiteral>(
  txHost: TransactionHost<TransactionalAdapterTypeOrm>,
  repository: Repository<T>,
): Repository<T> {
  return txHost.isTransactionActive() ? txHost.tx.getRepository(repository.target) : repository;
}
