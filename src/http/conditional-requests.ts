import { createParamDecorator, type ExecutionContext, HttpStatus, PreconditionFailedException } from '@nestjs/common';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hash } from 'node:crypto';
import type { Preconditions } from '../database/transactions/versioned-writes';
import { ProblemException } from './problem';
import { answerWithProblem } from './problem-details.filter';

const ROW_VERSION = Symbol('rowVersion');
type VersionedReply = FastifyReply & { [ROW_VERSION]?: number };

/** Largest row version (PostgreSQL integer): a tag naming a larger one matches no row. */
const MAX_VERSION = 2_147_483_647;

/**
 * Marks the response as the representation of a row at `version`, and returns the body:
 * `return withETag(res, user.version, user)`. The ETag is added when the body has
 * been serialized (see `entityTags`), so the body is turned into JSON only once.
 */
export function withETag<T>(res: FastifyReply, version: number, body: T): T {
  (res as VersionedReply)[ROW_VERSION] = version;
  return body;
}

/**
 * The ETag withETag() asked for, for a body serialized before sending (idempotency/ stores it with the
 * response): computed from `payload` as entityTags would, set on the reply, and the mark taken off so
 * entityTags does not hash the payload again. Undefined when the response is not a tagged row.
 */
export function takeEntityTag(res: FastifyReply, payload: string): string | undefined {
  const version = (res as VersionedReply)[ROW_VERSION];
  if (version === undefined) return undefined;
  (res as VersionedReply)[ROW_VERSION] = undefined;
  const tag = `"${entityTagOpaque(version, payload)}"`;
  void res.header('ETag', tag);
  return tag;
}

/**
 * Strong ETag of a representation, without its quotes (the opaque-tag that If-Match / If-None-Match
 * members are compared with): the row's version, which If-Match is checked against in SQL, and a
 * hash of the bytes sent, so the tag also changes when included relations (posts, comments) change.
 */
function entityTagOpaque(version: number, payload: string): string {
  return `${version}-${hash('sha1', payload, 'base64url').slice(0, 16)}`;
}

/** One member of an If-Match / If-None-Match list (RFC 9110 §8.8.3): `"opaque"` or `W/"opaque"`. */
interface EntityTag {
  weak: boolean;
  opaque: string;
}

/**
 * The entity tags of an If-Match / If-None-Match field: `'*'`, or the list's members. Members that are
 * not entity-tags (RFC 9110 §8.8.3: `[W/]"` visible ASCII except `"` `"`) match nothing, so garbage
 * never satisfies If-Match and never vetoes through If-None-Match.
 */
export function parseEntityTags(field: string): '*' | EntityTag[] {
  if (field.trim() === '*') return '*';
  const tags: EntityTag[] = [];
  for (const match of field.matchAll(/(?:^|,)\s*(W\/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*(?=,|$)/g)) {
    tags.push({ weak: match[1] !== undefined, opaque: match[2] });
  }
  return tags;
}

/** What If-Match / If-None-Match ask of a write (PATCH, DELETE), as the database layer evaluates it. */
export type { Preconditions };

/** Reads Preconditions from the request headers (RFC 9110 §13.1.1, §13.1.2). */
export function preconditionsOf(headers: FastifyRequest['headers']): Preconditions {
  const ifMatch = headers['if-match'];
  const ifNoneMatch = headers['if-none-match'];
  const matchTags = ifMatch === undefined ? '*' : parseEntityTags(ifMatch);
  const noneMatchTags = ifNoneMatch === undefined ? undefined : parseEntityTags(ifNoneMatch);
  return {
    ...(matchTags !== '*' && { ifMatch: versionsOf(matchTags.filter((tag) => !tag.weak)) }),
    ...(noneMatchTags && { ifNoneMatch: noneMatchTags === '*' ? '*' : versionsOf(noneMatchTags) }),
  };
}

/**
 * The row versions our tags (`"<version>-<hash>"`) name; other tags name none. The version is spelt as
 * we write it (decimal, no leading zero): `"01-…"` is no tag we issued, so it matches nothing (§8.8.3.2).
 */
function versionsOf(tags: EntityTag[]): number[] {
  return tags
    .map((tag) => /^([1-9]\d{0,9})-[\w-]+$/.exec(tag.opaque)?.[1])
    .filter((version): version is string => version !== undefined)
    .map(Number)
    .filter((version) => version <= MAX_VERSION);
}

/** `@Conditions() conditions: Preconditions` — the request's If-Match / If-None-Match, parsed. */
export const Conditions = createParamDecorator((_data: unknown, ctx: ExecutionContext) =>
  preconditionsOf(ctx.switchToHttp().getRequest<FastifyRequest>().headers),
);

/** Whether the request sent If-Match (other than `*`) or If-None-Match: whether there is anything to evaluate. */
export function hasPreconditions({ ifMatch, ifNoneMatch }: Preconditions): boolean {
  return ifMatch !== undefined || ifNoneMatch !== undefined;
}

/**
 * For a write whose target has no entity tag (a collection POSTs append to, an immutable comment):
 * no tag can match it, so a tag list in If-Match is false, and `If-None-Match: *` is false because
 * the target exists (RFC 9110 §13.1.1, §13.1.2). Call it once the target is known to exist (a 404
 * wins) and before the write's own effect can fail, so a 412 wins over its 409/422 (§13.2.1:
 * preconditions come before the request content is processed) and a 412 stores nothing.
 * @throws PreconditionFailedException (412)
 */
export function requireUntaggedPreconditions({ ifMatch, ifNoneMatch }: Preconditions): void {
  if (ifMatch !== undefined) throw new PreconditionFailedException('If-Match: this resource has no entity tag');
  if (ifNoneMatch === '*') throw new PreconditionFailedException('If-None-Match: *: the resource exists');
}

/**
 * The one place conditional GET/HEAD are answered (RFC 9110 §13.2.2), on every successful JSON
 * response once serialized: a response marked by withETag() gets its ETag; then, in order,
 * 1. If-Match (strong comparison; `*` = the representation exists) false → 412;
 * 2. If-None-Match (weak comparison, §8.8.3.2, so `W/"…"` from a compressing proxy matches;
 *    `*` = exists) false → 304 without a body or Content-Length, with the 200's other headers.
 * If-Modified-Since and If-Unmodified-Since are ignored: no representation has a Last-Modified
 * (§13.1.3, §13.1.4), since what it includes (posts, comments) changes without its row changing.
 */
export function entityTags(fastify: FastifyInstance): void {
  fastify.addHook('onSend', (request, reply, payload, done) => {
    const version = (reply as VersionedReply)[ROW_VERSION];
    if (typeof payload !== 'string' || reply.statusCode < 200 || reply.statusCode > 299) return done(null, payload);
    const currentOpaque = version === undefined ? undefined : entityTagOpaque(version, payload);
    if (currentOpaque !== undefined) void reply.header('ETag', `"${currentOpaque}"`);
    if (request.method !== 'GET' && request.method !== 'HEAD') return done(null, payload);

    const ifMatch = request.headers['if-match'];
    if (ifMatch !== undefined) {
      const tags = parseEntityTags(ifMatch);
      const holds = tags === '*' || tags.some((tag) => !tag.weak && tag.opaque === currentOpaque);
      if (!holds) {
        const failed = new ProblemException(HttpStatus.PRECONDITION_FAILED, 'If-Match did not match the current ETag');
        return done(null, answerWithProblem(request, reply, failed, { replacePayload: true }));
      }
    }
    const ifNoneMatch = request.headers['if-none-match'];
    if (ifNoneMatch !== undefined) {
      const tags = parseEntityTags(ifNoneMatch);
      const matches = tags === '*' || tags.some((tag) => tag.opaque === currentOpaque);
      if (matches) {
        // The 200's other headers (ETag, Vary, Cache-Control) stay, as §15.4.5 asks. Content-Length
        // (§8.6): none after GET (a null payload is the one Fastify sends without writing `0`); the
        // 200's after HEAD, whose own hook, next, measures the payload and then sends no body.
        void reply.code(304).removeHeader('content-type').removeHeader('content-length');
        return done(null, request.method === 'HEAD' ? payload : null);
      }
    }
    done(null, payload);
  });
}
