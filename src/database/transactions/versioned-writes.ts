import type { Driver, FindOptionsWhere, ObjectLiteral, Repository } from 'typeorm';
import { nowWithMilliseconds } from '../dialects/sql-dialect';
import { NotFoundError, PreconditionFailedError } from '../errors/persistence-errors';

/**
 * What a conditional write asks of the row, in terms of row versions, so the UPDATE/DELETE statement
 * evaluates it itself. src/http/conditional-requests.ts reads it from If-Match / If-None-Match.
 */
export interface Preconditions {
  /** If-Match, strong comparison: the versions its strong tags name; undefined when absent or `*`. */
  ifMatch?: number[];
  /** If-None-Match, weak comparison: the versions its tags name, `'*'` for any; undefined when absent. */
  ifNoneMatch?: number[] | '*';
}

/** The rows a conditional write may touch: `id`, and one of the If-Match versions when there are any. */
interface Versioned {
  id: number;
  version: number;
}

/**
 * `UPDATE t SET <values>, updated_at = now(), version = version + 1 WHERE id = $n [AND version IN (…)]
 * [AND version NOT IN (…)]` — the preconditions are evaluated by the statement itself, so of two
 * clients holding the same ETag exactly one wins. It bumps the version (@VersionColumn) and
 * updated_at (@UpdateDateColumn) even when `values` is empty, and locks the row for the rest of the
 * transaction. No row touched: NotFoundError when it is gone, else PreconditionFailedError (a stale
 * If-Match, or an If-None-Match naming the current version or `*`: RFC 9110 §13.1.2). `values` are entity properties; undefined
 * ones are left out, as TypeORM's update() does. `repository` is the table's, bound to the caller's
 * transaction (see inCurrentTransaction); the feature repositories are the only callers.
 *
 * Plain SQL built from the entity's metadata (column names, the driver's quoting and value
 * conversion) rather than the query builder, which costs CPU on every PATCH (BENCHMARKS.md); the
 * text is what the query builder sent, so the bench floor's statements still match.
 */
export async function updateIfMatch<T extends Versioned>(
  repository: Repository<T>,
  id: number,
  values: NoInfer<Partial<T>>,
  conditions: Preconditions = {},
): Promise<void> {
  if (conditions.ifNoneMatch === '*') return missingOrStale(repository, id); // the row exists, or 404
  const { metadata, manager } = repository;
  const driver = manager.connection.driver;
  const parameters: unknown[] = [];
  const set: string[] = [];
  for (const column of metadata.columns) {
    const value = column.getEntityValue(values);
    if (value === undefined || column === metadata.updateDateColumn || column === metadata.versionColumn) continue;
    parameters.push(driver.preparePersistentValue(value, column));
    set.push(`${driver.escape(column.databaseName)} = ${placeholder(driver, parameters)}`);
  }
  if (metadata.updateDateColumn)
    set.push(`${driver.escape(metadata.updateDateColumn.databaseName)} = ${nowWithMilliseconds(manager)}`);
  if (metadata.versionColumn) {
    const version = driver.escape(metadata.versionColumn.databaseName);
    set.push(`${version} = ${version} + 1`);
  }
  const sql = `UPDATE ${driver.escape(metadata.tableName)} SET ${set.join(', ')}`;
  if (!(await affectedRows(repository, sql, parameters, id, conditions))) await missingOrStale(repository, id);
}

/** `DELETE FROM t WHERE id = $1 [AND version …]` with the same preconditions and the same errors. */
export async function deleteIfMatch<T extends Versioned>(
  repository: Repository<T>,
  id: number,
  conditions: Preconditions = {},
): Promise<void> {
  if (conditions.ifNoneMatch === '*') return missingOrStale(repository, id);
  const sql = `DELETE FROM ${repository.manager.connection.driver.escape(repository.metadata.tableName)}`;
  if (!(await affectedRows(repository, sql, [], id, conditions))) await missingOrStale(repository, id);
}

/**
 * Runs `statement WHERE id = $n [AND version IN (…)] [AND version NOT IN (…)]` on the repository's
 * query runner (the caller's transaction), in the dialect's placeholders; returns how many rows it
 * touched (TypeORM's structured QueryResult, the same on every driver).
 */
async function affectedRows<T extends Versioned>(
  repository: Repository<T>,
  statement: string,
  parameters: unknown[],
  id: number,
  { ifMatch, ifNoneMatch }: Preconditions,
): Promise<number> {
  const { manager, metadata } = repository;
  const driver = manager.connection.driver;
  const versionColumn = driver.escape(metadata.versionColumn!.databaseName);
  const bind = (value: unknown) => (parameters.push(value), placeholder(driver, parameters));
  const list = (versions: number[]) => withSentinel(versions).map(bind).join(', ');
  let sql = `${statement} WHERE ${driver.escape(metadata.primaryColumns[0].databaseName)} = ${bind(id)}`;
  if (ifMatch) sql += ` AND ${versionColumn} IN (${list(ifMatch)})`;
  if (ifNoneMatch && ifNoneMatch !== '*') sql += ` AND ${versionColumn} NOT IN (${list(ifNoneMatch)})`;
  const runner = manager.queryRunner ?? manager.connection.createQueryRunner();
  try {
    const result = await runner.query(sql, parameters, true);
    return result.affected ?? 0;
  } finally {
    if (!manager.queryRunner) await runner.release();
  }
}

/**
 * The placeholder of the last of `parameters`, as the driver spells it (TypeORM's createParameter:
 * `$n` on PostgreSQL, `?` on MySQL and SQLite, whose placeholders bind in text order).
 */
function placeholder(driver: Driver, parameters: readonly unknown[]): string {
  return driver.createParameter('p', parameters.length - 1);
}

/** -1 is never a version: it keeps `IN (…)` valid when no tag could be parsed, which then matches nothing. */
const withSentinel = (versions: number[]) => [...versions, -1];

async function missingOrStale<T extends ObjectLiteral>(repository: Repository<T>, id: number): Promise<never> {
  const name = repository.metadata.targetName;
  if (await repository.existsBy({ id } as unknown as FindOptionsWhere<T>)) {
    throw new PreconditionFailedError(`${name} ${id}: a precondition (If-Match / If-None-Match) failed`);
  }
  throw new NotFoundError(`${name} ${id} not found`);
}

/**
 * The preconditions a conditional write would check, evaluated against the row as it is now, for a
 * write whose own rules would refuse it before its statement runs (the last admin, say: RFC 9110
 * §13.2.1 puts the precondition first, as updateIfMatch's statement would). Nothing when `conditions`
 * ask nothing; else NotFoundError when the row is gone, PreconditionFailedError when If-Match names
 * none of its version or If-None-Match names it (or is `*`), as updateIfMatch/deleteIfMatch decide.
 */
export async function requirePreconditions<T extends Versioned>(
  repository: Repository<T>,
  id: number,
  { ifMatch, ifNoneMatch }: Preconditions = {},
): Promise<void> {
  if (ifMatch === undefined && ifNoneMatch === undefined) return;
  const row = await repository.findOne({
    where: { id } as FindOptionsWhere<T>,
    select: { id: true, version: true } as never,
  });
  if (!row) throw new NotFoundError(`${repository.metadata.targetName} ${id} not found`);
  const holds =
    (ifMatch === undefined || ifMatch.includes(row.version)) &&
    (ifNoneMatch === undefined || (ifNoneMatch !== '*' && !ifNoneMatch.includes(row.version)));
  if (!holds) {
    throw new PreconditionFailedError(
      `${repository.metadata.targetName} ${id}: a precondition (If-Match / If-None-Match) failed`,
    );
  }
}
