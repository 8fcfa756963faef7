import { Global, Module } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../../config/app.config';
import { dialectOf } from './dialect';

/**
 * The injection token of the running SqlDialect: `@Inject(SQL_DIALECT) dialect: SqlDialect`.
 * Repositories pick their statements table with it once, at construction. Code outside dependency
 * injection (CLI commands, migrations, tests) calls dialectOf(url) or sqlDialectOf(dataSource).
 */
export const SQL_DIALECT = Symbol('SqlDialect');

/** Provides SQL_DIALECT to every module: DATABASE_URL's dialect, worked out once by dialectOf. */
@Global()
@Module({
  providers: [
    {
      provide: SQL_DIALECT,
      inject: [APP_CONFIG],
      // AppModule requires the URL set (main.ts starts the embedded database first when it isn't).
      useFactory: (config: AppConfig) => dialectOf(config.database.url ?? ''),
    },
  ],
  exports: [SQL_DIALECT],
})
export class SqlDialectModule {}
