import { NotFoundException, PreconditionFailedException } from '@nestjs/common';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { type EntityManager, type EntityTarget, type FindOptionsWhere, In } from 'typeorm';
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity';
import { hash } from 'node:crypto';

const ROW_VERSION = Symbol('rowVersion');
type VersionedReply = FastifyReply & { [ROW_VERSION]?: number };

/**
 * Marks the response as the representation of a row at `version`, and returns the body:
 * `return tagged(res, user.version, user)`. The ETag is added when the body has
 * been serialized (see `entityTags`), so the body is turned into JSON only once.
 */
export function tagged<T>(res: FastifyReply, version: number, body: T): T {
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
 * The one place conditional GETs are answered: a tagged response gets its ETag, and a GET whose
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

/** The rows a conditional write may touch: `id`, and one of the If-Match versions when there are any. */
interface Versioned {
  id: number;
  version: number;
}

/**
 * `UPDATE … SET … WHERE id = :id [AND version IN (:ifMatch)]` — the If-Match check happens in the
 * statement itself, so of two clients holding the same ETag exactly one wins. It also bumps the
 * version (TypeORM's @VersionColumn) and updated_at, and locks the row for the rest of the
 * transaction. No row touched: 404 when it is gone, 412 when If-Match was stale.
 */
export async function updateIfMatch<T extends Versioned>(
  manager: EntityManager,
  entity: EntityTarget<T>,
  id: number,
  values: QueryDeepPartialEntity<T>,
  ifMatch: number[] | undefined,
): Promise<void> {
  const update = manager
    .createQueryBuilder()
    .update(entity)
    .set({ ...values, updatedAt: () => 'CURRENT_TIMESTAMP' })
    .where('id = :id', { id });
  if (ifMatch) update.andWhere('version IN (:...versions)', { versions: acceptedVersions(ifMatch) });
  const { affected } = await update.execute();
  if (!affected) await missingOrStale(manager, entity, id);
}

/** `DELETE … WHERE id = :id [AND version IN (:ifMatch)]`, with the same 404/412 outcomes. */
export async function deleteIfMatch<T extends Versioned>(
  manager: EntityManager,
  entity: EntityTarget<T>,
  id: number,
  ifMatch: number[] | undefined,
): Promise<void> {
  const where = { id, ...(ifMatch && { version: In(acceptedVersions(ifMatch)) }) } as FindOptionsWhere<T>;
  const { affected } = await manager.delete(entity, where);
  if (!affected) await missingOrStale(manager, entity, id);
}

/** -1 is never a version: it keeps `IN (…)` valid when no tag could be parsed, which then matches nothing. */
const acceptedVersions = (ifMatch: number[]) => [...ifMatch, -1];

async function missingOrStale<T extends Versioned>(
  manager: EntityManager,
  entity: EntityTarget<T>,
  id: number,
): Promise<never> {
  const name = manager.getRepository(entity).metadata.targetName;
  if (await manager.existsBy(entity, { id } as FindOptionsWhere<T>)) {
    throw new PreconditionFailedException(`${name} ${id} has changed since it was read (If-Match)`);
  }
  throw new NotFoundException(`${name} ${id} not found`);
}
