import { HttpStatus } from '@nestjs/common';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ProblemException } from './problem';

/**
 * Deepest nesting of arrays and objects a request body may have. Our deepest valid body is 3 levels
 * (`{"posts": [{"title": …}]}`); deeper bodies are refused before they are parsed, because
 * transforming and validating them recurses once per level, and deep enough bodies overflow the stack.
 */
export const MAX_JSON_DEPTH = 32;

/** `application/json` and any `application/…+json` (RFC 6839), with or without parameters. */
const JSON_MEDIA_TYPE = /^application\/(?:[\w.+-]+\+)?json(?:;|$)/;

/**
 * The only request body parser: JSON, as RFC 8259 defines it for interchange (UTF-8).
 * - other media types: 415 naming Content-Type (Fastify answers that for types no parser is registered
 *   for); media-type parameters are accepted (RFC 9110 §8.3.1), but a `charset` other than UTF-8 is 415;
 * - no content (`Content-Length: 0`) with a JSON type, or with any other type: no body, exactly as
 *   without the header (Content-Type describes content, RFC 9110 §8.3; `curl -d ''` and a browser's
 *   `fetch(url, { method: 'POST', body: '' })` send text/plain or a form type anyway);
 * - bytes that are not UTF-8 (RFC 8259 §8.1; decoding them would silently turn them into U+FFFD),
 *   malformed JSON, nesting deeper than MAX_JSON_DEPTH, strings with lone UTF-16 surrogates (not
 *   text: validators choke on them and PostgreSQL cannot store them), strings with NUL (U+0000:
 *   PostgreSQL's text cannot hold it, MariaDB and SQLite would store it, so every dialect refuses it
 *   here) and prototype-poisoning keys (`__proto__`, `constructor.prototype`; refused as
 *   secure-json-parse, Fastify's own parser, refuses them): 400; the last three name the key in `errors`.
 * Over the body limit: 413, from Fastify before this runs.
 */
export function parseJsonBodies(fastify: FastifyInstance): void {
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser(JSON_MEDIA_TYPE, { parseAs: 'buffer' }, (request, body, done) => {
    try {
      done(null, parseJsonBody(request, body as Buffer));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
  fastify.addContentTypeParser('*', (request, _payload, done) => {
    const noContent = request.headers['content-length'] === '0' && request.headers['transfer-encoding'] === undefined;
    if (noContent) return done(null, undefined);
    done(contentTypeProblem(NOT_JSON), undefined); // before reading the body
  });
}

const NOT_JSON = 'The request body must be JSON (Content-Type: application/json)';

/** 415 naming Content-Type in `errors` (RFC 9110 §15.5.16: the media type or its charset is the fault). */
function contentTypeProblem(message: string): ProblemException {
  return new ProblemException(HttpStatus.UNSUPPORTED_MEDIA_TYPE, message, {
    errors: [{ field: 'Content-Type', messages: [message] }],
  });
}

/** Strict UTF-8: a malformed byte sequence throws instead of becoming U+FFFD. A leading BOM is dropped. */
const utf8 = new TextDecoder('utf-8', { fatal: true });

function parseJsonBody(request: FastifyRequest, bytes: Buffer): unknown {
  const charset = /;\s*charset\s*=\s*"?([^";\s]*)/i.exec(request.headers['content-type'] ?? '')?.[1];
  if (charset !== undefined && !/^utf-?8$/i.test(charset)) {
    throw contentTypeProblem('JSON bodies must be UTF-8 (charset=utf-8)');
  }
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new ProblemException(HttpStatus.BAD_REQUEST, 'The request body is not valid UTF-8 (RFC 8259 §8.1)');
  }
  if (text === '') return undefined;
  if (nestingExceeds(text, MAX_JSON_DEPTH)) {
    throw new ProblemException(
      HttpStatus.BAD_REQUEST,
      `The request body nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels`,
    );
  }
  try {
    // secure-json-parse drops one more leading BOM than the decoder did.
    const value: unknown = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
    checkParsedBody(value);
    return value;
  } catch (error) {
    if (error instanceof UnacceptableKey) {
      throw new ProblemException(HttpStatus.BAD_REQUEST, error.message, {
        errors: [{ field: error.key, messages: [error.message] }],
      });
    }
    throw new ProblemException(HttpStatus.BAD_REQUEST, 'The request body is not valid JSON');
  }
}

/**
 * A key the body must not have, or whose string value cannot be stored; `key` is its own key (as a
 * reviver would see it, not the full path), named in the 400's `errors`.
 */
class UnacceptableKey extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * What a reviver and secure-json-parse checked, in one walk of the parsed body, in the same order: the
 * strings in the order JSON.parse's reviver would meet them (a lone surrogate, U+0000: UnacceptableKey
 * naming the string's own key), then, if all are text, the first object with a `__proto__` key or a
 * `constructor` object with a `prototype` key (secure-json-parse's refusal, naming that key). Parsing
 * without a reviver keeps V8's fast JSON path, and no second pass over the text or the result is needed.
 */
function checkParsedBody(body: unknown): void {
  const forbidden = forbiddenKeyUnder(body, '');
  if (forbidden !== undefined) {
    throw new UnacceptableKey(
      forbidden,
      `The request body has a forbidden key: ${forbidden} (prototype poisoning: __proto__, constructor.prototype)`,
    );
  }
}

/** Checks the strings under `node` (throws); returns the first forbidden key of an object under it, if any. */
function forbiddenKeyUnder(node: unknown, key: string): string | undefined {
  if (typeof node === 'string') {
    rejectUnstorableText(key, node);
    return undefined;
  }
  if (typeof node !== 'object' || node === null) return undefined;
  let forbidden: string | undefined;
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) {
      const found = forbiddenKeyUnder(node[i], String(i)); // every string is checked, also after a find
      forbidden ??= found;
    }
    return forbidden;
  }
  const object = node as Record<string, unknown>;
  if (Object.hasOwn(object, '__proto__')) forbidden = '__proto__';
  const constructor = Object.hasOwn(object, 'constructor') ? object.constructor : undefined;
  if (typeof constructor === 'object' && constructor !== null && Object.hasOwn(constructor, 'prototype'))
    forbidden ??= 'constructor.prototype';
  for (const name of Object.keys(object)) {
    const found = forbiddenKeyUnder(object[name], name);
    forbidden ??= found;
  }
  return forbidden;
}

function rejectUnstorableText(key: string, value: string): void {
  if (!value.isWellFormed()) {
    throw new UnacceptableKey(key, `${key} must be Unicode text: it holds a lone UTF-16 surrogate`);
  }
  if (value.includes('\0')) throw new UnacceptableKey(key, `${key} must not contain the NUL character (U+0000)`);
}

/**
 * Whether JSON text nests arrays/objects deeper than `max`: one pass over the characters, brackets
 * inside strings skipped. Only meaningful for valid JSON; invalid JSON fails to parse anyway.
 */
export function nestingExceeds(text: string, max: number): boolean {
  if (text.length <= max) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const char = text.charCodeAt(i);
    if (inString) {
      if (char === 0x5c)
        i++; // backslash: skip the escaped character
      else if (char === 0x22) inString = false;
    } else if (char === 0x22) inString = true;
    else if (char === 0x5b || char === 0x7b) {
      if (++depth > max) return true;
    } else if (char === 0x5d || char === 0x7d) depth--;
  }
  return false;
}
