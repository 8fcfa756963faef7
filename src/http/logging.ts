import type { LoggerService } from '@nestjs/common';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { type Params, PinoLogger } from 'nestjs-pino';
import type { AppConfig } from '../config/app.config';
import { traceContextForLogs } from '../tracing/request-tracing';

const REQUEST_ID = /^[\w.:-]{1,128}$/;

/** The client's X-Request-Id when it is sane, else a new UUID. configureApp echoes it back. */
export function requestIdFor(req: IncomingMessage): string {
  const fromClient = req.headers['x-request-id'];
  return typeof fromClient === 'string' && REQUEST_ID.test(fromClient) ? fromClient : randomUUID();
}

/**
 * Structured logs (nestjs-pino): the logger every line goes through — pino, JSON in production, a
 * pretty single line in development (pino-pretty in a worker thread). Each request is logged by
 * logRequests. Bodies and credentials are never logged, except as statement parameters in the
 * DB_LOGGING echo (a debugging aid, README).
 */
export function loggerParams(config: AppConfig): Params {
  return {
    // No pino-http middleware: logRequests does its work in two Fastify hooks (nestjs-pino still builds
    // the root logger from `pinoHttp`'s options).
    forRoutes: [],
    pinoHttp: {
      level: config.log.level,
      transport: config.log.format === 'pretty' ? { target: 'pino-pretty', options: { singleLine: true } } : undefined,
      serializers: {
        req: (req: { method: string; url: string }) => ({ method: req.method, url: req.url }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      redact: ['req.headers.authorization', 'req.headers.cookie'],
      // With tracing on, every line names the trace and span it was written in (none: no cost).
      mixin: config.tracing.enabled ? traceContextForLogs : undefined,
    },
  };
}

/** Route patterns of probes and scrapes: /health, /health/ready, /metrics. */
const UNLOGGED_ROUTES = /^\/(health|metrics)(\/|$)/;

/**
 * The request log, unless LOG_LEVEL=silent: each request is logged once when its response has
 * been sent — `{ requestId, req: { method, url }, res: { statusCode }, responseTime (ms), route }`,
 * "request completed" at info, "request errored" at error for a 5xx (the error itself is logged
 * by ProblemDetailsFilter), "request aborted" (status null, no responseTime) when the client left
 * before the response — and every line logged while it runs (queries too) carries its `requestId`: the
 * client's X-Request-Id when it is sane, else a new UUID (requestIdFor), echoed back.
 * Health probes and metrics scrapes run in the context but are not logged (they would drown the log);
 * that is decided by the matched route, so `/healthz` (a 404) is logged.
 *
 * Two Fastify hooks and nestjs-pino's PinoLogger.runInContext do what pino-http's middleware would,
 * without Nest's middleware layer (@fastify/middie) or pino-http's child loggers and response
 * listeners on every request (their cost: docs/benchmarks/history.md).
 */
export function logRequests(fastify: FastifyInstance, logger: PinoLogger): void {
  fastify.addHook('onRequest', (request, _reply, done) => {
    logger.runInContext(done, { bindings: { requestId: request.id } });
  });
  fastify.addHook('onResponse', (request, reply, done) => {
    if (!UNLOGGED_ROUTES.test(request.routeOptions.url ?? '')) {
      const failed = reply.statusCode >= 500;
      PinoLogger.root[failed ? 'error' : 'info'](
        lineOf(request, reply.raw, reply.elapsedTime),
        failed ? 'request errored' : 'request completed',
      );
    }
    done();
  });
  // The client went away before the response was sent: no onResponse follows.
  fastify.addHook('onRequestAbort', (request, done) => {
    PinoLogger.root.info(lineOf(request, { statusCode: null }), 'request aborted');
    done();
  });
}

/** A request line's fields; `milliseconds`: since the request arrived (none for an aborted one). */
function lineOf(request: FastifyRequest, res: { statusCode: number | null }, milliseconds?: number) {
  const responseTime = milliseconds === undefined ? undefined : Math.round(milliseconds);
  return { requestId: request.id, req: request.raw, res, responseTime, route: request.routeOptions.url };
}

/** Contexts of Nest's own start-up lines: one per module initialized and per route mapped. */
const FRAMEWORK_CHATTER = new Set([
  'NestFactory',
  'InstanceLoader',
  'RoutesResolver',
  'RouterExplorer',
  'NestApplication',
]);

/**
 * `logger` with Nest's start-up chatter demoted to debug (LOG_LEVEL=debug shows it), so the startup
 * log says what a user needs: the database, the migrations applied, where the API and its docs are.
 */
export function withQuietStartup(logger: LoggerService): LoggerService {
  return {
    log: (message: unknown, ...params: unknown[]) =>
      FRAMEWORK_CHATTER.has(params.at(-1) as string)
        ? logger.debug?.(message, ...params)
        : logger.log(message, ...params),
    error: (message: unknown, ...params: unknown[]) => logger.error(message, ...params),
    warn: (message: unknown, ...params: unknown[]) => logger.warn(message, ...params),
    debug: (message: unknown, ...params: unknown[]) => logger.debug?.(message, ...params),
    verbose: (message: unknown, ...params: unknown[]) => logger.verbose?.(message, ...params),
    fatal: (message: unknown, ...params: unknown[]) => logger.fatal?.(message, ...params),
  };
}
