import type { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { setTimeout as sleep } from 'node:timers/promises';
import { QueryFailedError } from 'typeorm';

const MAX_ATTEMPTS = 3;
/** serialization_failure, deadlock_detected: PostgreSQL rolled the transaction back; running it again is safe. */
const RETRYABLE = new Set(['40001', '40P01']);

/**
 * The guide's `async with session.begin()`: runs `work` in one transaction — commit on success,
 * rollback on any error — and re-runs the whole transaction (up to 3 times, with jitter) when
 * PostgreSQL aborted it for a deadlock or serialization failure. Called inside a transaction it
 * just joins it: only the outermost caller owns, and may retry, the transaction.
 */
export async function inTransaction<T>(
  txHost: TransactionHost<TransactionalAdapterTypeOrm>,
  work: () => Promise<T>,
): Promise<T> {
  if (txHost.isTransactionActive()) return work();
  for (let attempt = 1; ; attempt++) {
    try {
      return await txHost.withTransaction(work);
    } catch (error) {
      const code = error instanceof QueryFailedError ? (error.driverError as { code?: string }).code : undefined;
      if (attempt >= MAX_ATTEMPTS || !code || !RETRYABLE.has(code)) throw error;
      await sleep(Math.random() * 20 * attempt);
    }
  }
}
