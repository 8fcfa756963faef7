import { HttpStatus } from '@nestjs/common';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type FieldError, ProblemException, validationProblem } from './problem';
import { notPercentEncodedUtf8 } from './query-string';

/** Longest path parameter the router accepts, in characters once decoded (createApp's routerOptions); longer is 414. */
export const MAX_PATH_PARAM_LENGTH = 100;

/** What a path segment holds wrong: broken percent-encoding, or more than MAX_PATH_PARAM_LENGTH characters. */
type SegmentFault = 'encoding' | 'length';

/**
 * The problem for a request target the router refused before any route ran, naming what was wrong
 * (RFC 9457 §3: `errors`, as for every other parameter): each path parameter, by the name the matching
 * route gives it, whose segment is not percent-encoded UTF-8 (FST_ERR_BAD_URL, RFC 3986 §2.1, §2.5:
 * 400) or is longer than MAX_PATH_PARAM_LENGTH (FST_ERR_MAX_PARAM_LENGTH: 414, RFC 9110 §15.5.15).
 * A fault outside any parameter (a static segment, a path no route has) is named `path`. The route is
 * found again with each faulty segment replaced by a placeholder. Undefined for any other error.
 */
export function pathProblem(
  fastify: FastifyInstance,
  error: { code?: string },
  request: FastifyRequest,
): ProblemException | undefined {
  const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
  if (!tooLong && error.code !== 'FST_ERR_BAD_URL') return undefined;
  const segments = pathOf(request.raw.url ?? '/').split('/');
  const faults = new Map<string, SegmentFault>();
  const probe = segments.map((segment, i) => {
    const fault = faultOf(segment);
    if (!fault) return segment;
    const placeholder = `~${i}`; // `~` is unreserved: no route's static segment is spelt like this
    faults.set(placeholder, fault);
    return placeholder;
  });
  const url = probe.join('/');
  // A method the path does not allow still names the parameter as the path's GET route does.
  const route =
    fastify.findRoute({ method: request.raw.method ?? 'GET', url }) ?? fastify.findRoute({ method: 'GET', url });
  const found: { field: string; fault: SegmentFault }[] = [];
  for (const [name, value] of Object.entries((route?.params ?? {}) as Record<string, string>)) {
    const fault = faults.get(value);
    if (fault === undefined || name === '*') continue;
    faults.delete(value);
    found.push({ field: name, fault });
  }
  const rest = [...faults.values()];
  if (rest.length > 0 || found.length === 0) {
    const fault = rest.includes('encoding') || (rest.length === 0 && !tooLong) ? 'encoding' : 'length';
    found.push({ field: 'path', fault });
  }
  const errors: FieldError[] = found.map(({ field, fault }) => ({ field, messages: [messageOf(field, fault)] }));
  if (found.some(({ fault }) => fault === 'encoding')) return validationProblem(errors);
  const fields = errors.map((e) => e.field).join(', ');
  return new ProblemException(HttpStatus.URI_TOO_LONG, `Path parameter too long: ${fields}`, { errors });
}

/** The path of a request target: origin-form as it is, absolute-form without its scheme and authority; no query. */
function pathOf(target: string): string {
  const path = target.startsWith('/') ? target : target.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '');
  return path.split(/[?#]/, 1)[0];
}

function faultOf(segment: string): SegmentFault | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    return 'encoding';
  }
  return decoded.length > MAX_PATH_PARAM_LENGTH ? 'length' : undefined;
}

function messageOf(field: string, fault: SegmentFault): string {
  return fault === 'encoding'
    ? notPercentEncodedUtf8(field)
    : `${field} must be at most ${MAX_PATH_PARAM_LENGTH} characters long`;
}
