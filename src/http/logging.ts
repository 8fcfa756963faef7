import { type LoggerService, RequestMethod } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Params } from 'nestjs-pino';
import type { AppConfig } from '../config/app.config';
import { traceContextForLogs } from '../tracing/request-tracing';

const REQUEST_ID = /^[\w.:-]{1,128}$/;

/** The client's X-Request-Id when it is sane, else a new UUID. configureApp echoes it back. */
export function requestIdFor(req: IncomingMessage): string {
  const fromClient = req.headers['x-request-id'];
  return typeof fromClient === 'string' && REQUEST_ID.test(fromClient) ? fromClient : randomUUID();
}

/**
 * Structured logs (nestjs-pino): each request logged once when it completes, with method, route,
 * status, latency and a request id — the client's X-Request-Id when it is sane, else a new UUID —
 * which is echoed back and bound to every log line written while the request runs (queries too).
 * Bodies and credentials are never logged.
 */
export function loggerParams(config: AppConfig): Params {
  return {
    // LOG_LEVEL=silent: no per-request logger at all (pino-http's child logger, its finish listener and
    // the request context cost about a sixth of a short read's CPU even when nothing is written).
    forRoutes: config.log.level === 'silent' ? [] : [{ path: '*splat', method: RequestMethod.ALL }],
    pinoHttp: {
      level: config.log.level,
      transport: config.log.format === 'pretty' ? { target: 'pino-pretty', options: { singleLine: true } } : undefined,
      genReqId: requestIdFor, // Fastify assigns it first (createApp); this is the fallback
      customAttributeKeys: { reqId: 'requestId' },
      autoLogging: { ignore: (req) => req.url?.startsWith('/health') ?? false },
      quietReqLogger: true, // lines written during a request carry just its id, not the whole request
      serializers: {
        req: (req: { method: string; url: string }) => ({ method: req.method, url: req.url }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      // The matched route pattern (`/users/:id`), so logs aggregate by endpoint.
      customSuccessObject: (req, _res, value: object) => ({
        ...value,
        route: (req as { routePattern?: string }).routePattern,
      }),
      customErrorObject: (req, _res, _error, value: object) => ({
        ...value,
        route: (req as { routePattern?: string }).routePattern,
      }),
      customLogLevel: (_req, res, error) => (error || res.statusCode >= 500 ? 'error' : 'info'),
      redact: ['req.headers.authorization', 'req.headers.cookie'],
      // With tracing on, every line names the trace and span it was written in (none: no cost).
      mixin: config.tracing.enabled ? traceContextForLogs : undefined,
    },
  };
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
