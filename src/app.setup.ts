import { UnsupportedMediaTypeException } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';
import helmet from 'helmet';
import { setupOpenApi } from './common/openapi';
import { ProblemDetailsFilter } from './common/problem-details.filter';
import { createValidationPipe } from './common/validation';
import type { AppConfig } from './config/app.config';
import { Draining } from './health/draining';

/** Request body limit: far above any valid payload, far below what could hurt the process. */
export const BODY_LIMIT = '100kb';

/** Everything that shapes HTTP behaviour, shared by main.ts and the e2e tests so both run the same app. */
export function configureApp(app: NestExpressApplication, config: AppConfig): NestExpressApplication {
  app.disable('x-powered-by');
  // ETags only where they mean something (a versioned resource, set by the controller); Express still
  // answers a matching If-None-Match with 304.
  app.set('etag', false);
  app.set('trust proxy', config.trustProxyHops);
  app.use(helmet());
  if (config.corsOrigins.length > 0) {
    app.enableCors({
      origin: config.corsOrigins.includes('*') ? '*' : config.corsOrigins,
      exposedHeaders: ['Location', 'Link', 'ETag', 'Retry-After'],
    });
  }
  app.use(closeConnectionsWhileDraining(app.get(Draining)));
  app.use(requireJsonBody);
  app.useBodyParser('json', { limit: BODY_LIMIT, reviver: rejectLoneSurrogates });
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(new ProblemDetailsFilter());
  setupOpenApi(app);
  return app;
}

/**
 * Once shutdown has begun, every response closes its keep-alive connection: busy clients then
 * reconnect (elsewhere) instead of holding this server open, so draining always finishes.
 */
function closeConnectionsWhileDraining(draining: Draining) {
  return (_req: Request, res: Response, next: NextFunction): void => {
    if (draining.active) res.setHeader('Connection', 'close');
    next();
  };
}

/**
 * JSON may escape lone UTF-16 surrogates ("\ud800") that are not text: validators choke on them and
 * PostgreSQL cannot store them. Refusing them while parsing makes such a body a plain 400.
 */
function rejectLoneSurrogates(_key: string, value: unknown): unknown {
  if (typeof value === 'string' && !value.isWellFormed()) throw new SyntaxError('lone surrogate in a string');
  return value;
}

/** A request body must be JSON: anything else is 415, not a silently empty body. */
function requireJsonBody(req: Request, _res: Response, next: NextFunction): void {
  // req.is() is null when there is no body at all, false when the body has another type.
  if (req.is(['application/json', 'application/*+json']) === false) {
    next(
      new UnsupportedMediaTypeException(`Content-Type must be application/json, not ${req.headers['content-type']}`),
    );
    return;
  }
  next();
}
