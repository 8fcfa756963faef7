import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type IncomingMessage, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { isConnectionLost, translateDatabaseError } from '../database/errors/database-errors';
import { PersistenceError } from '../database/errors/persistence-errors';
import { countUnavailableResponse } from '../metrics/metrics';
import { persistenceProblemOf } from './persistence-problems';
import { type ClientError, clientErrorProblem } from './client-errors';
import { type FieldError, problem, ProblemException, type ProblemDetails } from './problem';

/** Errors Fastify raises while reading a request, before any route runs; they carry their own status. */
interface RequestReadError {
  code: string;
  statusCode: number;
}
/** Each one's detail, and the header it names in `errors` when a header is the fault (RFC 9457 §3). */
const requestReadDetails: Record<string, { detail: string; field?: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { detail: 'The request body is too large' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    detail: 'The request body must be JSON (Content-Type: application/json)',
    field: 'Content-Type',
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { detail: 'Content-Length does not match the body', field: 'Content-Length' },
  // Fallbacks: createApp's frameworkErrors names the path parameter (path-params.ts).
  FST_ERR_MAX_PARAM_LENGTH: { detail: 'A path parameter is too long', field: 'path' },
  FST_ERR_BAD_URL: { detail: 'The URL is malformed', field: 'path' },
};

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** A 503's detail for a write whose database connection failed: the client cannot know whether it was applied. */
export const WRITE_OUTCOME_UNKNOWN =
  'The database became unavailable during the request: the change may or may not have been saved. Retry it shortly, with the same Idempotency-Key to make the retry safe';

/**
 * The single place where every error becomes an `application/problem+json` response (RFC 9457):
 * validation, domain, database and unexpected errors alike. Server errors are logged with their
 * stack; clients never see stacks, SQL or driver messages.
 */
@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  private readonly logger = new Logger(ProblemDetailsFilter.name);

  catch(exception: unknown, host: ArgumentsHost): void {
    this.render(
      exception,
      host.switchToHttp().getRequest<FastifyRequest>(),
      host.switchToHttp().getResponse<FastifyReply>(),
    );
  }

  /** Also called for errors Fastify raises before routing (see createApp's frameworkErrors). */
  render(exception: unknown, request: FastifyRequest, response: FastifyReply): void {
    const payload = this.prepare(exception, request, response);
    if (payload !== undefined) void response.send(payload);
  }

  /**
   * Logs `exception` as render does and readies `response` for it (status, problem+json type, its
   * headers such as Retry-After or Allow); returns the body to send, or undefined if a response was
   * already sent. For hooks that replace a payload (onSend), where sending is not allowed.
   */
  prepare(exception: unknown, request: FastifyRequest, response: FastifyReply): string | undefined {
    const translated = translateDatabaseError(exception) ?? exception;
    const exceptionToRender = translated instanceof PersistenceError ? persistenceProblemOf(translated) : translated;
    const body = {
      ...this.toProblem(exceptionToRender),
      instance: request.originalUrl?.split('?')[0],
    };
    if (body.status === 503) {
      const cause =
        exceptionToRender instanceof ProblemException ? exceptionToRender.extras.unavailableCause : undefined;
      countUnavailableResponse(cause ?? 'other');
      // The connection went away under a write: it may have committed (docs/failures.md).
      if (!SAFE_METHODS.has(request.method) && isConnectionLost(exception)) body.detail = WRITE_OUTCOME_UNKNOWN;
    }

    if (body.status === 500) {
      const cause = exception instanceof Error ? (exception.stack ?? exception.message) : String(exception);
      this.logger.error(`${request.method} ${request.originalUrl} -> 500: ${cause}`);
    } else if (body.status > 500) {
      // Unavailable or overloaded: an operational state worth a line, not a stack.
      const cause = exception instanceof Error ? exception.message : String(exception);
      this.logger.warn(`${request.method} ${request.originalUrl} -> ${body.status}: ${cause}`);
    }
    if (response.sent) return undefined;
    const extras = exceptionToRender instanceof ProblemException ? exceptionToRender.extras : {};
    if (extras.retryAfterSeconds) response.header('Retry-After', String(extras.retryAfterSeconds));
    for (const [name, value] of Object.entries(extras.headers ?? {})) response.header(name, value);
    // A payload replaced in onSend must not keep the length measured for the one it replaces.
    void response.status(body.status).type('application/problem+json').removeHeader('content-length');
    return JSON.stringify(body);
  }

  private toProblem(exception: unknown): ProblemDetails {
    if (exception instanceof ProblemException) {
      const { errors, type } = exception.extras;
      return problem(exception.getStatus(), exception.message, { ...(type && { type }), ...(errors && { errors }) });
    }
    // Reading the body failed before any route ran. Our own wording: JSON.parse's message would
    // quote the client's input back.
    const readError = [exception, (exception as { cause?: unknown } | undefined)?.cause].find(isRequestReadError);
    if (readError) {
      const { detail, field } = requestReadDetails[readError.code] ?? { detail: 'The request could not be read' };
      return problem(readError.statusCode, detail, field ? { errors: [{ field, messages: [detail] }] } : {});
    }
    if (exception instanceof HttpException) {
      return problem(exception.getStatus(), messageOf(exception));
    }
    return problem(HttpStatus.INTERNAL_SERVER_ERROR, 'An unexpected error occurred');
  }
}

function messageOf(exception: HttpException): string {
  const response = exception.getResponse();
  if (typeof response === 'string') return response;
  const message = (response as { message?: unknown }).message;
  if (Array.isArray(message)) return message.join('; ');
  return typeof message === 'string' ? message : exception.message;
}

function isRequestReadError(error: unknown): error is RequestReadError {
  const candidate = error as Partial<RequestReadError> | null;
  return (
    typeof candidate?.code === 'string' &&
    candidate.code.startsWith('FST_') &&
    typeof candidate.statusCode === 'number' &&
    candidate.statusCode >= 400 &&
    candidate.statusCode < 500
  );
}

const hookProblems = new ProblemDetailsFilter();

/**
 * The one way a Fastify hook answers with a problem (RFC 9457), rendered exactly as the global filter
 * renders a thrown error. In an onRequest/preParsing/preValidation/preHandler hook it sends the
 * response (the route handler does not run; the hook must not call `done()` afterwards) and returns
 * undefined. In an onSend hook pass `{ replacePayload: true }`: nothing is sent, the reply's status
 * and headers are set and the problem body is returned, to be passed on as the new payload.
 */
export function answerWithProblem(
  request: FastifyRequest,
  reply: FastifyReply,
  exception: unknown,
  { replacePayload = false } = {},
): string | undefined {
  if (replacePayload) return hookProblems.prepare(exception, request, reply);
  hookProblems.render(exception, request, reply);
  return undefined;
}

/**
 * Requests Node's HTTP parser rejects (headers too large, malformed) never reach Fastify or Nest:
 * this answers them on the raw socket, still as problem+json, naming the part at fault (client-errors.ts).
 */
export function answerClientError(error: ClientError, socket: Duplex): void {
  if (!socket.writable || error.code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  const { status, detail, errors } = clientErrorProblem(error);
  endWithProblem(socket, status, detail, errors);
}

/**
 * A CONNECT request (RFC 9110 §9.3.6) asks for a tunnel, which only a proxy opens; Node hands it to
 * the server's 'connect' event instead of routing it, and without a listener closes the connection
 * without a word. Answered 501 problem+json (§15.6.2) on the raw socket, connection closed.
 */
export function refuseConnect(_request: IncomingMessage, socket: Duplex): void {
  endWithProblem(socket, 501, 'CONNECT is not supported: this server is not a proxy');
}

/** Writes a complete problem+json response on a raw socket and ends the connection. */
function endWithProblem(socket: Duplex, status: number, detail: string, errors?: FieldError[]): void {
  const body = JSON.stringify(problem(status, detail, errors && { errors }));
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/problem+json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
