import { applyDecorators, type INestApplication } from '@nestjs/common';
import {
  ApiExtraModels,
  ApiHeader,
  ApiResponse,
  getSchemaPath,
  SwaggerModule,
  type OpenAPIObject,
} from '@nestjs/swagger';
import type { FastifyInstance } from 'fastify';
import { problem, type ProblemDetails } from './problem';
import { FieldErrorSchema, ProblemDetailsSchema } from './problem.schema';
import { RATE_LIMITED_DETAIL } from './rate-limit.module';

/** Each documented error status: what it means, and an example body as the API sends it for that status. */
const PROBLEMS: Record<number, { description: string; example: ProblemDetails }> = {
  400: {
    description: 'Invalid input: the problem lists each offending field in `errors`',
    example: problem(400, 'Invalid request: email', {
      type: '/problems/validation',
      errors: [{ field: 'email', messages: ['email must be an email'] }],
    }),
  },
  401: {
    description:
      'No valid bearer access token: missing, malformed, forged, expired or revoked (see `WWW-Authenticate`)',
    example: problem(401, 'The access token has expired'),
  },
  403: {
    description: 'Signed in, but not allowed: the resource belongs to someone else',
    example: problem(403, 'Only the author of post 42 or an admin may change it'),
  },
  404: {
    description: 'The resource (or one it refers to) does not exist',
    example: problem(404, 'User 42 not found'),
  },
  409: {
    description: 'Conflicts with existing data (e.g. a taken email) or a concurrent request',
    example: problem(409, 'A user with this email already exists', {
      errors: [{ field: 'email', messages: ['A user with this email already exists'] }],
    }),
  },
  412: {
    description:
      'A precondition failed: If-Match no longer current (someone changed it since you read it), or If-None-Match matched',
    example: problem(412, 'User 42 has changed since it was read (If-Match)'),
  },
  413: {
    description: 'The request body is larger than 100 kB',
    example: problem(413, 'The request body is too large'),
  },
  415: {
    description: 'The request body is not JSON',
    example: problem(415, 'The request body must be JSON (Content-Type: application/json)'),
  },
  422: {
    description: 'A referenced resource (e.g. a comment author) does not exist',
    example: problem(422, 'The comment author does not exist (id 42)', {
      errors: [{ field: 'authorId', messages: ['The comment author does not exist (id 42)'] }],
    }),
  },
  429: {
    description: 'Rate limit exceeded; retry after `Retry-After` seconds',
    example: problem(429, RATE_LIMITED_DETAIL),
  },
  503: {
    description: 'The database is unavailable or busy; retry after `Retry-After` seconds',
    example: problem(503, 'The database is unavailable or busy; retry shortly'),
  },
};

/** The name of the bearer security scheme in the document (Swagger UI's "Authorize" button fills it). */
export const BEARER_SCHEME = 'bearer';

/** Documents the problem+json error responses an operation can answer with, each with an example of its own status. */
export function ApiProblems(...statuses: number[]) {
  const common = [400, 429, 503].filter((status) => !statuses.includes(status));
  return applyDecorators(
    ApiExtraModels(ProblemDetailsSchema, FieldErrorSchema),
    ...[...statuses, ...common].map((status) =>
      ApiResponse({
        status,
        description: PROBLEMS[status]?.description ?? 'Error',
        content: {
          'application/problem+json': {
            schema: { $ref: getSchemaPath(ProblemDetailsSchema) },
            example: PROBLEMS[status]?.example ?? problem(status, 'Error'),
          },
        },
        ...([429, 503].includes(status) && {
          headers: { 'Retry-After': { description: 'Seconds to wait', schema: { type: 'integer' } } },
        }),
        ...(status === 401 && {
          headers: {
            'WWW-Authenticate': {
              description: 'RFC 6750 §3 challenge, e.g. `Bearer realm="api", error="invalid_token"`',
              schema: { type: 'string' },
            },
          },
        }),
      }),
    ),
  );
}

/** `If-Match` / `If-None-Match` on a conditional write (RFC 9110 §13.1.1, §13.1.2). */
export const ApiPreconditions = () =>
  applyDecorators(
    ApiHeader({
      name: 'If-Match',
      required: false,
      description: 'ETags from previous responses, or `*`: the write only happens if one is still current (else 412)',
    }),
    ApiHeader({
      name: 'If-None-Match',
      required: false,
      description: 'ETags, or `*`: the write only happens if none is current (else 412); `*` always fails here',
    }),
  );

export const ETAG_HEADER = {
  ETag: { description: 'Strong entity tag of this representation', schema: { type: 'string' } },
};
export const LINK_HEADER = {
  Link: { description: 'RFC 8288 link to the next page (`rel="next"`), when there is one', schema: { type: 'string' } },
};
export const LOCATION_HEADER = {
  Location: { description: 'Path of the created resource', schema: { type: 'string' } },
};

/** @nestjs/swagger emits 3.0-style `nullable: true`; 3.1 (JSON Schema 2020-12) spells it as a type union. */
export function toOpenApi31<T>(node: T): T {
  if (Array.isArray(node)) return node.map((item) => toOpenApi31(item)) as T;
  if (!node || typeof node !== 'object') return node;
  const { nullable, ...rest } = node as Record<string, unknown>;
  const converted = Object.fromEntries(Object.entries(rest).map(([key, value]) => [key, toOpenApi31(value)]));
  if (nullable !== true) return converted as T;
  if (typeof converted.type === 'string') return { ...converted, type: [converted.type, 'null'] } as T;
  if (converted.$ref || converted.allOf) return { oneOf: [{ ...converted }, { type: 'null' }] } as T;
  return converted as T;
}

/**
 * Serves Swagger UI at /docs (and /docs/) and the document at /docs/openapi.json. @nestjs/swagger also
 * answers /docs/index.html, with the page meant for /docs: its relative asset URLs then miss
 * (/docs/docs/swagger-ui.css), so that address is sent to /docs/ instead.
 */
export function setupOpenApi(app: INestApplication, document: OpenAPIObject): void {
  const fastify = app.getHttpAdapter().getInstance() as FastifyInstance;
  const index = '/docs/index.html';
  fastify.addHook('onRequest', (request, reply, done) => {
    const { url } = request; // every request passes here: no allocation unless it is the index
    if (!url.startsWith(index) || (url.length > index.length && url[index.length] !== '?')) return done();
    void reply.redirect('/docs/', 301);
  });
  SwaggerModule.setup('docs', app, document, {
    swaggerOptions: { persistAuthorization: true }, // "Authorize" once, and keep the token across reloads
    jsonDocumentUrl: 'docs/openapi.json',
    yamlDocumentUrl: 'docs/openapi.yaml',
  });
}
