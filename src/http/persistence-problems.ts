import { HttpStatus } from '@nestjs/common';
import {
  ConflictError,
  MissingReferenceError,
  NotFoundError,
  type PersistenceError,
  PreconditionFailedError,
  UnavailableError,
  UnstorableValueError,
} from '../database/errors/persistence-errors';
import { ProblemException } from './problem';

/**
 * The one place where the database layer's errors become HTTP: each PersistenceError as the
 * problem (RFC 9457) ProblemDetailsFilter renders. Conflict 409, precondition failed 412 (RFC 9110
 * §15.5.13), not found 404, missing reference 422, unstorable value 400, unavailable 503 with
 * Retry-After; the error's fields become the problem's `errors`, except on a 404: a missing resource
 * is not invalid input, and no 404 names a field (docs/api.md, Errors), whether a service or a
 * foreign key found it missing.
 */
export function persistenceProblemOf(error: PersistenceError): ProblemException {
  const errors = error.fields && !(error instanceof NotFoundError) && { errors: error.fields };
  if (error instanceof ConflictError) {
    const { retryAfterSeconds } = error.options;
    return new ProblemException(HttpStatus.CONFLICT, error.message, {
      ...errors,
      ...(retryAfterSeconds && { retryAfterSeconds }),
    });
  }
  if (error instanceof UnavailableError) {
    return new ProblemException(HttpStatus.SERVICE_UNAVAILABLE, error.message, {
      retryAfterSeconds: error.retryAfterSeconds,
      unavailableCause: error.unavailableCause,
    });
  }
  return new ProblemException(statusOf(error), error.message, { ...errors });
}

function statusOf(error: PersistenceError): HttpStatus {
  if (error instanceof PreconditionFailedError) return HttpStatus.PRECONDITION_FAILED;
  if (error instanceof NotFoundError) return HttpStatus.NOT_FOUND;
  if (error instanceof MissingReferenceError) return HttpStatus.UNPROCESSABLE_ENTITY;
  if (error instanceof UnstorableValueError) return HttpStatus.BAD_REQUEST;
  return HttpStatus.INTERNAL_SERVER_ERROR;
}
