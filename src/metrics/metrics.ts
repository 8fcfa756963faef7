import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Every Prometheus metric the service exports (prom-client), in one registry per process. Names and
 * units follow https://prometheus.io/docs/practices/naming/ (seconds, `_total` for counters);
 * docs/grafana/ queries exactly these. Recording is cheap (a label hash and a bucket search); the
 * pool gauges are read only when scraped.
 */
export const registry = new Registry();

/** Latency buckets in seconds: from sub-millisecond answers up to a pool wait of DB_POOL_TIMEOUT_MS. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** RED per endpoint: `_count` is the request rate, `status_class` the errors, the buckets the duration. */
export const httpRequestDuration = new Histogram({
  name: 'http_server_request_duration_seconds',
  help: 'HTTP requests by method, route pattern (never the raw URL) and status class, from routing to the last byte',
  labelNames: ['method', 'route', 'status_class'] as const,
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});

let activeRequests = 0;
new Gauge({
  name: 'http_server_active_requests',
  help: 'HTTP requests being handled right now',
  registers: [registry],
  collect() {
    this.set(activeRequests);
  },
});

/** Called when a request starts and when it ends (answered or aborted). */
export const activeRequestsChange = (delta: 1 | -1): void => {
  activeRequests += delta;
};

/** A pool's sizes as the gauges report them, whatever the driver (metrics/database-metrics.ts reads them). */
export interface PoolStats {
  total: number;
  idle: number;
  max: number;
  waiting: number;
}

/** The pool the gauges read: the running app's (one per process outside tests). */
let observedPool: (() => PoolStats) | undefined;
export const observePool = (stats: () => PoolStats): void => {
  observedPool = stats;
};
export const stopObservingPool = (stats: () => PoolStats): void => {
  if (observedPool === stats) observedPool = undefined;
};

const poolGauge = (name: string, help: string, read: (pool: PoolStats) => number) =>
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(observedPool ? read(observedPool()) : 0);
    },
  });
poolGauge('db_pool_connections', 'Open connections in the pool, busy or idle', (pool) => pool.total);
poolGauge('db_pool_connections_idle', 'Open connections waiting for work', (pool) => pool.idle);
poolGauge(
  'db_pool_connections_max',
  'Most connections the pool may open (DB_POOL_SIZE + DB_POOL_MAX_OVERFLOW)',
  (pool) => pool.max,
);
poolGauge(
  'db_pool_waiting',
  'Callers waiting for a connection because all are busy (pool saturated)',
  (pool) => pool.waiting,
);

export const poolAcquireDuration = new Histogram({
  name: 'db_pool_acquire_duration_seconds',
  help: 'Time to get a connection from the pool, including opening a new one',
  buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10],
  registers: [registry],
});

export const poolAcquireTimeouts = new Counter({
  name: 'db_pool_acquire_timeouts_total',
  help: 'Connection requests that got none within DB_POOL_TIMEOUT_MS (pool exhausted or database unreachable), each answered 503',
  registers: [registry],
});

export const queryDuration = new Histogram({
  name: 'db_query_duration_seconds',
  help: 'SQL statements by operation (select, insert, update, delete, other), from sending to the last row',
  labelNames: ['operation'] as const,
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});

export const queryErrors = new Counter({
  name: 'db_query_errors_total',
  help: 'Failed SQL statements by SQLSTATE class (23 = constraint, 40 = rollback, 57 = operator intervention, …; "driver" = no SQLSTATE)',
  labelNames: ['sqlstate_class'] as const,
  registers: [registry],
});

const transactions = new Counter({
  name: 'db_transactions_total',
  help: 'Transaction attempts by outcome: committed, rolled_back, or retried (aborted as a deadlock or serialization victim, then run again)',
  labelNames: ['outcome'] as const,
  registers: [registry],
});
for (const outcome of ['committed', 'rolled_back', 'retried']) transactions.inc({ outcome }, 0);

/** Counts one transaction attempt (database/transactions/transactions.ts). */
export const countTransaction = (outcome: 'committed' | 'rolled_back' | 'retried'): void =>
  transactions.inc({ outcome });

/**
 * prom-client's default Node metrics (event-loop lag, heap, GC, RSS, CPU, handles), once per
 * process: they watch the runtime, not an app instance.
 */
export function collectProcessMetrics(): void {
  if (!registry.getSingleMetric('process_cpu_user_seconds_total')) collectDefaultMetrics({ register: registry });
}

const connectionsLost = new Counter({
  name: 'db_connections_lost_total',
  help: 'Database connections that broke under the app (server restarted or failed over, backend terminated, network cut), each dropped from the pool',
  registers: [registry],
});
connectionsLost.inc(0);

/** Counts one pooled connection that reported an error and was dropped (database/errors/connection-faults.ts). */
export const countConnectionLost = (): void => connectionsLost.inc();

const statementsRetried = new Counter({
  name: 'db_statements_retried_total',
  help: 'Work re-run after its connection was lost or refused it, by kind: read (one statement outside a transaction) or transaction (lost before COMMIT was sent)',
  labelNames: ['kind'] as const,
  registers: [registry],
});
for (const kind of ['read', 'transaction']) statementsRetried.inc({ kind }, 0);

/** Counts one read or transaction re-run on a fresh connection (database/reads/pool-queries.ts, database/transactions/transactions.ts). */
export const countStatementRetried = (kind: 'read' | 'transaction'): void => statementsRetried.inc({ kind });

/** Why a request was answered 503: the `cause` label of http_server_unavailable_responses_total. */
export type UnavailableCause =
  | 'database_unavailable'
  | 'database_read_only'
  | 'database_pool_exhausted'
  | 'database_statement_timeout'
  | 'rate_limiter'
  | 'shutting_down'
  | 'other';

const unavailableResponses = new Counter({
  name: 'http_server_unavailable_responses_total',
  help: 'Requests answered 503 Service Unavailable, by cause (database_unavailable, database_read_only, database_pool_exhausted, database_statement_timeout, rate_limiter, shutting_down, other)',
  labelNames: ['cause'] as const,
  registers: [registry],
});

const UNAVAILABLE_CAUSES: UnavailableCause[] = [
  'database_unavailable',
  'database_read_only',
  'database_pool_exhausted',
  'database_statement_timeout',
  'rate_limiter',
  'shutting_down',
  'other',
];
for (const cause of UNAVAILABLE_CAUSES) unavailableResponses.inc({ cause }, 0);

/** Counts one 503 answer (http/problem-details.filter.ts). */
export const countUnavailableResponse = (cause: UnavailableCause): void => unavailableResponses.inc({ cause });
