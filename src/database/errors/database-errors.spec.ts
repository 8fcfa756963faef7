import { DataSource, QueryFailedError } from 'typeorm';
import { commentsConstraints } from '../../comments/comments.constraints';
import { entities } from '../entities';
import { postsConstraints } from '../../posts/posts.constraints';
import { usersConstraints } from '../../users/users.constraints';
import { registerConstraintProblems, registerForeignKeys } from './constraint-problems';
import { QueryRunnerAlreadyReleasedError, QueryRunnerProviderAlreadyReleasedError } from 'typeorm';
import {
  isConnectionLost,
  mustDiscardConnection,
  sqlStateOf,
  translateDatabaseError,
  wasNeverSent,
} from './database-errors';
import { persistenceProblemOf } from '../../http/persistence-problems';

/** The database error as the error the database layer throws, then as the problem http/ renders of it. */
function translated(error: unknown) {
  const persistenceError = translateDatabaseError(error);
  return persistenceError && persistenceProblemOf(persistenceError);
}

const queryError = (driverError: object) =>
  new QueryFailedError('SELECT 1', [], Object.assign(new Error('driver'), driverError));

describe('translateDatabaseError', () => {
  beforeAll(async () => {
    // What the app registers at startup: each feature's map, and what the entity metadata derives.
    for (const problems of [usersConstraints, postsConstraints, commentsConstraints])
      registerConstraintProblems(problems);
    const dataSource = new DataSource({ type: 'postgres', entities });
    // Metadata only, no connection: what initialize() builds before it connects.
    await (dataSource as unknown as { buildMetadatas(): Promise<void> }).buildMetadatas();
    registerForeignKeys(dataSource.entityMetadatas);
  });

  it('turns the unique email violation into 409 naming the field', () => {
    const problem = translated(queryError({ code: '23505', constraint: 'users_email_lower_key' }));
    expect(problem?.getStatus()).toBe(409);
    expect(problem?.extras.errors).toEqual([{ field: 'email', messages: ['A user with this email already exists'] }]);
  });

  it("uses a feature's declared problem for its foreign key: a missing post in the path is 404", () => {
    const problem = translated(
      queryError({ code: '23503', constraint: 'comments_post_id_fkey', detail: 'Key (post_id)=(7) is not present' }),
    );
    expect(problem?.getStatus()).toBe(404);
    expect(problem?.message).toBe('The post does not exist (id 7)');
    expect(problem?.extras.errors).toBeUndefined(); // no 404 names a field (docs/api.md, Errors)
  });

  it('turns a foreign key no feature mapped into 422 naming the property the entity metadata gives', () => {
    const problem = translated(
      queryError({
        code: '23503',
        constraint: 'comments_author_id_fkey',
        detail: 'Key (author_id)=(42) is not present in table "users".',
      }),
    );
    expect(problem?.getStatus()).toBe(422);
    expect(problem?.extras.errors).toEqual([
      { field: 'authorId', messages: ['The referenced user does not exist (id 42)'] },
    ]);
  });

  it('turns a foreign key unknown even to the metadata into 422 naming the column, not a generic 409', () => {
    const problem = translated(
      queryError({ code: '23503', constraint: 'tags_owner_id_fkey', detail: 'Key (owner_id)=(5) is not present' }),
    );
    expect(problem?.getStatus()).toBe(422);
    expect(problem?.extras.errors?.[0].field).toBe('owner_id');
  });

  it('treats a row still referenced elsewhere (DELETE without cascade) as a 409 conflict', () => {
    const detail = 'Key (id)=(1) is still referenced from table "posts".';
    const problem = translated(queryError({ code: '23503', constraint: 'posts_author_id_fkey', detail }));
    expect(problem?.getStatus()).toBe(409);
  });

  it('refuses a constraint name registered twice with different meanings', () => {
    expect(() => registerConstraintProblems({ users_email_lower_key: { field: 'mail', detail: 'x' } })).toThrow(
      /users_email_lower_key/,
    );
    expect(() => registerConstraintProblems(usersConstraints)).not.toThrow();
  });

  it.each([
    [{ code: '57014' }, 503], // statement timeout
    [{ code: '40001' }, 409], // serialization failure
    [{ code: '22P02' }, 400], // invalid text representation
    [{ code: '23505', constraint: 'unknown' }, 409],
  ])('maps %j to %i', (driverError, status) => {
    expect(translated(queryError(driverError))?.getStatus()).toBe(status);
  });

  it('treats pool exhaustion and refused connections as 503 with Retry-After', () => {
    for (const error of [
      new Error('timeout exceeded when trying to connect'),
      Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }),
    ]) {
      const problem = translated(error);
      expect(problem?.getStatus()).toBe(503);
      expect(problem?.extras.retryAfterSeconds).toBeGreaterThan(0);
    }
  });

  it('leaves unrelated errors alone', () => {
    expect(translated(new TypeError('x is undefined'))).toBeUndefined();
    expect(translated('boom')).toBeUndefined();
  });
});

describe('translateDatabaseError on MariaDB/MySQL (mysql2 errors)', () => {
  const mysqlError = (
    errno: number,
    code: string,
    sqlMessage: string,
    query = 'SELECT 1',
    parameters: unknown[] = [],
  ) => new QueryFailedError(query, parameters, Object.assign(new Error(sqlMessage), { errno, code, sqlMessage }));

  it('names the unique index of ER_DUP_ENTRY, as MariaDB and MySQL 8 word it: 409 naming the field', () => {
    for (const key of ['users_email_lower_key', 'users.users_email_lower_key']) {
      const problem = translated(
        mysqlError(1062, 'ER_DUP_ENTRY', `Duplicate entry 'ada@example.com' for key '${key}'`),
      );
      expect(problem?.getStatus()).toBe(409);
      expect(problem?.extras.errors).toEqual([{ field: 'email', messages: ['A user with this email already exists'] }]);
    }
  });

  it('turns ER_NO_REFERENCED_ROW_2 into the constraint’s problem, naming the id the INSERT gave', () => {
    const problem = translated(
      mysqlError(
        1452,
        'ER_NO_REFERENCED_ROW_2',
        'Cannot add or update a child row: a foreign key constraint fails (`test`.`comments`, CONSTRAINT `comments_post_id_fkey` FOREIGN KEY (`post_id`) REFERENCES `posts` (`id`) ON DELETE CASCADE)',
        'INSERT INTO `comments`(`id`, `post_id`, `author_id`, `body`, `created_at`) VALUES (DEFAULT, ?, ?, ?, DEFAULT)',
        [7, 3, 'hi'],
      ),
    );
    expect(problem?.getStatus()).toBe(404);
    expect(problem?.message).toBe('The post does not exist (id 7)');
    expect(problem?.extras.errors).toBeUndefined(); // no 404 names a field (docs/api.md, Errors)
  });

  it.each([
    [1213, 'ER_LOCK_DEADLOCK', '40P01'],
    [1205, 'ER_LOCK_WAIT_TIMEOUT', '40001'],
  ])('reports %i (%s) as SQLSTATE %s, so inTransaction re-runs the transaction', (errno, code, sqlState) => {
    expect(sqlStateOf(mysqlError(errno, code, 'Deadlock found when trying to get lock'))).toBe(sqlState);
  });

  it.each([
    [1406, 'ER_DATA_TOO_LONG', 400],
    [1451, 'ER_ROW_IS_REFERENCED_2', 409],
    [1969, 'ER_STATEMENT_TIMEOUT', 503],
    [1040, 'ER_CON_COUNT_ERROR', 503],
  ])('maps errno %i (%s) to %i', (errno, code, status) => {
    expect(translated(mysqlError(errno, code, 'x'))?.getStatus()).toBe(status);
  });

  it('treats a lost connection and an exhausted pool (DB_POOL_TIMEOUT_MS) as 503', () => {
    for (const code of ['PROTOCOL_CONNECTION_LOST', 'POOL_ACQUIRE_TIMEOUT']) {
      expect(translated(Object.assign(new Error('gone'), { code }))?.getStatus()).toBe(503);
    }
  });

  it.each([
    [
      1290,
      'ER_OPTION_PREVENTS_STATEMENT',
      'The MariaDB server is running with the --read-only option so it cannot execute this statement',
    ],
    [1836, 'ER_READ_ONLY_MODE', 'Running in read-only mode'],
    [1792, 'ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION', 'Cannot execute statement in a READ ONLY transaction'],
  ])(
    'a read-only server: errno %i (%s) is 25006, 503 + Retry-After, and its connection is discarded',
    (errno, code, message) => {
      const error = mysqlError(errno, code, message);
      expect(sqlStateOf(error)).toBe('25006');
      expect(translated(error)?.getStatus()).toBe(503);
      expect(translated(error)?.extras).toMatchObject({
        retryAfterSeconds: 1,
        unavailableCause: 'database_read_only',
      });
      expect(mustDiscardConnection(error)).toBe(true);
    },
  );

  it('1290 for another option (--secure-file-priv) is not read-only', () => {
    expect(
      sqlStateOf(mysqlError(1290, 'ER_OPTION_PREVENTS_STATEMENT', 'running with the --secure-file-priv option')),
    ).not.toBe('25006');
  });
});

describe('a connection lost under a statement or a transaction', () => {
  it.each([
    [
      'PostgreSQL read-only (25006)',
      queryError({ code: '25006', message: 'cannot execute UPDATE in a read-only transaction' }),
    ],
    [
      'a terminated backend (57P01)',
      queryError({ code: '57P01', message: 'terminating connection due to administrator command' }),
    ],
    ['pg: the connection ended under the statement', new Error('Connection terminated unexpectedly')],
    [
      'pg: a client whose connection broke',
      new Error('Client has encountered a connection error and is not queryable'),
    ],
    [
      'TypeORM: its QueryRunner was released by the broken connection (at COMMIT too)',
      new QueryRunnerAlreadyReleasedError(),
    ],
    ['TypeORM: the same, through the EntityManager', new QueryRunnerProviderAlreadyReleasedError()],
  ])('%s is 503 + Retry-After, never 500', (_, error) => {
    const problem = translated(error);
    expect(problem?.getStatus()).toBe(503);
    expect(problem?.extras.retryAfterSeconds).toBeGreaterThan(0);
  });

  it('tells what was never sent (a transaction that provably did not commit) from what was lost on the way', () => {
    expect(wasNeverSent(new QueryRunnerAlreadyReleasedError())).toBe(true);
    expect(wasNeverSent(new Error("Can't add new command when connection is in closed state"))).toBe(true);
    expect(wasNeverSent(new Error('Connection terminated unexpectedly'))).toBe(false);
    expect(isConnectionLost(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isConnectionLost(new Error('timeout exceeded when trying to connect'))).toBe(false); // no connection was had
    expect(isConnectionLost(queryError({ code: '57014' }))).toBe(false); // a statement timeout: it ran
  });
});
