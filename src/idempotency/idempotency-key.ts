import { createHash, createHmac } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { validationProblem } from '../http/problem';

/** The request header (draft-ietf-httpapi-idempotency-key-header-07 §2). */
export const IDEMPOTENCY_KEY = 'Idempotency-Key';
/** Response header on a replayed response: `true` (a Structured Field Boolean, `?1`, would be less readable). */
export const IDEMPOTENT_REPLAYED = 'Idempotent-Replayed';

/** Longest key accepted, in characters (the bound; the draft leaves it to the resource, §2.2). */
export const MAX_KEY_LENGTH = 255;

/**
 * The key of an `Idempotency-Key` field value: an RFC 8941 §3.3.3 sf-string (`"…"`, printable ASCII,
 * `\"` and `\\` the only escapes) of 1–255 characters once unescaped, optionally followed by
 * parameters (§3.1.2, ignored, as RFC 8941 lets a recipient do). Surrounding spaces are allowed
 * (§4.2). Throws a 400 validation problem naming the header for anything else — a bare token, an
 * empty string, a second member, a control character.
 */
export function parseIdempotencyKey(field: string): string {
  const match = /^ *"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"(?:;[a-z*][a-z0-9_.*-]*(?:=[^;,]*)?)* *$/.exec(field);
  const key = match?.[1].replace(/\\(["\\])/g, '$1');
  if (key === undefined || key.length < 1 || key.length > MAX_KEY_LENGTH) {
    throw validationProblem([
      {
        field: IDEMPOTENCY_KEY,
        messages: [
          `${IDEMPOTENCY_KEY} must be a quoted string of 1-${MAX_KEY_LENGTH} printable ASCII characters (RFC 8941 §3.3.3), e.g. "8e03978e-40d5-43e8-bc93-6894a57f9324"`,
        ],
      },
    ]);
  }
  return key;
}

/** SHA-256 (hex) of a key: what the table stores (see IdempotencyKey.keyHash). */
export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/**
 * The request's fingerprint (draft §2.4, "checksum of the entire request payload"): HMAC-SHA256 under
 * `secret` of the method, the route pattern and its parameters (the target: a key used on
 * `DELETE /posts/7` is another request on `DELETE /posts/8`), the body as canonical JSON (keys sorted, so a client re-serializing it differently still
 * matches) and the If-Match / If-None-Match fields as sent. Keyed, because a sign-up body holds a
 * password: a plain hash of it in the table would be a fast password hash. Base64url, 43 characters.
 */
export function fingerprintOf(request: FastifyRequest, secret: Buffer): string {
  const { method, headers, body, routeOptions } = request;
  return createHmac('sha256', secret)
    .update(
      JSON.stringify([
        method,
        routeOptions.url ?? '',
        canonicalJson(request.params ?? {}),
        canonicalJson(body),
        headers['if-match'],
        headers['if-none-match'],
      ]),
    )
    .digest('base64url');
}

/**
 * `value` as JSON with every object's keys in code-point order (RFC 8785's ordering; numbers and
 * strings as JSON.stringify writes them, which is RFC 8785's too for what JSON.parse gives). Undefined
 * (no body) is written as `null`.
 */
export function canonicalJson(value: unknown): string {
  if (value === undefined || value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.keys(value)
    .sort()
    .map((name) => `${JSON.stringify(name)}:${canonicalJson((value as Record<string, unknown>)[name])}`);
  return `{${entries.join(',')}}`;
}
