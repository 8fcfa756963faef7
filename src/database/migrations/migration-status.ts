import { type DataSource, MigrationExecutor } from 'typeorm';

/**
 * One line for the startup log: how many migrations the database has applied, the latest, and any
 * still pending (only when DB_MIGRATIONS_RUN=false; otherwise startup applied them, each logged by
 * DatabaseLogger as "Applied migration …"). Reads the migrations table; throws if the query fails.
 */
export async function describeMigrations(dataSource: DataSource): Promise<string> {
  const executor = new MigrationExecutor(dataSource);
  const applied = await executor.getExecutedMigrations();
  const pending = await executor.getPendingMigrations();
  const latest = applied.toSorted((a, b) => b.timestamp - a.timestamp)[0];
  const summary = `Database schema: ${applied.length} migration${applied.length === 1 ? '' : 's'} applied${latest ? ` (latest ${latest.name})` : ''}`;
  if (pending.length === 0) return `${summary}, none pending`;
  return `${summary}; ${pending.length} pending, not applied because DB_MIGRATIONS_RUN=false: ${pending.map((m) => m.name).join(', ')} (npm run migration:run applies them)`;
}
