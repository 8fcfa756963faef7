import type { FastifyInstance, FastifyReply } from 'fastify';
import { hash } from 'node:crypto';

const ROW_VERSION = Symbol('rowVersion');
type VersionedReply = FastifyReply & { [ROW_VERSION]?: number };

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
 * Strong ETag of a representation: the row's version, which If-Match is checked against in SQL, and
 * a hash of the bytes sent, so the tag also changes when included relations (posts, comments) change.
 */
export function entityTag(version: number, payload: string): string {
  return `"${version}-${hash('sha1', payload, 'base64url').slice(0, 16)}"`;
}

/**
 * The one place conditional GETs are answered: a response marked by withETag() gets its ETag, and a GET whose
 * If-None-Match names it gets 304 without a body.
 */
export function entityTags(fastify: FastifyInstance): void {
  fastify.addHook('onSend', (request, reply, payload, done) => {
    const version = (reply as VersionedReply)[ROW_VERSION];
    if (version === undefined || typeof payload !== 'string') return done(null, payload);
    const etag = entityTag(version, payload);
    void reply.header('ETag', etag);
    const ifNoneMatch = request.headers['if-none-match'];
    const matches = ifNoneMatch?.split(',').some((tag) => tag.trim() === etag || tag.trim() === '*');
    if (request.method !== 'GET' || reply.statusCode !== 200 || !matches) return done(null, payload);
    void reply.code(304).removeHeader('content-type').removeHeader('content-length');
    done(null, '');
  });
}

/**
 * The row versions an If-Match header accepts: undefined when there is no condition (absent or `*`),
 * otherwise the versions of the listed strong tags (weak or foreign tags match nothing).
 */
export function ifMatchVersions(header: string | undefined): number[] | undefined {
  if (header === undefined || header.trim() === '*') return undefined;
  return header
    .split(',')
    .map((tag) => /^\s*"(\d{1,10})-[\w-]+"\s*$/.exec(tag)?.[1])
    .filter((version): version is string => version !== undefined)
    .map(Number);
}
