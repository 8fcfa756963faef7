import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Logger, PinoLogger } from 'nestjs-pino';
import { AppModule } from './app.module';
import { logRequests, requestIdFor, withQuietStartup } from './http/logging';
import { answerClientError, ProblemDetailsFilter } from './http/problem-details.filter';
import type { AppConfig } from './config/app.config';
import helmet from 'helmet';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { entityTags } from './http/conditional-requests';
import { setupOpenApi } from './http/openapi';
import { buildOpenApiDocument } from './openapi.document';
import { serializeResponsesAsDocumented } from './http/response-serialization';
import { createValidationPipe } from './http/validation';
import { parseJsonBodies } from './http/json-body';
import { answerUnsupportedMethods } from './http/method-not-allowed';
import { Draining } from './health/draining';
import { ReplicaSet } from './database/reads/replicas';
import { CONSISTENCY_TOKEN, consistencyTokens } from './http/consistency-token';
import { traceRequests } from './tracing/request-tracing';
import { vary } from './http/vary';
import { IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED } from './idempotency/idempotency-key';
import { idempotentResponses } from './idempotency/idempotency.interceptor';
import { IdempotencyRepository } from './idempotency/idempotency.repository';

/** Builds the configured application, not yet listening. main.ts and the e2e tests both use it. */
export async function createApp(config: AppConfig): Promise<NestFastifyApplication> {
  // Fastify rather than Express: measurably faster on the nested reads (BENCHMARKS.md).
  const problems = new ProblemDetailsFilter();
  const adapter = new FastifyAdapter({
    // Malformed URLs and over-long path parameters fail before routing: still problem+json.
    genReqId: requestIdFor,
    // While closing, a request already on an open connection is still served (the pool closes only
    // after HTTP has drained) and its response closes the connection, instead of a non-problem 503.
    return503OnClosing: false,
    requestIdHeader: false,
    clientErrorHandler: answerClientError,
    frameworkErrors: (error: FastifyError, request: FastifyRequest, reply: FastifyReply) =>
      problems.render(error, request, reply),
    bodyLimit: BODY_LIMIT_BYTES,
    ...httpTimeouts(config.http),
    trustProxy: (_address: string, hop: number) => hop < config.trustProxyHops,
  });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config), adapter, {
    bodyParser: false, // configureApp installs the JSON parser, with its limit and checks
    // A failed start (bad database URL, …) is reported by main.ts in one line: no stack dump from
    // Nest, no process.abort(). Lines logged while building (migrations applied, routes) wait for the
    // logger (pino, see http/logging.ts) and come out in its format; a failed start drops them.
    abortOnError: false,
    bufferLogs: true,
    autoFlushLogs: false,
  });
  app.useLogger(withQuietStartup(app.get(Logger)));
  app.flushLogs();
  configureApp(app, config, problems);
  // Here rather than in configureApp: it needs nestjs-pino's PinoLogger, a transient provider (resolve()).
  if (config.log.level !== 'silent') logRequests(app.getHttpAdapter().getInstance(), await app.resolve(PinoLogger));
  return app;
}

/**
 * Every wait on a client bounded (config: HTTP_*_TIMEOUT_MS). A request not fully received within
 * `requestTimeoutMs` (a body that trickles, a Content-Length larger than the body) or whose headers
 * take longer than `headersTimeoutMs` gets 408 problem+json and its connection closed (Node raises
 * ERR_HTTP_REQUEST_TIMEOUT, answerClientError answers it; RFC 9110 §15.5.9, RFC 9112 §9.6). Node
 * checks those two only every `connectionsCheckingInterval` (30 s by default): here a tenth of the
 * shorter one, 1 s at most, so a timeout fires close to when it is due.
 */
function httpTimeouts(http: AppConfig['http']) {
  const shortest = Math.min(http.headersTimeoutMs, http.requestTimeoutMs || Infinity);
  return {
    requestTimeout: http.requestTimeoutMs,
    connectionTimeout: http.connectionTimeoutMs,
    keepAliveTimeout: http.keepAliveTimeoutMs,
    http: {
      headersTimeout: http.headersTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(shortest / 10))),
    },
  };
}

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
  const anyOrigin = config.corsOrigins.includes('*');
  if (config.corsOrigins.length > 0) {
    // Everything the API uses (Fetch standard, CORS protocol): without PATCH/DELETE and If-Match in
    // the preflight answer, browsers block every edit.
    app.enableCors({
      origin: anyOrigin ? '*' : config.corsOrigins,
      methods: ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'],
      allowedHeaders: [
        'Authorization',
        'Content-Type',
        'If-Match',
        'If-None-Match',
        'X-Request-Id',
        CONSISTENCY_TOKEN,
        IDEMPOTENCY_KEY,
      ],
      exposedHeaders: [
        'Location',
        'Link',
        'ETag',
        'Retry-After',
        'WWW-Authenticate',
        'X-Request-Id',
        CONSISTENCY_TOKEN,
        IDEMPOTENT_REPLAYED,
      ],
      maxAge: 600,
    });
    if (!anyOrigin) varyByOrigin(fastify);
  }
  parseJsonBodies(fastify);
  entityTags(fastify);
  const replicas = app.get(ReplicaSet);
  if (replicas.enabled) consistencyTokens(fastify, replicas, problems);
  idempotentResponses(fastify, app.get(IdempotencyRepository)); // after entityTags and consistencyTokens: a replay's headers win
  closeConnectionsWhileDraining(fastify, app.get(Draining));
  echoRequestId(fastify);
  answerUnsupportedMethods(fastify, problems);
  if (config.tracing.enabled) traceRequests(fastify);
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(problems);
  const document = buildOpenApiDocument(app);
  serializeResponsesAsDocumented(fastify, document);
  setupOpenApi(app, document);
  return app;
}

/**
 * Helmet's default security headers on every response, set as Fastify reply headers. Helmet's
 * defaults depend on nothing in the request (no CSP nonce), so its middleware runs once, at startup,
 * against a recorder, and each request gets the recorded headers in one `reply.headers()` call.
 * Running helmet per request cost more: a dozen `setHeader` calls on the raw response, which also
 * make Node merge every other header one by one when the reply is written.
 *
 * Two recordings: over HTTPS (TLS here, or `X-Forwarded-Proto: https` from a trusted proxy, see
 * TRUST_PROXY_HOPS) all of helmet's defaults; over plain HTTP neither CSP `upgrade-insecure-requests`
 * (the browser would fetch Swagger UI's assets over https, which a plain-HTTP server does not serve)
 * nor `Strict-Transport-Security` (RFC 6797 §7.2: not sent over non-secure transport).
 */
function securityHeaders(fastify: FastifyInstance): void {
  const overHttps = helmetHeaders();
  const overHttp = helmetHeaders({
    strictTransportSecurity: false,
    contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } },
  });
  fastify.addHook('onRequest', (request, reply, done) => {
    void reply.headers(request.protocol === 'https' ? overHttps : overHttp);
    done();
  });
}

/** The headers `helmet(options)` sets on a response (names lower-cased), recorded from one dry run. */
export function helmetHeaders(options?: Parameters<typeof helmet>[0]): Record<string, string> {
  const headers: Record<string, string> = {};
  const recorder = {
    setHeader: (name: string, value: string) => (headers[name.toLowerCase()] = value),
    removeHeader: (name: string) => delete headers[name.toLowerCase()],
  };
  let ran = false;
  helmet(options)({} as IncomingMessage, recorder as unknown as ServerResponse, () => (ran = true));
  if (!ran) throw new Error('helmet did not finish synchronously: its headers cannot be recorded once');
  return headers;
}

/**
 * With a list of allowed origins, whether a response carries `Access-Control-Allow-Origin` depends on
 * the request's `Origin`: every response says so in `Vary` (Fetch standard, "CORS protocol and HTTP
 * caches"), errors and 304s included, merged with the route's own `Vary` (which it would otherwise
 * replace), so a shared cache never serves one origin's answer to another.
 */
function varyByOrigin(fastify: FastifyInstance): void {
  fastify.addHook('onSend', (_request, reply, payload, done) => {
    vary(reply, 'Origin');
    done(null, payload);
  });
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

/** Every response names its request id (see http/logging.ts), so a client can quote it. */
function echoRequestId(fastify: FastifyInstance): void {
  fastify.addHook('onRequest', (request, reply, done) => {
    reply.header('X-Request-Id', request.id);
    done();
  });
}
