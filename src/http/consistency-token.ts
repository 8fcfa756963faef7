import type { FastifyInstance } from 'fastify';
import type { OpenAPIObject } from '@nestjs/swagger';
import { Logger } from '@nestjs/common';
import { allowReplicaReads } from '../database/reads/read-routing';
import { parseLsn, type ReplicaSet } from '../database/reads/replicas';
import { answerWithProblem } from './problem-details.filter';
import { validationProblem } from './problem';

/** Request and response header carrying a write's WAL position (no `X-` prefix: RFC 6648). */
export const CONSISTENCY_TOKEN = 'Consistency-Token';
const HEADER = CONSISTENCY_TOKEN.toLowerCase();
const SAFE = new Set(['GET', 'HEAD']);
const logger = new Logger('ConsistencyToken');

/**
 * Read-your-writes across requests and instances, when the service runs with read replicas.
 * A successful write answers with `Consistency-Token`: the primary's WAL position after its commit
 * (`pg_current_wal_lsn()`). A GET that sends it back is served by a replica only if that replica has
 * replayed this position, otherwise by the primary: it always sees the write. A GET without it may be
 * served by any healthy replica (eventually consistent). A malformed token is a 400 naming the header.
 */
export function consistencyTokens(fastify: FastifyInstance, replicas: ReplicaSet): void {
  fastify.addHook('preHandler', (request, reply, done) => {
    if (!SAFE.has(request.method)) return done();
    const header = request.headers[HEADER];
    const token = typeof header === 'string' ? parseLsn(header.trim()) : undefined;
    if (header !== undefined && token === undefined) {
      const message = `${CONSISTENCY_TOKEN} must be a token from a previous response, e.g. 0/3000148`;
      return answerWithProblem(request, reply, validationProblem([{ field: CONSISTENCY_TOKEN, messages: [message] }]));
    }
    allowReplicaReads(token, done); // the handler runs inside: done() calls it synchronously
  });

  fastify.addHook('onSend', async (request, reply, payload) => {
    if (SAFE.has(request.method) || reply.statusCode >= 300 || request.method === 'OPTIONS') return payload;
    try {
      reply.header(CONSISTENCY_TOKEN, await replicas.primaryPosition());
    } catch (error) {
      // The write is committed; without a token the client's next read is only eventually consistent.
      logger.warn(`No consistency token for ${request.method} ${request.url}: ${(error as Error).message}`);
    }
    return payload;
  });
}

const TOKEN_DESCRIPTION =
  'Read-your-writes token (the primary’s WAL position after this write’s commit), sent when the service ' +
  'runs with read replicas. Send it back as the `Consistency-Token` request header on a GET to read at least ' +
  'this write; without it reads may come from a replica that is slightly behind.';

/**
 * Documents the token on every operation: a response header on each write's 2xx, an optional request
 * header on each GET. Derived from the routes, so a new endpoint is documented without a decorator.
 */
export function documentConsistencyTokens(document: OpenAPIObject): void {
  for (const operations of Object.values(document.paths)) {
    for (const [method, operation] of Object.entries(operations as Record<string, OperationLike>)) {
      if (method === 'get') {
        operation.parameters = [
          ...(operation.parameters ?? []),
          {
            name: CONSISTENCY_TOKEN,
            in: 'header',
            required: false,
            description:
              'A `Consistency-Token` from a write’s response: the answer reflects at least that write ' +
              '(served by a replica that has replayed it, else by the primary). 400 if malformed.',
            schema: { type: 'string', pattern: '^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$' },
          },
        ];
      } else if (['post', 'patch', 'put', 'delete'].includes(method)) {
        for (const [status, response] of Object.entries(operation.responses ?? {})) {
          if (!status.startsWith('2')) continue;
          response.headers = {
            ...response.headers,
            [CONSISTENCY_TOKEN]: { description: TOKEN_DESCRIPTION, schema: { type: 'string' } },
          };
        }
      }
    }
  }
}

interface OperationLike {
  parameters?: object[];
  responses?: Record<string, { headers?: Record<string, object> }>;
}
