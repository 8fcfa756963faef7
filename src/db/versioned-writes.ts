import { NotFoundException, PreconditionFailedException } from '@nestjs/common';
import { type FindOptionsWhere, In, type Repository } from 'typeorm';
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
 * transaction. No row touched: 404 when it is gone, 412 when If-Match was stale. `repository` is
 * the table's, bound to the caller's transaction (see inCurrentTransaction); the feature
 * repositories are the only callers.
 */
export async function updateIfMatch<T extends Versioned>(
  repository: Repository<T>,
  id: number,
  values: QueryDeepPartialEntity<T>,
  ifMatch: number[] | undefined,
): Promise<void> {
  const update = repository
    .createQueryBuilder()
    .update()
    .set({ ...values, updatedAt: () => 'CURRENT_TIMESTAMP' })
    .where('id = :id', { id });
  if (ifMatch) update.andWhere('version IN (:...versions)', { versions: acceptedVersions(ifMatch) });
  const { affected } = await update.execute();
  if (!affected) await missingOrStale(repository, id);
}

/** `DELETE … WHERE id = :id [AND version IN (:ifMatch)]`, with the same 404/412 outcomes. */
export async function deleteIfMatch<T extends Versioned>(
  repository: Repository<T>,
  id: number,
  ifMatch: number[] | undefined,
): Promise<void> {
  const where = { id, ...(ifMatch && { version: In(acceptedVersions(ifMatch)) }) } as FindOptionsWhere<T>;
  const { affected } = await repository.delete(where);
  if (!affected) await missingOrStale(repository, id);
}

/** -1 is never a version: it keeps `IN (…)` valid when no tag could be parsed, which then matches nothing. */
const acceptedVersions = (ifMatch: number[]) => [...ifMatch, -1];

async function missingOrStale<T extends Versioned>(repository: Repository<T>, id: number): Promise<never> {
  const name = repository.metadata.targetName;
  if (await repository.existsBy({ id } as FindOptionsWhere<T>)) {
    throw new PreconditionFailedException(`${name} ${id} has changed since it was read (If-Match)`);
  }
  throw new NotFoundException(`${name} ${id} not found`);
}
