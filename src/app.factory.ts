import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Logger } from 'nestjs-pino';
import { AppModule } from './app.module';
import { configureApp } from './app.setup';
import type { AppConfig } from './config/app.config';

/** Builds the configured application, not yet listening. main.ts and the e2e tests both use it. */
export async function createApp(config: AppConfig): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config), {
    bodyParser: false, // configureApp installs it with an explicit size limit
    // A failed start (bad database URL, …) is reported by main.ts in one line: no stack dump from
    // Nest, no process.abort(). The logger (pino, see common/logging.ts) is attached once built.
    abortOnError: false,
    logger: false,
  });
  app.useLogger(app.get(Logger));
  return configureApp(app, config);
}
