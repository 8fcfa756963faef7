import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { loadConfig, loadDotEnv } from './src/config/app.config';
import { dataSourceOptions } from './src/database/data-source.options';
import { startEmbeddedPostgres } from './src/database/embedded-postgres';

/**
 * The TypeORM CLI's data source (`npm run migration:*`): the app's own options, and the same
 * embedded PostgreSQL as `npm start` when no DATABASE_URL is set (stop the app first).
 */
async function cliDataSource(): Promise<DataSource> {
  loadDotEnv();
  const config = loadConfig();
  if (!config.database.url) config.database.url = (await startEmbeddedPostgres(config.embeddedPostgres)).url;
  return new DataSource({
    ...dataSourceOptions(config.database),
    migrationsRun: false,
  });
}

export default cliDataSource();
