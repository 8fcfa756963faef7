import { HttpStatus } from '@nestjs/common';
import { ProblemException } from '../http/problem';

/** The challenge every 401 carries (RFC 9110 §15.5.2 requires one; RFC 6750 §3 defines it for bearer tokens). */
const REALM = 'Bearer realm="api"';

/**
 * No credentials (or not bearer ones): a challenge without an error code, as RFC 6750 §3.1 asks. With
 * `fault` (an Authorization header of another scheme was sent), `errors` names Authorization with it.
 */
export function authenticationRequired(fault?: string): ProblemException {
  return new ProblemException(HttpStatus.UNAUTHORIZED, 'Sign in: this request needs a bearer access token', {
    headers: { 'WWW-Authenticate': REALM },
    ...(fault !== undefined && { errors: [{ field: 'Authorization', messages: [fault] }] }),
  });
}

/**
 * A bearer token that is malformed, forged, expired or revoked: `error="invalid_token"` (RFC 6750 §3.1),
 * `errors` naming where the token came from: the Authorization header, or a body field (`refreshToken`).
 */
export function invalidToken(detail: string, field = 'Authorization'): ProblemException {
  return new ProblemException(HttpStatus.UNAUTHORIZED, detail, {
    headers: { 'WWW-Authenticate': `${REALM}, error="invalid_token", error_description="${detail}"` },
    errors: [{ field, messages: [detail] }],
  });
}

/** Wrong email or password: one answer for both, so it does not tell which accounts exist. */
export function invalidCredentials(): ProblemException {
  return new ProblemException(HttpStatus.UNAUTHORIZED, 'The email or password is wrong', {
    headers: { 'WWW-Authenticate': REALM },
  });
}

/** Signed in, but not allowed to do this (RFC 9110 §15.5.4). */
export function forbidden(detail: string): ProblemException {
  return new ProblemException(HttpStatus.FORBIDDEN, detail);
}
