import { DynamicModule, Logger, Module } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { LoggerModule } from 'nestjs-pino';
import { AuthApiModule } from './auth/auth-api.module';
import { CommentsModule } from './comments/comments.module';
import { loggerParams } from './http/logging';
import { RateLimitModule } from './http/rate-limit.module';
import { ForeignKeyProblems } from './database/errors/constraint-problems';
import { transactionsModule } from './database/transactions/transactions';
import { ReadRoutingModule } from './database/reads/read-routing';
import { APP_CONFIG, type AppConfig } from './config/app.config';
import { AppConfigModule } from './config/app-config.module';
import { dataSourceOptions } from './database/data-source.options';
import { initializeWhenAvailable } from './database/startup';
import { sqliteGate } from './database/dialects/sqlite';
import { SqlDialectModule } from './database/dialects/sql-dialect.module';
import { runMigrationsExclusively } from './database/migrations/migration-lock';
import { ensureSessionStatementTimeout } from './database/dialects/statement-timeout';
import { HealthModule } from './health/health.module';
import { IdempotencyModule } from './idempotency/idempotency.module';
import { MetricsModule } from './metrics/metrics.module';
import { HandlerSpanInterceptor } from './http/handler-span.interceptor';
import { PostsModule } from './posts/posts.module';
import { UsersModule } from './users/users.module';

const databaseLogger = new Logger('Database');

@Module({})
export class AppModule {
  /** `config.database.url` must be set: main.ts starts the embedded database first when it isn't. */
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        AppConfigModule.forRoot(config),
        LoggerModule.forRoot(loggerParams(config)),
        TypeOrmModule.forRootAsync({
          inject: [APP_CONFIG],
          useFactory: (appConfig: AppConfig) => ({
            ...dataSourceOptions(appConfig.database),
            // initializeWhenAvailable retries an unavailable database up to DB_STARTUP_TIMEOUT_MS; anything
            // else fails at once (main.ts reports why in one line). Once running, the pool reconnects by itself.
            toRetry: () => false,
          }),
          // On SQLite, the one connection goes behind the gate before any request uses it. Migrations run
          // under a lock (several instances may start at once), not by TypeORM's migrationsRun.
          dataSourceFactory: async (options) => {
            // The role's statement timeout is checked before the pool opens, so its sessions start with it.
            const dataSource = await initializeWhenAvailable(
              { ...options!, migrationsRun: false },
              config.database.startupTimeoutMs,
              () => ensureSessionStatementTimeout(config.database, databaseLogger),
            );
            const sqliteConstraintNames = sqliteGate.install(dataSource);
            if (config.database.migrationsRun) {
              await runMigrationsExclusively(dataSource, databaseLogger);
              sqliteConstraintNames?.learn(); // SQLite: the indexes the migrations just made
            }
            return dataSource;
          },
        }),
        transactionsModule(),
        ReadRoutingModule,
        SqlDialectModule,
        RateLimitModule.forRoot(config.rateLimit),
        IdempotencyModule,
        AuthApiModule,
        HealthModule,
        UsersModule,
        PostsModule,
        CommentsModule,
        ...(config.metrics.enabled ? [MetricsModule.forRoot(config.metrics)] : []),
      ],
      // Foreign keys no feature mapped still become a 422 naming the field (see database/errors/constraint-problems.ts).
      providers: [
        ForeignKeyProblems,
        ...(config.tracing.enabled ? [{ provide: APP_INTERCEPTOR, useClass: HandlerSpanInterceptor }] : []),
      ],
    };
  }
}
