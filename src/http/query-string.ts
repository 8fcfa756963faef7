import type { FastifyInstance } from 'fastify';
import { parse } from 'fast-querystring';
import { type FieldError, validationProblem } from './problem';
import { answerWithProblem } from './problem-details.filter';

/** What is wrong with each query parameter, by the object parseQueryString returned for that query. */
const faultsOf = new WeakMap<object, FieldError[]>();

/** Whether `text` holds a C0 control or DEL: never text a client means to search or page by (NUL cannot even be stored). */
function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

/**
 * The query parser Fastify's router uses for every route (createApp's `routerOptions`): the same result
 * as Fastify's own (fast-querystring: `+` is a space, a repeated name gives an array, a prototype-less
 * object), and a record of what it could not take as text, which refuseMalformedQueries answers. A name
 * or value is malformed when its percent-encoding is broken (`%`, `%zz`: RFC 3986 §2.1) or encodes
 * bytes that are not UTF-8 (`%FF`: §2.5, as URIs are read here), or when it decodes to a control
 * character (U+0000–U+001F, U+007F). The parser itself never throws: the router calls it while matching.
 */
export function parseQueryString(query: string): Record<string, string | string[]> {
  const parsed = parse(query) as Record<string, string | string[]>;
  // Without `%` nothing was decoded, and Node's parser refuses control characters in the target itself.
  if (!query.includes('%')) return parsed;
  const faults: FieldError[] = [];
  for (const pair of query.split('&')) {
    const at = pair.indexOf('=');
    const [rawName, rawValue] = at < 0 ? [pair, ''] : [pair.slice(0, at), pair.slice(at + 1)];
    const name = decoded(rawName);
    const value = decoded(rawValue);
    const field = name !== undefined && !hasControl(name) ? name : rawName;
    const message =
      name === undefined || value === undefined
        ? notPercentEncodedUtf8(field)
        : hasControl(name) || hasControl(value)
          ? `${field} must not contain control characters (U+0000–U+001F, U+007F)`
          : undefined;
    if (message && !faults.some((fault) => fault.field === field)) faults.push({ field, messages: [message] });
  }
  if (faults.length > 0) faultsOf.set(parsed, faults);
  return parsed;
}

/** The message for a query or path parameter whose percent-encoding is broken or does not encode UTF-8. */
export function notPercentEncodedUtf8(field: string): string {
  return `${field} is not valid percent-encoded UTF-8 (RFC 3986 §2.1, §2.5)`;
}

/** `text` with `+` as a space and percent-decoded as UTF-8; undefined when it cannot be (URIError). */
function decoded(text: string): string | undefined {
  try {
    return decodeURIComponent(text.replaceAll('+', ' '));
  } catch {
    return undefined;
  }
}

/**
 * An onRequest hook (request-pipeline.ts): a request whose query parseQueryString found malformed is
 * answered 400 problem+json naming each such parameter in `errors`, before any route or validation
 * sees the query, on every route alike.
 */
export function refuseMalformedQueries(fastify: FastifyInstance): void {
  fastify.addHook('onRequest', (request, reply, done) => {
    const faults = typeof request.query === 'object' && request.query !== null && faultsOf.get(request.query);
    if (!faults) return done();
    answerWithProblem(request, reply, validationProblem(faults));
  });
}
