import { join } from 'node:path';
import type { DataSourceOptions } from 'typeorm';
import type { DatabaseConfig } from '../config/app.config';
import { DatabaseLogger } from './database.logger';
import { entities } from './entities';

/**
 * The one place that turns configuration into TypeORM DataSource options.
 * Used by the app (TypeOrmModule), the TypeORM CLI (ormconfig.ts) and the test setup.
 */
export function dataSourceOptions(config: DatabaseConfig): DataSourceOptions {
  if (!config.url) throw new Error('dataSourceOptions: the database URL is not known yet');
  return {
    type: 'postgres',
    url: config.url,
    entities,
    migrations: [join(__dirname, 'migrations', '*.{ts,js}')],
    migrationsTableName: 'migrations',
    migrationsTransactionMode: 'each',
    migrationsRun: config.migrationsRun,
    synchronize: false,
    logger: new DatabaseLogger(config.logging),
    maxQueryExecutionTime: config.slowQueryMs,
    applicationName: 'nest-typeorm-users',
    // pg-pool: `min` connections are kept, up to `max` are opened under load and closed again
    // after idleTimeoutMillis (SQLAlchemy's pool_size + max_overflow); connectionTimeoutMillis bounds
    // the wait for a free connection, so an exhausted pool answers 503 instead of hanging.
    extra: {
      min: config.poolSize,
      max: config.poolSize + config.poolMaxOverflow,
      idleTimeoutMillis: config.poolIdleTimeoutMs,
      connectionTimeoutMillis: config.poolTimeoutMs,
      statement_timeout: config.statementTimeoutMs || undefined,
    },
  };
}
