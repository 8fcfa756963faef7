import { NotFoundException, PreconditionFailedException } from '@nestjs/common';
import { type EntityManager, type EntityTarget, type FindOptionsWhere, In } from 'typeorm';
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity';

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
