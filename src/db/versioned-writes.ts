import { NotFoundException, PreconditionFailedException } from '@nestjs/common';
import { And, type EntityManager, type EntityTarget, type FindOptionsWhere, In, Not } from 'typeorm';
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity';
import type { Preconditions } from '../http/conditional-requests';

/** The rows a conditional write may touch: `id`, and one of the If-Match versions when there are any. */
interface Versioned {
  id: number;
  version: number;
}

/**
 * `UPDATE … SET … WHERE id = :id [AND version IN (:ifMatch)] [AND version NOT IN (:ifNoneMatch)]` —
 * the preconditions are evaluated by the statement itself, so of two clients holding the same ETag
 * exactly one wins. It also bumps the version (TypeORM's @VersionColumn) and updated_at, and locks
 * the row for the rest of the transaction. No row touched: 404 when it is gone, else 412 (a stale
 * If-Match, or an If-None-Match naming the current version or `*`: RFC 9110 §13.1.2).
 */
export async function updateIfMatch<T extends Versioned>(
  manager: EntityManager,
  entity: EntityTarget<T>,
  id: number,
  values: QueryDeepPartialEntity<T>,
  conditions: Preconditions = {},
): Promise<void> {
  const update = manager
    .createQueryBuilder()
    .update(entity)
    .set({ ...values, updatedAt: () => 'CURRENT_TIMESTAMP' })
    .where('id = :id', { id });
  const { ifMatch, ifNoneMatch } = conditions;
  if (ifMatch) update.andWhere('version IN (:...ifMatch)', { ifMatch: withSentinel(ifMatch) });
  if (ifNoneMatch === '*') update.andWhere('FALSE');
  else if (ifNoneMatch) update.andWhere('version NOT IN (:...ifNoneMatch)', { ifNoneMatch: withSentinel(ifNoneMatch) });
  const { affected } = await update.execute();
  if (!affected) await missingOrStale(manager, entity, id);
}

/** `DELETE … WHERE id = :id` and the same preconditions, with the same 404/412 outcomes. */
export async function deleteIfMatch<T extends Versioned>(
  manager: EntityManager,
  entity: EntityTarget<T>,
  id: number,
  { ifMatch, ifNoneMatch }: Preconditions = {},
): Promise<void> {
  if (ifNoneMatch === '*') return missingOrStale(manager, entity, id);
  const version = [
    ...(ifMatch ? [In(withSentinel(ifMatch))] : []),
    ...(ifNoneMatch ? [Not(In(withSentinel(ifNoneMatch)))] : []),
  ];
  const where = { id, ...(version.length > 0 && { version: version.length === 1 ? version[0] : And(...version) }) };
  const { affected } = await manager.delete(entity, where as FindOptionsWhere<T>);
  if (!affected) await missingOrStale(manager, entity, id);
}

/** -1 is never a version: it keeps `IN (…)` valid when no tag could be parsed, which then matches nothing. */
const withSentinel = (versions: number[]) => [...versions, -1];

async function missingOrStale<T extends Versioned>(
  manager: EntityManager,
  entity: EntityTarget<T>,
  id: number,
): Promise<never> {
  const name = manager.getRepository(entity).metadata.targetName;
  if (await manager.existsBy(entity, { id } as FindOptionsWhere<T>)) {
    throw new PreconditionFailedException(`${name} ${id}: a precondition (If-Match / If-None-Match) failed`);
  }
  throw new NotFoundException(`${name} ${id} not found`);
}
