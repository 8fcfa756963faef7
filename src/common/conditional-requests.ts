import { NotFoundException, PreconditionFailedException } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { createHash } from 'node:crypto';

/**
 * Strong ETag of a representation: the row's version, which If-Match is checked against in SQL, and
 * a hash of the body, so the tag also changes when included relations (posts, comments) change.
 * Express answers a matching If-None-Match with 304 by itself.
 */
export function entityTag(version: number, body: unknown): string {
  const hash = createHash('sha1').update(JSON.stringify(body)).digest('base64url').slice(0, 16);
  return `"${version}-${hash}"`;
}

/** Sets the ETag for `body` and returns it: `return tagged(res, user.version, UserResponse.from(user))`. */
export function tagged<T>(res: FastifyReply, version: number, body: T): T {
  res.header('ETag', entityTag(version, body));
  return body;
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

/** A conditional write touched no row: 404 when the row is gone, 412 when If-Match was stale. */
export async function missingOrStale(resource: string, exists: Promise<boolean>): Promise<never> {
  if (await exists) throw new PreconditionFailedException(`${resource} has changed since it was read (If-Match)`);
  throw new NotFoundException(`${resource} not found`);
}
