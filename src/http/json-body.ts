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
 * - other media types: 415 (Fastify answers that for types no parser is registered for);
 *   media-type parameters are accepted (RFC 9110 §8.3.1), but a `charset` other than UTF-8 is 415;
 * - no content (`Content-Length: 0`) with a JSON type, or with any other type: no body, exactly as
 *   without the header (Content-Type describes content, RFC 9110 §8.3; `curl -d ''` and a browser's
 *   `fetch(url, { method: 'POST', body: '' })` send text/plain or a form type anyway);
 * - bytes that are not UTF-8 (RFC 8259 §8.1; decoding them would silently turn them into U+FFFD),
 *   malformed JSON, nesting deeper than MAX_JSON_DEPTH, strings with lone UTF-16 surrogates (not
 *   text: validators choke on them and PostgreSQL cannot store them), strings with NUL (U+0000:
 *   PostgreSQL's text cannot hold it, MariaDB and SQLite would store it, so every dialect refuses it
 *   here, naming the key) and prototype-poisoning keys (`__proto__`, `constructor.prototype`;
 *   refused as secure-json-parse, Fastify's own parser, refuses them): 400.
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
    done(new ProblemException(HttpStatus.UNSUPPORTED_MEDIA_TYPE, NOT_JSON), undefined); // before reading the body
  });
}

const NOT_JSON = 'The request body must be JSON (Content-Type: application/json)';

/** Strict UTF-8: a malformed byte sequence throws instead of becoming U+FFFD. A leading BOM is dropped. */
const utf8 = new TextDecoder('utf-8', { fatal: true });

function parseJsonBody(request: FastifyRequest, bytes: Buffer): unknown {
  const charset = /;\s*charset\s*=\s*"?([^";\s]*)/i.exec(request.headers['content-type'] ?? '')?.[1];
  if (charset !== undefined && !/^utf-?8$/i.test(charset)) {
    throw new ProblemException(HttpStatus.UNSUPPORTED_MEDIA_TYPE, 'JSON bodies must be UTF-8 (charset=utf-8)');
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
    if (error instanceof NulInString) {
      throw new ProblemException(HttpStatus.BAD_REQUEST, error.message, {
        errors: [{ field: error.key, messages: [error.message] }],
      });
    }
    const poisoned = error instanceof SyntaxError && /forbidden prototype property/.test(error.message);
    throw new ProblemException(
      HttpStatus.BAD_REQUEST,
      poisoned
        ? 'The request body has a forbidden key (__proto__ or constructor.prototype)'
        : 'The request body is not valid JSON (or holds text that is not valid Unicode)',
    );
  }
}

/** A string value holding U+0000; `key` is its own key (the reviver does not see the full path). */
class NulInString extends Error {
  constructor(readonly key: string) {
    super(`${key} must not contain the NUL character (U+0000)`);
  }
}

/**
 * What a reviver and secure-json-parse checked, in one walk of the parsed body, in the same order: the
 * strings in the order JSON.parse's reviver would meet them (a lone surrogate: SyntaxError; U+0000:
 * NulInString naming its own key), then, if all are text, any object with a `__proto__` key or a
 * `constructor` object with a `prototype` key (secure-json-parse's error). Parsing without a reviver
 * keeps V8's fast JSON path, and no second pass over the text or the result is needed.
 */
function checkParsedBody(body: unknown): void {
  if (holdsForbiddenKey(body, '')) throw new SyntaxError('Object contains forbidden prototype property');
}

/** Checks the strings under `node` (throws); returns whether an object under it has a forbidden key. */
function holdsForbiddenKey(node: unknown, key: string): boolean {
  if (typeof node === 'string') {
    rejectUnstorableText(key, node);
    return false;
  }
  if (typeof node !== 'object' || node === null) return false;
  let forbidden = false;
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) if (holdsForbiddenKey(node[i], String(i))) forbidden = true;
    return forbidden;
  }
  const object = node as Record<string, unknown>;
  if (Object.hasOwn(object, '__proto__')) forbidden = true;
  const constructor = Object.hasOwn(object, 'constructor') ? object.constructor : undefined;
  if (typeof constructor === 'object' && constructor !== null && Object.hasOwn(constructor, 'prototype'))
    forbidden = true;
  for (const name of Object.keys(object)) if (holdsForbiddenKey(object[name], name)) forbidden = true;
  return forbidden;
}

function rejectUnstorableText(key: string, value: string): void {
  if (!value.isWellFormed()) throw new SyntaxError('lone surrogate in a string');
  if (value.includes('\0')) throw new NulInString(key);
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
