import type { NestExpressApplication } from '@nestjs/platform-express';
import { ProblemDetailsFilter } from './common/problem-details.filter';
import { createValidationPipe } from './common/validation';

/** Request body limit: far above any valid payload, far below what could hurt the process. */
export const BODY_LIMIT = '100kb';

/** Everything that shapes HTTP behaviour, shared by main.ts and the e2e tests so both run the same app. */
export function configureApp(app: NestExpressApplication): NestExpressApplication {
  app.disable('x-powered-by');
  app.useBodyParser('json', { limit: BODY_LIMIT });
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(new ProblemDetailsFilter());
  return app;
}
