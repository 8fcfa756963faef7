import {
  applyDecorators,
  type CallHandler,
  type ExecutionContext,
  HttpStatus,
  Injectable,
  SetMetadata,
  type NestInterceptor,
  UseInterceptors,
} from '@nestjs/common';
import { ApiExtension, ApiHeader, type OpenAPIObject } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import type { Observable } from 'rxjs';
import { problem, ProblemException } from '../http/problem';
import { IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED, MAX_KEY_LENGTH } from './idempotency-key';
import { IdempotencyInterceptor, LOOK_UP_FIRST } from './idempotency.interceptor';

/** How IdempotencyInterceptor treats one route. */
export interface IdempotentOptions {
  /**
   * Read the key's stored row before the handler runs (one statement more per keyed request), so a
   * retry of a finished request replays without running the handler again. For handlers whose
   * rerun would have effects the rollback does not undo — a password check counted by the login
   * throttle, a resend counted by the mail throttle (Redis) — or would cost much (password hashing).
   * Without it a retry's handler runs again and its write is rolled back (ADR 0014).
   */
  lookUpFirst?: boolean;
}

/**
 * Marks a write (POST, PATCH, DELETE) as taking an `Idempotency-Key` header: IdempotencyInterceptor
 * runs around it, and the OpenAPI document lists the header (documentIdempotencyKeys adds the 409,
 * 422 and 429 answers and the replay header, with the key lifetime in force).
 */
export const Idempotent = ({ lookUpFirst = false }: IdempotentOptions = {}) =>
  applyDecorators(
    SetMetadata(LOOK_UP_FIRST, lookUpFirst),
    UseInterceptors(IdempotencyInterceptor),
    ApiHeader({
      name: IDEMPOTENCY_KEY,
      required: false,
      description:
        'Makes this write safe to retry (draft-ietf-httpapi-idempotency-key-header-07): a unique value per ' +
        `operation, e.g. a UUID, as a quoted string of 1-${MAX_KEY_LENGTH} printable ASCII characters ` +
        '(RFC 8941 sf-string): `"8e03978e-40d5-43e8-bc93-6894a57f9324"`. A retry with the same key and the same ' +
        `request gets the first response again, byte for byte, marked \`${IDEMPOTENT_REPLAYED}: true\`, and changes ` +
        'nothing; see the API description for how long keys are kept.',
      schema: { type: 'string', minLength: 3, maxLength: 2 * MAX_KEY_LENGTH + 2, pattern: '^ *".*" *$' },
    }),
  );

/** The OpenAPI extension NotIdempotent() puts on an operation: why it takes no key. */
const UNSUPPORTED = 'x-idempotency-key-unsupported';

/**
 * Answers 400 problem+json (type `/problems/idempotency-key-unsupported`, `errors` naming the header)
 * to a request carrying an Idempotency-Key on a write that does not support one (NotIdempotent()),
 * before the handler runs: ignoring the header would let the client believe its retry is safe when it
 * is not (the draft lets a resource not support keys, §2; it does not say how to refuse one).
 */
@Injectable()
export class RefuseIdempotencyKey implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    if (request.headers['idempotency-key'] === undefined) return next.handle();
    const detail = `${request.method} ${request.routeOptions.url ?? request.url} does not support ${IDEMPOTENCY_KEY} (see docs/idempotency.md); send it without the header`;
    throw new ProblemException(HttpStatus.BAD_REQUEST, detail, {
      type: '/problems/idempotency-key-unsupported',
      errors: [{ field: IDEMPOTENCY_KEY, messages: [detail] }],
    });
  }
}

/**
 * Marks a write that does not take an `Idempotency-Key`, for `reason` (a sentence, shown in the
 * OpenAPI document): a request carrying one gets 400 (RefuseIdempotencyKey), and documentIdempotencyKeys
 * adds that to the operation's 400 answer.
 */
export const NotIdempotent = (reason: string) =>
  applyDecorators(UseInterceptors(RefuseIdempotencyKey), ApiExtension(UNSUPPORTED, reason));

const PROBLEM_REF = { $ref: '#/components/schemas/ProblemDetailsSchema' };

const KEY_PROBLEMS = {
  409: {
    description: `A request with this ${IDEMPOTENCY_KEY} is still being processed; retry after \`Retry-After\` seconds`,
    example: problem(409, 'A request with this Idempotency-Key is still being processed; retry after Retry-After', {
      type: '/problems/idempotency-key-in-use',
    }),
    retryAfter: true,
  },
  422: {
    description: `This ${IDEMPOTENCY_KEY} was already used for a different request (method, path, body or preconditions)`,
    example: problem(422, 'This Idempotency-Key was already used for a different request; use a new key', {
      type: '/problems/idempotency-key-reused',
    }),
    retryAfter: false,
  },
  429: {
    description: `The caller stored too many ${IDEMPOTENCY_KEY}s within the key lifetime (IDEMPOTENCY_MAX_KEYS_PER_CALLER)`,
    example: problem(429, 'Too many new Idempotency-Keys; retry later, when older ones have expired', {
      type: '/problems/idempotency-key-limit',
    }),
    retryAfter: true,
  },
} as const;

interface OperationLike {
  parameters?: { name?: string; in?: string }[];
  [UNSUPPORTED]?: string;
  responses?: Record<string, ResponseLike>;
}
interface ResponseLike {
  description?: string;
  headers?: Record<string, object>;
  content?: Record<string, { schema?: object; example?: unknown }>;
}

/**
 * On every operation taking the header: its 409, 422 and 429 answers (merged into the ones the
 * operation already documents: the description extended, the example kept), `Idempotent-Replayed` on
 * its 2xx; and the key lifetime (`ttlSeconds`, IDEMPOTENCY_KEY_TTL_SECONDS) in the API description.
 */
export function documentIdempotencyKeys(document: OpenAPIObject, ttlSeconds: number): void {
  let any = false;
  for (const operations of Object.values(document.paths)) {
    for (const operation of Object.values(operations as Record<string, OperationLike>)) {
      const unsupported = operation[UNSUPPORTED];
      const refused = operation.responses?.['400'];
      if (unsupported !== undefined && refused) {
        refused.description = `${refused.description ?? ''}; or: an ${IDEMPOTENCY_KEY} was sent, which this operation does not support (${unsupported})`;
      }
      const takesKey = operation.parameters?.some((p) => p.in === 'header' && p.name === IDEMPOTENCY_KEY);
      if (!takesKey || !operation.responses) continue;
      any = true;
      for (const [status, documented] of Object.entries(operation.responses)) {
        if (!status.startsWith('2')) continue;
        documented.headers = {
          ...documented.headers,
          [IDEMPOTENT_REPLAYED]: {
            description: `\`true\` when this is the stored response to an earlier request with the same ${IDEMPOTENCY_KEY}`,
            schema: { type: 'string', enum: ['true'] },
          },
        };
      }
      for (const [status, added] of Object.entries(KEY_PROBLEMS)) {
        const existing = operation.responses[status];
        operation.responses[status] = {
          ...existing,
          description: existing?.description ? `${existing.description}; or: ${added.description}` : added.description,
          ...(added.retryAfter && {
            headers: {
              ...existing?.headers,
              'Retry-After': { description: 'Seconds to wait', schema: { type: 'integer' } },
            },
          }),
          // The operation's own example stays (one per status); a status it did not document gets the key's.
          content: existing?.content ?? { 'application/problem+json': { schema: PROBLEM_REF, example: added.example } },
        };
      }
    }
  }
  if (any) {
    const hours = ttlSeconds % 3600 === 0 ? `${ttlSeconds / 3600} h` : `${ttlSeconds} s`;
    document.info.description =
      `${document.info.description ?? ''} Writes take an optional \`${IDEMPOTENCY_KEY}\` header ` +
      `(draft-ietf-httpapi-idempotency-key-header-07): keys and their stored responses are kept for ${hours}, ` +
      'per signed-in user (per request fingerprint for anonymous requests). The few writes that do not support ' +
      'it (their 400 answer says why) refuse a request carrying it with 400.';
  }
}
