import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, type OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { APP_CONFIG, type AppConfig } from './config/app.config';
import { documentConsistencyTokens } from './http/consistency-token';
import { BEARER_SCHEME, toOpenApi31 } from './http/openapi';
import { documentIdempotencyKeys } from './idempotency/idempotent.decorator';

/**
 * The OpenAPI 3.1 document, generated from controllers and DTOs (the Swagger CLI plugin reads them at
 * build time), with what the http/ toolkit and the features add to it. App level: it assembles
 * every part, as app.module.ts does.
 */
export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('Users, posts and comments API')
    .setDescription('NestJS 12 + TypeORM 1.x on PostgreSQL. Every error is application/problem+json (RFC 9457).')
    .setVersion('1.0')
    .setOpenAPIVersion('3.1.0')
    .addBearerAuth(
      { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'The `accessToken` from POST /auth/login' },
      BEARER_SCHEME,
    )
    .build();
  const document = toOpenApi31(SwaggerModule.createDocument(app, config));
  documentConsistencyTokens(document);
  documentIdempotencyKeys(document, app.get<AppConfig>(APP_CONFIG).idempotency.keyTtlSeconds);
  return document;
}
