import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance } from 'fastify';
import helmet from 'helmet';
import { entityTags } from './common/conditional-requests';
import { buildOpenApiDocument, setupOpenApi } from './common/openapi';
import { ProblemDetailsFilter } from './common/problem-details.filter';
import { serializeResponsesAsDocumented } from './common/response-serialization';
import { createValidationPipe } from './common/validation';
import type { AppConfig } from './config/app.config';
import { Draining } from './health/draining';

/** Request body limit: far above any valid payload, far below what could hurt the process. */
export const BODY_LIMIT_BYTES = 100 * 1024;

/** Everything that shapes HTTP behaviour, shared by main.ts and the e2e tests so both run the same app. */
export function configureApp(
  app: NestFastifyApplication,
  config: AppConfig,
  problems = new ProblemDetailsFilter(),
): NestFastifyApplication {
  const fastify: FastifyInstance = app.getHttpAdapter().getInstance();
  securityHeaders(fastify);
  if (config.corsOrigins.length > 0) {
    app.enableCors({
      origin: config.corsOrigins.includes('*') ? '*' : config.corsOrigins,
      exposedHeaders: ['Location', 'Link', 'ETag', 'Retry-After', 'X-Request-Id'],
    });
  }
  acceptJsonOnly(fastify);
  entityTags(fastify);
  closeConnectionsWhileDraining(fastify, app.get(Draining));
  exposeRoutePattern(fastify);
  echoRequestId(fastify);
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(problems);
  const document = buildOpenApiDocument(app);
  serializeResponsesAsDocumented(fastify, document);
  setupOpenApi(app, document);
  return app;
}

/**
 * Helmet's default security headers on every response. One helmet instance for the app: the
 * @fastify/helmet plugin builds a new one for every request, which costs more than the headers.
 */
function securityHeaders(fastify: FastifyInstance): void {
  const applyHeaders = helmet();
  fastify.addHook('onRequest', (request, reply, done) => applyHeaders(request.raw, reply.raw, () => done()));
}

/**
 * Bodies must be JSON: any other type is 415 (Fastify answers that for unregistered types), over the
 * limit 413, malformed 400. JSON may escape lone UTF-16 surrogates ("\ud800") that are not text:
 * validators choke on them and PostgreSQL cannot store them, so they are a 400 too.
 */
function acceptJsonOnly(fastify: FastifyInstance): void {
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser(/^application\/([\w.+-]+\+)?json$/, { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, JSON.parse(body.toString(), rejectLoneSurrogates));
    } catch (error) {
      done(Object.assign(error as Error, { statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON' }), undefined);
    }
  });
}

function rejectLoneSurrogates(_key: string, value: unknown): unknown {
  if (typeof value === 'string' && !value.isWellFormed()) throw new SyntaxError('lone surrogate in a string');
  return value;
}

/**
 * Once shutdown has begun, every response closes its keep-alive connection: busy clients then
 * reconnect (elsewhere) instead of holding this server open, so draining always finishes.
 */
function closeConnectionsWhileDraining(fastify: FastifyInstance, draining: Draining): void {
  fastify.addHook('onSend', (_request, reply, payload, done) => {
    if (draining.active) reply.header('Connection', 'close');
    done(null, payload);
  });
}

/** Every response names its request id (see common/logging.ts), so a client can quote it. */
function echoRequestId(fastify: FastifyInstance): void {
  fastify.addHook('onRequest', (request, reply, done) => {
    reply.header('X-Request-Id', request.id);
    done();
  });
}

/** The matched route pattern (`/users/:id`) on the raw request, so the request log can aggregate by it. */
function exposeRoutePattern(fastify: FastifyInstance): void {
  fastify.addHook('onRequest', (request, _reply, done) => {
    (request.raw as { routePattern?: string }).routePattern = request.routeOptions.url;
    done();
  });
}
