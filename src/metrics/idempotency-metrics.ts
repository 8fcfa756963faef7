import { Counter } from 'prom-client';
import { registry } from './metrics';

/** What became of a request that carried an Idempotency-Key (see idempotency/idempotency.interceptor.ts). */
export type IdempotencyOutcome = 'stored' | 'replayed' | 'conflict' | 'mismatch' | 'limit';

const outcomes = new Counter({
  name: 'idempotency_requests_total',
  help:
    'Requests with an Idempotency-Key by outcome: stored (ran, response kept), replayed (a stored response sent again), ' +
    'conflict (409: the key held, nothing stored under it yet), mismatch (422: the key was used for a different request), ' +
    'limit (429: the caller holds too many live keys)',
  labelNames: ['outcome'] as const,
  registers: [registry],
});
for (const outcome of ['stored', 'replayed', 'conflict', 'mismatch', 'limit']) outcomes.inc({ outcome }, 0);

/** Counts one keyed request's outcome. */
export const countIdempotency = (outcome: IdempotencyOutcome): void => outcomes.inc({ outcome });
