import { HttpStatus } from '@nestjs/common';
import { QueryFailedError } from 'typeorm';
import { ProblemException } from '../http/problem';
import { translateSqliteError } from '../database/sqlite';
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
  const sqlite = translateSqliteError(driverError, error instanceof QueryFailedError ? error.query : '');
  const {
    code = '',
    constraint = '',
    message = '',
    detail: driverDetail = '',
  } = sqlite ? { ...sqlite, message: driverError.message } : driverError;

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
  const [, column, missingId] = /^Key \(([^)]+)\)=\(([^)]*)\)/.exec(driverDetail) ?? [];
  const known = constraintProblem(constraint);
  const detail = `${known?.detail ?? 'A referenced resource does not exist'}${missingId ? ` (id ${missingId})` : ''}`;
  const field = known?.field ?? column ?? constraint;
  const errors = field ? [{ field, messages: [detail] }] : undefined;
  return new ProblemException(known?.status ?? HttpStatus.UNPROCESSABLE_ENTITY, detail, errors ? { errors } : {});
}

/** True when `error` means the server did not answer or refused work (down, restarting, overloaded, timed out). */
export function isDatabaseUnavailable(error: unknown): boolean {
  const driverError = (error instanceof QueryFailedError ? error.driverError : error) as
    { code?: string; message?: string } | undefined;
  if (!driverError || typeof driverError !== 'object') return false;
  const code = translateSqliteError(driverError)?.code ?? driverError.code ?? '';
  return isUnavailable(code, driverError.message ?? '');
}

function isUnavailable(code: string, message: string): boolean {
  return unavailableCodes.has(code) || code.startsWith('08') || unavailableMessages.some((p) => p.test(message));
}
