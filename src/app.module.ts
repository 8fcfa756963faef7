import { DynamicModule, Module } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { LoggerModule } from 'nestjs-pino';
import { AuthApiModule } from './auth/auth-api.module';
import { CommentsModule } from './comments/comments.module';
import { loggerParams } from './http/logging';
import { RateLimitModule } from './http/rate-limit.module';
import { ForeignKeyProblems } from './db/constraint-problems';
import { transactionsModule } from './db/transactions';
import { ReadRoutingModule } from './db/read-routing';
import { APP_CONFIG, type AppConfig } from './config/app.config';
import { AppConfigModule } from './config/app-config.module';
import { dataSourceOptions } from './database/data-source.options';
import { sqliteGate } from './database/sqlite';
import { HealthModule } from './health/health.module';
import { IdempotencyModule } from './idempotency/idempotency.module';
import { MetricsModule } from './metrics/metrics.module';
import { HandlerSpanInterceptor } from './tracing/request-tracing';
import { PostsModule } from './posts/posts.module';
import { UsersModule } from './users/users.module';

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
            // Fail fast at startup (main.ts reports why in one line); once running, the pool reconnects by itself.
            toRetry: () => false,
          }),
          // On SQLite, the one connection goes behind the gate before any request uses it.
          dataSourceFactory: async (options) => {
            const dataSource = await new DataSource(options!).initialize();
            sqliteGate.install(dataSource);
            return dataSource;
          },
        }),
        transactionsModule(),
        ReadRoutingModule,
        RateLimitModule.forRoot(config.rateLimit),
        IdempotencyModule,
        AuthApiModule,
        HealthModule,
        UsersModule,
        PostsModule,
        CommentsModule,
        ...(config.metrics.enabled ? [MetricsModule.forRoot(config.metrics)] : []),
      ],
      // Foreign keys no feature mapped still become a 422 naming the field (see db/constraint-problems.ts).
      providers: [
        ForeignKeyProblems,
        ...(config.tracing.enabled ? [{ provide: APP_INTERCEPTOR, useClass: HandlerSpanInterceptor }] : []),
      ],
    };
  }
}
