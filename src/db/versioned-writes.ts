import { NotFoundException, PreconditionFailedException } from '@nestjs/common';
import { And, type FindOptionsWhere, In, Not, type Repository } from 'typeorm';
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity';
import type { Preconditions } from '../http/conditional-requests';
import { nowWithMilliseconds } from './sql-dialect';

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
 * If-Match, or an If-None-Match naming the current version or `*`: RFC 9110 §13.1.2). `repository`
 * is the table's, bound to the caller's transaction (see inCurrentTransaction); the feature
 * repositories are the only callers.
 */
export async function updateIfMatch<T extends Versioned>(
  repository: Repository<T>,
  id: number,
  values: QueryDeepPartialEntity<T>,
  conditions: Preconditions = {},
): Promise<void> {
  const update = repository
    .createQueryBuilder()
    .update()
    .set({ ...values, updatedAt: () => nowWithMilliseconds(repository.manager) })
    .where('id = :id', { id });
  const { ifMatch, ifNoneMatch } = conditions;
  if (ifMatch) update.andWhere('version IN (:...ifMatch)', { ifMatch: withSentinel(ifMatch) });
  if (ifNoneMatch === '*') update.andWhere('FALSE');
  else if (ifNoneMatch) update.andWhere('version NOT IN (:...ifNoneMatch)', { ifNoneMatch: withSentinel(ifNoneMatch) });
  const { affected } = await update.execute();
  if (!affected) await missingOrStale(repository, id);
}

/** `DELETE … WHERE id = :id` and the same preconditions, with the same 404/412 outcomes. */
export async function deleteIfMatch<T extends Versioned>(
  repository: Repository<T>,
  id: number,
  { ifMatch, ifNoneMatch }: Preconditions = {},
): Promise<void> {
  if (ifNoneMatch === '*') return missingOrStale(repository, id);
  const version = [
    ...(ifMatch ? [In(withSentinel(ifMatch))] : []),
    ...(ifNoneMatch ? [Not(In(withSentinel(ifNoneMatch)))] : []),
  ];
  const where = { id, ...(version.length > 0 && { version: version.length === 1 ? version[0] : And(...version) }) };
  const { affected } = await repository.delete(where as FindOptionsWhere<T>);
  if (!affected) await missingOrStale(repository, id);
}

/** -1 is never a version: it keeps `IN (…)` valid when no tag could be parsed, which then matches nothing. */
const withSentinel = (versions: number[]) => [...versions, -1];

async function missingOrStale<T extends Versioned>(repository: Repository<T>, id: number): Promise<never> {
  const name = repository.metadata.targetName;
  if (await repository.existsBy({ id } as FindOptionsWhere<T>)) {
    throw new PreconditionFailedException(`${name} ${id}: a precondition (If-Match / If-None-Match) failed`);
  }
  throw new NotFoundException(`${name} ${id} not found`);
}
