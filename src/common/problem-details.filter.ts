import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import { translateDatabaseError } from './database-errors';
import { problem, ProblemException, type ProblemDetails } from './problem';

/** Errors raised by Express's body parser (http-errors with a `type`); they carry their own status. */
interface BodyParserError {
  type: string;
  status: number;
}
const bodyParserDetails: Record<string, string> = {
  'entity.too.large': 'The request body is too large',
  'entity.parse.failed': 'The request body is not valid JSON (or holds text that is not valid Unicode)',
  'encoding.unsupported': 'The request body encoding is not supported',
  'charset.unsupported': 'The request body charset is not supported',
  'request.aborted': 'The request was aborted',
};

/**
 * The single place where every error becomes an `application/problem+json` response (RFC 9457):
 * validation, domain, database and unexpected errors alike. Server errors are logged with their
 * stack; clients never see stacks, SQL or driver messages.
 */
@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  private readonly logger = new Logger(ProblemDetailsFilter.name);

  catch(exception: unknown, host: ArgumentsHost): void {
    const request = host.switchToHttp().getRequest<Request>();
    const response = host.switchToHttp().getResponse<Response>();
    const exceptionToRender = translateDatabaseError(exception) ?? exception;
    const body = {
      ...this.toProblem(exceptionToRender),
      instance: request.originalUrl?.split('?')[0],
    };

    if (body.status === 500) {
      const cause = exception instanceof Error ? (exception.stack ?? exception.message) : String(exception);
      this.logger.error(`${request.method} ${request.originalUrl} -> 500: ${cause}`);
    } else if (body.status > 500) {
      // Unavailable or overloaded: an operational state worth a line, not a stack.
      const cause = exception instanceof Error ? exception.message : String(exception);
      this.logger.warn(`${request.method} ${request.originalUrl} -> ${body.status}: ${cause}`);
    }
    if (response.headersSent) return;
    const retryAfter =
      exceptionToRender instanceof ProblemException ? exceptionToRender.extras.retryAfterSeconds : undefined;
    if (retryAfter) response.setHeader('Retry-After', String(retryAfter));
    response.status(body.status).type('application/problem+json').json(body);
  }

  private toProblem(exception: unknown): ProblemDetails {
    if (exception instanceof ProblemException) {
      const { errors, type } = exception.extras;
      return problem(exception.getStatus(), exception.message, { ...(type && { type }), ...(errors && { errors }) });
    }
    // Express's body parser fails before any route runs; Nest wraps its error in an HttpException.
    // Our own wording, because JSON.parse's message quotes the client's input back.
    const parserError = [exception, (exception as { cause?: unknown } | undefined)?.cause].find(isBodyParserError);
    if (parserError) {
      return problem(parserError.status, bodyParserDetails[parserError.type] ?? 'The request body could not be read');
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

function isBodyParserError(error: unknown): error is BodyParserError {
  const candidate = error as Partial<BodyParserError> | null;
  return (
    typeof candidate?.type === 'string' &&
    typeof candidate.status === 'number' &&
    candidate.status >= 400 &&
    candidate.status < 500
  );
}
