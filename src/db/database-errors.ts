import { HttpStatus } from '@nestjs/common';
import { QueryFailedError } from 'typeorm';
import { ProblemException } from '../http/problem';

/**
 * What each named constraint means to a client. The database enforces these rules (also under
 * concurrent requests); this table only turns a violation into a problem that names the field.
 */
const constraints: Record<string, { field: string; detail: string; status?: HttpStatus }> = {
  users_email_lower_key: { field: 'email', detail: 'A user with this email already exists' },
  posts_author_id_fkey: { field: 'authorId', detail: 'The user does not exist', status: HttpStatus.NOT_FOUND },
  comments_post_id_fkey: { field: 'postId', detail: 'The post does not exist', status: HttpStatus.NOT_FOUND },
  comments_author_id_fkey: {
    field: 'authorId',
    detail: 'The comment author does not exist',
    status: HttpStatus.UNPROCESSABLE_ENTITY,
  },
};

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

  if (code === '23505' || code === '23503') {
    const known = constraints[constraint];
    const status = known?.status ?? HttpStatus.CONFLICT;
    const generic = code === '23505' ? 'The resource already exists' : 'A referenced resource does not exist';
    // PostgreSQL says which key was missing ("Key (author_id)=(42) is not present…"): name the id.
    const missingId = code === '23503' ? /\)=\((\d+)\)/.exec(driverDetail)?.[1] : undefined;
    const detail = `${known?.detail ?? generic}${missingId ? ` (id ${missingId})` : ''}`;
    return new ProblemException(status, detail, known ? { errors: [{ field: known.field, messages: [detail] }] } : {});
  }
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
