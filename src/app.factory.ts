import { ConsoleLogger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module';
import { configureApp } from './app.setup';
import type { AppConfig } from './config/app.config';

/** Builds the configured application, not yet listening. main.ts and the e2e tests both use it. */
export async function createApp(config: AppConfig, options: { quiet?: boolean } = {}): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config), {
    bodyParser: false, // configureApp installs it with an explicit size limit
    // A failed start (bad database URL, …) is reported by main.ts in one line: no stack dump from
    // Nest, no process.abort(). The logger is attached once the app has been built.
    abortOnError: false,
    logger: false,
  });
  if (!options.quiet) app.useLogger(new ConsoleLogger());
  return configureApp(app, config);
}
