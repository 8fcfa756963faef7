import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { AppModule } from './app.module';
import { buildOpenApiDocument } from './http/openapi';
import { loadConfig } from './config/app.config';

/**
 * `npm run openapi`: writes openapi.json from the built app (the Swagger CLI plugin only runs in
 * `nest build`). Preview mode builds the module graph without starting providers: no database.
 */
async function writeOpenApi(): Promise<void> {
  const config = loadConfig({ DATABASE_URL: 'postgres://unused@localhost/unused', LOG_LEVEL: 'silent' });
  const app = await NestFactory.create(AppModule.forRoot(config), new FastifyAdapter(), {
    preview: true,
    logger: false,
  });
  const file = resolve(process.argv[2] ?? 'openapi.json');
  writeFileSync(file, `${JSON.stringify(buildOpenApiDocument(app), null, 2)}\n`);
  console.log(`wrote ${file}`);
}

void writeOpenApi();
