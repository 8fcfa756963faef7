import { HttpStatus } from '@nestjs/common';
import { QueryFailedError } from 'typeorm';
import { ProblemException } from '../http/problem';
import { constraintProblem } from './constraint-problems';

/** Errors that mean "the database is unavailable or overloaded right now": 503, try again. */
const unavailableCodes = new Set([
  '57014',
  '57P01',
  '57P02',
  '57P03',
  '53300',
  '53400',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
]);
const unavailableMessages = [
  /timeout exceeded when trying to connect/i,
  /connection terminated/i,
  /Client has encountered a connection error/i,
];

/** Turns a database or driver error into a ProblemException, or returns undefined if it isn't one. */
export function translateDatabaseError(error: unknown): ProblemException | undefined {
  const driverError = (error instanceof QueryFailedError ? error.driverError : error) as
    { code?: string; constraint?: string; message?: string; detail?: string } | undefined;
  if (!driverError || typeof driverError !== 'object') return undefined;
  const { code = '', constraint = '', message = '', detail: driverDetail = '' } = driverError;

  if (code === '23505') {
    const known = constraintProblem(constraint);
    const detail = known?.detail ?? 'The resource already exists';
    const extras = known ? { errors: [{ field: known.field, messages: [detail] }] } : {};
    return new ProblemException(known?.status ?? HttpStatus.CONFLICT, detail, extras);
  }
  if (code === '23503') return missingReference(constraint, driverDetail);
  if (code === '40001' || code === '40P01') {
    return new ProblemException(HttpStatus.CONFLICT, 'The request conflicted with a concurrent one; retry it', {
      retryAfterSeconds: 1,
    });
  }
  if (code.startsWith('22') || code === '23502' || code === '23514') {
    return new ProblemException(HttpStatus.BAD_REQUEST, 'The request contains a value the database cannot store');
  }
  if (isUnavailable(code, message)) {
    return new ProblemException(HttpStatus.SERVICE_UNAVAILABLE, 'The database is unavailable or busy; retry shortly', {
      retryAfterSeconds: 1,
    });
  }
  return undefined;
}

/**
 * A foreign-key violation (23503). On INSERT/UPDATE a referenced row is missing: the constraint's
 * registered problem (422 by default) naming the field, or — for a constraint nobody registered — 422
 * naming the column PostgreSQL reports ("Key (author_id)=(42) is not present…"), else the constraint.
 * A row still referenced elsewhere (a DELETE without cascade) is a 409 conflict instead.
 */
function missingReference(constraint: string, driverDetail: string): ProblemException {
  if (driverDetail.includes('still referenced')) {
    return new ProblemException(HttpStatus.CONFLICT, 'The resource is still referenced by another resource');
  }
  const { status, detail, field } = describeMissingReference(constraint, driverDetail);
  const errors = field ? [{ field, messages: [detail] }] : undefined;
  return new ProblemException(status, detail, errors ? { errors } : {});
}

/** What a missing-reference violation means: its status, detail, the request field and the id PostgreSQL reports. */
function describeMissingReference(constraint: string, driverDetail: string) {
  const [, column, missingId] = /^Key \(([^)]+)\)=\(([^)]*)\)/.exec(driverDetail) ?? [];
  const known = constraintProblem(constraint);
  return {
    status: known?.status ?? HttpStatus.UNPROCESSABLE_ENTITY,
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
  const driverError = (error instanceof QueryFailedError ? error.driverError : undefined) as
    { code?: string; constraint?: string; detail?: string } | undefined;
  if (driverError?.code !== '23503' || driverError.detail?.includes('still referenced')) return error;
  const { status, detail, field, missingId } = describeMissingReference(
    driverError.constraint ?? '',
    driverError.detail ?? '',
  );
  const indexes = items.flatMap((item, index) =>
    missingId !== undefined && String((item as Record<string, unknown>)[field]) === missingId ? [index] : [],
  );
  if (indexes.length === 0) return error;
  return new ProblemException(status, detail, {
    errors: indexes.map((index) => ({ field: `${path}.${index}.${field}`, messages: [detail] })),
  });
}

/** True when `error` means the server did not answer or refused work (down, restarting, overloaded, timed out). */
export function isDatabaseUnavailable(error: unknown): boolean {
  const driverError = (error instanceof QueryFailedError ? error.driverError : error) as
    { code?: string; message?: string } | undefined;
  if (!driverError || typeof driverError !== 'object') return false;
  return isUnavailable(driverError.code ?? '', driverError.message ?? '');
}

function isUnavailable(code: string, message: string): boolean {
  return unavailableCodes.has(code) || code.startsWith('08') || unavailableMessages.some((p) => p.test(message));
}
