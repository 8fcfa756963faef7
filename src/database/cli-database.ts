import { type LogLevel as NestLogLevel, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { type AppConfig, loadConfig, loadDotEnv } from '../config/app.config';
import { dataSourceOptions } from './data-source.options';
import { startEmbeddedPostgres, type RunningPostgres } from './dialects/embedded-postgres';

/**
 * The database for command-line tools (TypeORM CLI, seed): the app's configuration and options, and
 * the same embedded PostgreSQL as `npm start` when DATABASE_URL is unset (stop the app first).
 */
export async function openCliDatabase(): Promise<{ dataSource: DataSource; close(): Promise<void> }> {
  loadDotEnv();
  const config = loadConfig();
  // Nest's console logger prints every level unless told: TypeORM's chatter (the whole migration-file
  // list) came out as DEBUG lines. LOG_LEVEL says what a tool prints, as it does for the app.
  Logger.overrideLogger(NEST_LEVELS[config.log.level]);
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

/**
 * The Nest log levels LOG_LEVEL (pino's names) lets through. At the default, `info`: warnings, errors
 * and news (migration:show's listing, a migration applied, statements with DB_LOGGING); DEBUG lines
 * only with LOG_LEVEL=debug.
 */
const NEST_LEVELS: Record<AppConfig['log']['level'], NestLogLevel[]> = {
  trace: ['verbose', 'debug', 'log', 'warn', 'error', 'fatal'],
  debug: ['debug', 'log', 'warn', 'error', 'fatal'],
  info: ['log', 'warn', 'error', 'fatal'],
  warn: ['warn', 'error', 'fatal'],
  error: ['error', 'fatal'],
  fatal: ['fatal'],
  silent: [],
};
