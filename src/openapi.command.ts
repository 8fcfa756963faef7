import './node-version'; // first: refuses an old Node.js before argon2 (a native addon) can crash it
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { OpenAPIObject } from '@nestjs/swagger';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { AppModule } from './app.module';
import { buildOpenApiDocument } from './openapi.document';
import { loadConfig } from './config/app.config';

/**
 * The OpenAPI document of the code as compiled, without a database: preview mode builds the module
 * graph without starting providers. The DTO schemas come from the Swagger CLI plugin, so the code must
 * have been compiled with it (`nest build`, or the e2e tests' ts-jest transformer,
 * test/setup/swagger-plugin.cjs).
 */
export async function previewOpenApiDocument(): Promise<OpenAPIObject> {
  const config = loadConfig({ DATABASE_URL: 'postgres://unused@localhost/unused', LOG_LEVEL: 'silent' });
  const app = await NestFactory.create(AppModule.forRoot(config), new FastifyAdapter(), {
    preview: true,
    logger: false,
  });
  try {
    return buildOpenApiDocument(app);
  } finally {
    await app.close();
  }
}

/** Writes `document` as `npm run openapi` commits it (before Prettier): two-space JSON and a final newline. */
export function writeOpenApiDocument(document: OpenAPIObject, file: string): void {
  writeFileSync(file, `${JSON.stringify(document, null, 2)}\n`);
}

/** `npm run openapi`: writes openapi.json from the built app (the Swagger CLI plugin only runs in `nest build`). */
async function main(): Promise<void> {
  const file = resolve(process.argv[2] ?? 'openapi.json');
  writeOpenApiDocument(await previewOpenApiDocument(), file);
  console.log(`wrote ${file}`);
}

if (require.main === module) void main();
