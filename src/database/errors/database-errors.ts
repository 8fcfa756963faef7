import { QueryFailedError } from 'typeorm';
import type { UnavailableCause } from '../../metrics/metrics';
import { translateSqliteError } from '../dialects/sqlite';
import { constraintProblem } from './constraint-problems';
import {
  ConflictError,
  MissingReferenceError,
  NotFoundError,
  type ErrorField,
  type PersistenceError,
  UnavailableError,
  UnstorableValueError,
} from './persistence-errors';

/** Errors that mean "the database is unavailable or overloaded right now": 503, try again. */
const unavailableCodes = new Set([
  '57014',
  '57P01',
  '57P02',
  '57P03',
  '53300',
  '53400',
  '25006', // read_only_sql_transaction: a standby, or a primary that was demoted under the app
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  // mysql2: the server went away; the wait for a pooled connection ran out (database/dialects/mysql-driver.ts)
  'PROTOCOL_CONNECTION_LOST',
  'POOL_ACQUIRE_TIMEOUT',
]);
const unavailableMessages = [
  /timeout exceeded when trying to connect/i,
  /^timeout expired$/i, // pg's Client: connectionTimeoutMillis passed before the server answered
  /connection terminated/i,
  /Client has encountered a connection error/i,
  /Pool is closed/i,
  /Can't add new command when connection is in closed state/i,
  /is not queryable/i, // pg: a client whose connection broke ("… encountered a connection error …", "… was closed …")
  // TypeORM (QueryRunnerAlreadyReleasedError, QueryRunnerProviderAlreadyReleasedError): the QueryRunner's
  // connection broke and was released (pg's 'error' event) before its next statement or COMMIT
  /query runner (was )?already released/i,
];

/**
 * The connection failed under the statement, or the server is ending it: pg's and mysql2's
 * connection errors (no SQLSTATE, or class 08), admin/crash shutdown (57P01/57P02, MariaDB's
 * KILL CONNECTION), a QueryRunner released by its broken connection. Not a pool timeout (no
 * connection was had) nor a statement timeout (the statement ran and was cancelled).
 */
const lostCodes = new Set(['57P01', '57P02', 'ECONNRESET', 'EPIPE', 'PROTOCOL_CONNECTION_LOST']);
const lostMessages = [
  /connection terminated/i,
  /is not queryable/i,
  /query runner (was )?already released/i,
  /Can't add new command when connection is in closed state/i,
];

/** A driver error in PostgreSQL's terms: SQLSTATE `code`, violated `constraint`, pg's `detail`. */
interface DriverError {
  code?: string;
  constraint?: string;
  message?: string;
  detail?: string;
}

/** mysql2's error numbers, as the SQLSTATE PostgreSQL reports for the same condition. */
const MYSQL_SQLSTATES: Record<number, string> = {
  1062: '23505', // ER_DUP_ENTRY
  1452: '23503', // ER_NO_REFERENCED_ROW_2
  1216: '23503',
  1451: '23503', // ER_ROW_IS_REFERENCED_2 (a DELETE without cascade)
  1217: '23503',
  1213: '40P01', // ER_LOCK_DEADLOCK: the transaction was rolled back
  1205: '40001', // ER_LOCK_WAIT_TIMEOUT: retried like a serialization failure
  1048: '23502', // ER_BAD_NULL_ERROR
  3819: '23514', // MySQL's CHECK
  4025: '23514', // MariaDB's CHECK
  1406: '22001', // ER_DATA_TOO_LONG
  1264: '22003', // ER_WARN_DATA_OUT_OF_RANGE
  1366: '22007', // ER_TRUNCATED_WRONG_VALUE_FOR_FIELD
  1292: '22007', // ER_TRUNCATED_WRONG_VALUE
  1969: '57014', // MariaDB's max_statement_time
  3024: '57014', // MySQL's max_execution_time
  1040: '53300', // ER_CON_COUNT_ERROR
  1053: '57P01', // ER_SERVER_SHUTDOWN
  1927: '57P01', // ER_CONNECTION_KILLED
  4031: '57P01', // the server closed an idle connection
  1836: '25006', // ER_READ_ONLY_MODE
  1792: '25006', // ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
  // 1290 (ER_OPTION_PREVENTS_STATEMENT) is 25006 only when the option is --read-only: see driverErrorOf
};

/**
 * The error behind `error` in PostgreSQL's terms, whatever the driver: pg's as it is; mysql2's
 * (`errno`, message naming the key or constraint) mapped to the SQLSTATE, constraint and detail pg
 * would give, so one translation serves every dialect. Undefined when `error` is no driver error.
 */
export function driverErrorOf(error: unknown): DriverError | undefined {
  const raw = (error instanceof QueryFailedError ? error.driverError : error) as
    (DriverError & { errno?: number; sqlMessage?: string }) | undefined;
  if (!raw || typeof raw !== 'object') return undefined;
  const sqlite = translateSqliteError(raw, error instanceof QueryFailedError ? error.query : '');
  if (sqlite) return { ...sqlite, message: raw.message };
  if (typeof raw.errno !== 'number' || raw.sqlMessage === undefined) return raw;
  const message = raw.sqlMessage;
  const readOnly = raw.errno === 1290 && /read.only/i.test(message);
  const code = readOnly ? '25006' : (MYSQL_SQLSTATES[raw.errno] ?? raw.code);
  // "Duplicate entry 'x' for key 'users_email_lower_key'" (MySQL 8: 'users.users_email_lower_key').
  const key = /for key '(?:[^']*\.)?([^'.]+)'$/.exec(message)?.[1];
  // "… a foreign key constraint fails (`db`.`comments`, CONSTRAINT `comments_post_id_fkey` FOREIGN KEY (`post_id`) …"
  const [, foreignKey, column] = /CONSTRAINT `([^`]+)` FOREIGN KEY \(`([^`]+)`\)/.exec(message) ?? [];
  if (raw.errno === 1451 || raw.errno === 1217) {
    return { code, constraint: foreignKey, message, detail: 'Key is still referenced' };
  }
  if (code === '23503' && column) {
    const value = error instanceof QueryFailedError ? insertedValue(error, column) : undefined;
    return { code, constraint: foreignKey, message, detail: `Key (${column})=(${value ?? ''}) is not present` };
  }
  return { code, constraint: key ?? foreignKey, message };
}

/**
 * The value an INSERT gave `column`, when every row it inserted gave the same one (mysql2 does not
 * say which value a foreign key missed; pg does, and the 422/404 names it).
 */
function insertedValue({ query, parameters }: QueryFailedError, column: string): string | undefined {
  const bound: unknown[] = Array.isArray(parameters) ? parameters : [];
  const [, columns, tuples] = /^\s*INSERT INTO\s+\S+\s*\(([^)]*)\)\s*VALUES\s*(.*)$/is.exec(query) ?? [];
  if (!columns) return undefined;
  const position = columns.split(',').findIndex((name) => name.trim().replace(/[`"]/g, '') === column);
  let next = 0;
  const values = new Set(
    [...tuples.matchAll(/\(([^()]*)\)/g)].map(([, tuple]) => {
      const items = tuple.split(',').map((item) => item.trim());
      const value =
        items[position] === '?' ? bound[next + items.slice(0, position).filter((i) => i === '?').length] : undefined;
      next += items.filter((item) => item === '?').length;
      return typeof value === 'number' || typeof value === 'string' ? String(value) : undefined;
    }),
  );
  return values.size === 1 ? [...values][0] : undefined;
}

/** The SQLSTATE of a database error in PostgreSQL's terms (see driverErrorOf), or undefined. */
export function sqlStateOf(error: unknown): string | undefined {
  return driverErrorOf(error)?.code;
}

/**
 * Turns a database or driver error into a PersistenceError (a unique key → ConflictError naming the
 * registered field, a missing reference → MissingReferenceError or NotFoundError, a concurrent
 * transaction → ConflictError with retryAfterSeconds, a value that does not fit → UnstorableValueError,
 * the database unreachable or overloaded → UnavailableError), or returns undefined if it isn't one.
 */
export function translateDatabaseError(error: unknown): PersistenceError | undefined {
  const driverError = driverErrorOf(error);
  if (!driverError) return undefined;
  const { code = '', constraint = '', message = '', detail: driverDetail = '' } = driverError;

  if (code === '23505') {
    const known = constraintProblem(constraint);
    const detail = known?.detail ?? 'The resource already exists';
    const fields = known ? [{ field: known.field, messages: [detail] }] : undefined;
    return new ConflictError(detail, { constraint: constraint || undefined, fields });
  }
  if (code === '23503') return missingReference(constraint, driverDetail);
  if (code === '40001' || code === '40P01') {
    return new ConflictError('The request conflicted with a concurrent one; retry it', { retryAfterSeconds: 1 });
  }
  if (code.startsWith('22') || code === '23502' || code === '23514') {
    return new UnstorableValueError('The request contains a value the database cannot store');
  }
  if (isUnavailable(code, message)) {
    const cause = unavailableCauseOf(code, message);
    return new UnavailableError(unavailableDetails[cause], cause, 1);
  }
  return undefined;
}

const unavailableDetails: Record<UnavailableCause, string> = {
  database_unavailable: 'The database is unavailable or busy; retry shortly',
  database_read_only:
    'The database accepts no writes right now (read-only or failing over); nothing was changed; retry shortly',
  database_pool_exhausted: 'No database connection became free in time; nothing was changed; retry shortly',
  database_statement_timeout: 'The database took too long to answer; retry shortly',
  rate_limiter: '',
  shutting_down: '',
  other: '',
};

/** Which kind of unavailability an unavailable database error is (the 503's detail and metric label). */
function unavailableCauseOf(code: string, message: string): UnavailableCause {
  if (code === '25006') return 'database_read_only';
  if (code === '57014') return 'database_statement_timeout';
  if (
    code === 'POOL_ACQUIRE_TIMEOUT' ||
    code === 'SQLITE_BUSY_TIMEOUT' ||
    /timeout exceeded when trying to connect/i.test(message)
  ) {
    return 'database_pool_exhausted';
  }
  return 'database_unavailable';
}

/**
 * True when `error` means the connection it ran on was lost (see lostCodes): the statement may not
 * have reached the server, or its answer did not come back. Used to decide whether a read may be
 * re-run on a fresh connection, and whether a transaction that never sent COMMIT may run again.
 */
export function isConnectionLost(error: unknown): boolean {
  const driverError = driverErrorOf(error);
  if (!driverError) return false;
  const code = driverError.code ?? '';
  return lostCodes.has(code) || code.startsWith('08') || lostMessages.some((p) => p.test(driverError.message ?? ''));
}

/** Errors a driver raises before sending anything: the connection was already known to be gone. */
const unsentMessages = [
  /query runner (was )?already released/i,
  /is not queryable/i,
  /Can't add new command when connection is in closed state/i,
];

/**
 * True when `error` was raised before the statement was sent, because its connection was already
 * gone (TypeORM's released QueryRunner, pg's unqueryable client, mysql2's closed connection): even a
 * COMMIT that failed so was never sent, so its transaction provably did not commit.
 */
export function wasNeverSent(error: unknown): boolean {
  const message = driverErrorOf(error)?.message ?? '';
  return unsentMessages.some((p) => p.test(message));
}

/**
 * True when the connection that reported `error` must not serve another request: the server is
 * read-only (a standby, or a demoted primary: a fresh connection may reach the new primary), or it
 * is terminating the backend or has lost it (see isConnectionLost).
 */
export function mustDiscardConnection(error: unknown): boolean {
  return sqlStateOf(error) === '25006' || isConnectionLost(error);
}

/**
 * A foreign-key violation (23503). On INSERT/UPDATE a referenced row is missing: the constraint's
 * registered problem (422 by default) naming the field, or — for a constraint nobody registered — 422
 * naming the column PostgreSQL reports ("Key (author_id)=(42) is not present…"), else the constraint.
 * A row still referenced elsewhere (a DELETE without cascade) is a 409 conflict instead.
 */
function missingReference(constraint: string, driverDetail: string): PersistenceError {
  if (driverDetail.includes('still referenced')) {
    return new ConflictError('The resource is still referenced by another resource');
  }
  const { notFound, detail, field } = describeMissingReference(constraint, driverDetail);
  return missingReferenceError(notFound, detail, field ? [{ field, messages: [detail] }] : undefined);
}

/** NotFoundError when the constraint is registered with `notFound`, else MissingReferenceError. */
function missingReferenceError(notFound: boolean, detail: string, fields: ErrorField[] | undefined): PersistenceError {
  return notFound ? new NotFoundError(detail, fields) : new MissingReferenceError(detail, fields);
}

/** What a missing-reference violation means: not found or invalid input, detail, the input field and the id PostgreSQL reports. */
function describeMissingReference(constraint: string, driverDetail: string) {
  const [, column, missingId] = /^Key \(([^)]+)\)=\(([^)]*)\)/.exec(driverDetail) ?? [];
  const known = constraintProblem(constraint);
  return {
    notFound: known?.notFound ?? false,
    detail: `${known?.detail ?? 'A referenced resource does not exist'}${missingId ? ` (id ${missingId})` : ''}`,
    field: known?.field ?? column ?? constraint,
    missingId,
  };
}

/**
 * For a write of several items from one request array (`comments` of a new post): a missing reference
 * names the items that hold the missing id, as full paths into the request (`comments.2.authorId`, the
 * way validation errors name nested fields), instead of the bare `authorId`. Any other error is
 * returned as it is, for the global filter to translate.
 */
export function inRequestArray(error: unknown, path: string, items: readonly object[]): unknown {
  const driverError = driverErrorOf(error); // in PostgreSQL's terms on every dialect
  if (driverError?.code !== '23503' || driverError.detail?.includes('still referenced')) return error;
  const { notFound, detail, field, missingId } = describeMissingReference(
    driverError.constraint ?? '',
    driverError.detail ?? '',
  );
  const indexes = items.flatMap((item, index) =>
    missingId !== undefined && String((item as Record<string, unknown>)[field]) === missingId ? [index] : [],
  );
  if (indexes.length === 0) return error;
  return missingReferenceError(
    notFound,
    detail,
    indexes.map((index) => ({ field: `${path}.${index}.${field}`, messages: [detail] })),
  );
}

/** True when `error` means the server did not answer or refused work (down, restarting, overloaded, timed out). */
export function isDatabaseUnavailable(error: unknown): boolean {
  const driverError = driverErrorOf(error);
  if (!driverError) return false;
  return isUnavailable(driverError.code ?? '', driverError.message ?? '');
}

function isUnavailable(code: string, message: string): boolean {
  return unavailableCodes.has(code) || code.startsWith('08') || unavailableMessages.some((p) => p.test(message));
}
