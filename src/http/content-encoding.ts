import { HttpStatus } from '@nestjs/common';
import type { FastifyInstance } from 'fastify';
import { ProblemException } from './problem';
import { answerWithProblem } from './problem-details.filter';

/**
 * Request bodies are read as they come: no content coding is decoded (decoding would need its own
 * bound on the inflated size, and no client of this API needs it). A request whose body carries a
 * `Content-Encoding` other than `identity` is refused before its body is read: 415 problem+json naming
 * Content-Encoding in `errors`, with `Accept-Encoding: identity`, the codings this server accepts
 * (RFC 9110 §15.5.16, §12.5.3), instead of parsing compressed bytes as JSON. A request without a body is not affected; an unknown path
 * stays a 404 and an unsupported method a 405 (those are answered before this runs).
 */
export function refuseContentEncodings(fastify: FastifyInstance): void {
  fastify.addHook('preParsing', (request, reply, payload, done) => {
    const coding = request.headers['content-encoding'];
    if (coding === undefined || request.is404 || !hasBody(request.headers) || isIdentity(coding)) {
      return done(null, payload);
    }
    const message = 'Request bodies must not be content-coded (Content-Encoding): send the JSON as it is';
    answerWithProblem(
      request,
      reply,
      new ProblemException(HttpStatus.UNSUPPORTED_MEDIA_TYPE, message, {
        headers: { 'Accept-Encoding': 'identity' },
        errors: [{ field: 'Content-Encoding', messages: [message] }],
      }),
    );
  });
}

function hasBody(headers: Record<string, string | string[] | undefined>): boolean {
  return headers['transfer-encoding'] !== undefined || Number(headers['content-length'] ?? 0) > 0;
}

function isIdentity(coding: string | string[]): boolean {
  return [coding]
    .flat()
    .flatMap((value) => value.split(','))
    .every((value) => /^\s*(identity)?\s*$/i.test(value));
}
