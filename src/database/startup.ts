import { setTimeout as sleep } from 'node:timers/promises';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { isDatabaseUnavailable } from './errors/database-errors';

/** The first retry's delay; each next one doubles, up to MAX_BACKOFF_MS. */
const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 5_000;

/**
 * A DataSource on `options`, initialized (connected, and migrated when `migrationsRun`), waiting for a
 * database that is not there yet — starting, restarting, slow on a busy machine — instead of failing at
 * once: see whenAvailable. `beforeConnect` runs first in each attempt (e.g. a check on a connection
 * of its own that must precede the pool's sessions). Throws as whenAvailable does.
 */
export function initializeWhenAvailable(
  options: DataSourceOptions,
  startupTimeoutMs: number,
  beforeConnect: () => Promise<unknown> = () => Promise.resolve(),
  warn?: (line: string) => void,
): Promise<DataSource> {
  return whenAvailable(
    async () => {
      await beforeConnect();
      return new DataSource(options).initialize(); // a failed initialize() closes its pool
    },
    startupTimeoutMs,
    warn,
  );
}

/**
 * The result of `attempt`, retried while it fails because the database is unavailable
 * (isDatabaseUnavailable: refused, timed out, "starting up", too many connections) after an
 * exponential backoff (250 ms, doubling, at most 5 s), one log line per failed attempt, until
 * `startupTimeoutMs` has passed since the first. Each attempt waits for its connection as long as the
 * pool lets a request wait (DB_POOL_TIMEOUT_MS); the deadline bounds them all. Any other error (bad
 * password, unknown database, a failed migration) is thrown at once. Throws the last error, its
 * message naming how long it tried, when the deadline passes.
 */
export async function whenAvailable<T>(
  attempt: () => Promise<T>,
  startupTimeoutMs: number,
  // Not Nest's Logger: at startup its lines wait in a buffer for the app's logger, and a start that
  // fails drops them; these are the lines an operator needs right then (main.ts's last line is plain too).
  warn: (line: string) => void = (line) => console.warn(line),
): Promise<T> {
  const started = Date.now();
  for (let attempts = 1; ; attempts++) {
    try {
      return await attempt();
    } catch (error) {
      const elapsed = Date.now() - started;
      const message = error instanceof Error ? error.message : String(error);
      if (!isDatabaseUnavailable(error)) throw error;
      const backoff = Math.min(FIRST_BACKOFF_MS * 2 ** (attempts - 1), MAX_BACKOFF_MS);
      if (elapsed + backoff > startupTimeoutMs) {
        throw new Error(
          `${message} (gave up after ${attempts} attempt${attempts > 1 ? 's' : ''} in ${Math.round(elapsed / 1000)} s, DB_STARTUP_TIMEOUT_MS=${startupTimeoutMs})`,
          { cause: error },
        );
      }
      warn(`Database not available yet (attempt ${attempts}: ${message}); retrying in ${backoff} ms`);
      await sleep(backoff);
    }
  }
}
