import { HttpException, HttpStatus } from '@nestjs/common';
import { STATUS_CODES } from 'node:http';
import type { UnavailableCause } from '../metrics/metrics';

/** One invalid input field, as listed in a validation problem's `errors`. */
export interface FieldError {
  /** Dotted path of the field, e.g. `profile.avatarUrl`, or the name of a path or query parameter. */
  field: string;
  messages: string[];
}

/** RFC 9457 problem details, the body of every error response. */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  errors?: FieldError[];
}

/**
 * An HTTP error that carries problem details. Services and the database error translation throw it;
 * ProblemDetailsFilter renders it. Plain Nest HttpExceptions are rendered the same way.
 */
export class ProblemException extends HttpException {
  constructor(
    status: HttpStatus,
    detail: string,
    readonly extras: {
      errors?: FieldError[];
      retryAfterSeconds?: number;
      type?: string;
      /** Response headers the problem needs, e.g. `WWW-Authenticate` on a 401 (RFC 9110 §15.5.2). */
      headers?: Record<string, string>;
      /** For a 503: why, as counted by http_server_unavailable_responses_total. */
      unavailableCause?: UnavailableCause;
    } = {},
  ) {
    super(detail, status);
  }
}

export function problem(status: number, detail: string, extras: Partial<ProblemDetails> = {}): ProblemDetails {
  return {
    type: 'about:blank',
    title: STATUS_CODES[status] ?? 'Error',
    status,
    detail,
    ...extras,
  };
}

/**
 * Most field errors one problem lists: a body with thousands of unknown fields gets a bounded answer
 * (the first MAX_LISTED_ERRORS, and the detail says how many there were).
 */
export const MAX_LISTED_ERRORS = 20;

/** 400 with field-level errors: at most MAX_LISTED_ERRORS of them, the detail names their fields. */
export function validationProblem(errors: FieldError[]): ProblemException {
  const listed = errors.slice(0, MAX_LISTED_ERRORS);
  const fields = listed.map((e) => e.field).join(', ');
  const more = errors.length > listed.length ? ` (the first ${listed.length} of ${errors.length} invalid fields)` : '';
  return new ProblemException(HttpStatus.BAD_REQUEST, `Invalid request: ${fields}${more}`, {
    errors: listed,
    type: '/problems/validation',
  });
}
