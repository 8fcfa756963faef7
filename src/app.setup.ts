import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { Logger } from 'nestjs-pino';
import { AppModule } from './app.module';
import type { AppConfig } from './config/app.config';
import { requestIdFor, withQuietStartup } from './http/logging';
import { answerClientError, ProblemDetailsFilter } from './http/problem-details.filter';
import { MAX_PATH_PARAM_LENGTH, pathProblem } from './http/path-params';
import { parseQueryString } from './http/query-string';
import { installRequestPipeline } from './request-pipeline';

/** Builds the configured application, not yet listening. main.ts and the e2e tests both use it. */
export async function createApp(config: AppConfig): Promise<NestFastifyApplication> {
  // Fastify rather than Express: ADR 0001.
  const problems = new ProblemDetailsFilter();
  const adapter = new FastifyAdapter({
    genReqId: requestIdFor,
    // While closing, a request already on an open connection is still served (the pool closes only
    // after HTTP has drained) and its response closes the connection, instead of a non-problem 503.
    return503OnClosing: false,
    requestIdHeader: false,
    clientErrorHandler: answerClientError,
    // Malformed URLs and over-long path parameters fail before routing: still problem+json, naming
    // the path parameter (path-params.ts).
    frameworkErrors: (error: FastifyError, request: FastifyRequest, reply: FastifyReply) =>
      problems.render(pathProblem(adapter.getInstance(), error, request) ?? error, request, reply),
    bodyLimit: BODY_LIMIT_BYTES,
    // Fastify's parser, plus a record of malformed names and values for the pipeline's 400 (query-string.ts).
    routerOptions: { querystringParser: parseQueryString, maxParamLength: MAX_PATH_PARAM_LENGTH },
    ...httpTimeouts(config.http),
    trustProxy: (_address: string, hop: number) => hop < config.trustProxyHops,
  });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config), adapter, {
    bodyParser: false, // installRequestPipeline installs the JSON parser, with its limit and checks
    // A failed start (bad database URL, …) is reported by main.ts in one line: no stack dump from
    // Nest, no process.abort(). Lines logged while building (migrations applied, routes) wait for the
    // logger (pino, see http/logging.ts) and come out in its format; a failed start drops them.
    abortOnError: false,
    bufferLogs: true,
    autoFlushLogs: false,
  });
  app.useLogger(withQuietStartup(app.get(Logger)));
  app.flushLogs();
  await installRequestPipeline(app, config, problems);
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
      // Answered as problem+json by the pipeline instead of Node's empty 400 (request-pipeline.ts).
      requireHostHeader: false,
      headersTimeout: http.headersTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(shortest / 10))),
    },
  };
}

/** Request body limit: far above any valid payload, far below what could hurt the process. */
export const BODY_LIMIT_BYTES = 100 * 1024;
