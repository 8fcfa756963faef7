import { DataSource } from 'typeorm';
import { loadConfig, loadDotEnv } from '../config/app.config';
import { dataSourceOptions } from './data-source.options';
import { startEmbeddedPostgres, type RunningPostgres } from './dialects/embedded-postgres';

/**
 * The database for command-line tools (TypeORM CLI, seed): the app's configuration and options, and
 * the same embedded PostgreSQL as `npm start` when DATABASE_URL is unset (stop the app first).
 */
export async function openCliDatabase(): Promise<{ dataSource: DataSource; close(): Promise<void> }> {
  loadDotEnv();
  const config = loadConfig();
  let embedded: RunningPostgres | undefined;
  if (!config.database.url) {
    embedded = await startEmbeddedPostgres(config.embeddedPostgres);
    config.database.url = embedded.url;
  }
  const dataSource = new DataSource({ ...dataSourceOptions(config.database), migrationsRun: false });
  return {
    dataSource,
    async close() {
      if (dataSource.isInitialized) await dataSource.destroy();
      await embedded?.stop();
    },
  };
}
