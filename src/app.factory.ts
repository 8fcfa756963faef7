import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { Logger } from 'nestjs-pino';
import { AppModule } from './app.module';
import { BODY_LIMIT_BYTES, configureApp } from './app.setup';
import { requestIdFor } from './common/logging';
import { answerClientError, ProblemDetailsFilter } from './common/problem-details.filter';
import type { AppConfig } from './config/app.config';

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
    trustProxy: (_address: string, hop: number) => hop < config.trustProxyHops,
  });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config), adapter, {
    bodyParser: false, // configureApp installs the JSON parser, with its limit and checks
    // A failed start (bad database URL, …) is reported by main.ts in one line: no stack dump from
    // Nest, no process.abort(). The logger (pino, see common/logging.ts) is attached once built.
    abortOnError: false,
    logger: false,
  });
  app.useLogger(app.get(Logger));
  return configureApp(app, config, problems);
}
