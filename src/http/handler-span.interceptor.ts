import {
  type CallHandler,
  type ExecutionContext,
  HttpException,
  Injectable,
  type NestInterceptor,
} from '@nestjs/common';
import { SpanStatusCode, context, trace } from '@opentelemetry/api';
import { finalize, Observable, tap } from 'rxjs';
import { PersistenceError, UnavailableError } from '../database/errors/persistence-errors';
import { tracer } from '../tracing/request-tracing';

/**
 * A span around each Nest handler, named `Controller.method`, in whose context the handler runs (so
 * its SQL spans are its children). Registered as a global interceptor only when tracing is on:
 * any global interceptor makes every request pay for Nest's interceptor chain.
 */
@Injectable()
export class HandlerSpanInterceptor implements NestInterceptor {
  intercept(execution: ExecutionContext, next: CallHandler): Observable<unknown> {
    const name = `${execution.getClass().name}.${execution.getHandler().name}`;
    const span = tracer.startSpan(name, { attributes: { 'code.function.name': name } });
    const spanContext = trace.setSpan(context.active(), span);
    return new Observable((subscriber) =>
      context.with(spanContext, () =>
        next
          .handle()
          .pipe(
            tap({
              error: (error: unknown) => {
                if (isClientMistake(error)) return;
                span.recordException(error as Error);
                span.setStatus({ code: SpanStatusCode.ERROR });
              },
            }),
            finalize(() => span.end()),
          )
          .subscribe(subscriber),
      ),
    );
  }
}

/**
 * An error that answers 4xx: a Nest HttpException below 500, or a PersistenceError other than
 * UnavailableError (a conflict, failed precondition, missing row or reference, unstorable value).
 */
function isClientMistake(error: unknown): boolean {
  if (error instanceof HttpException) return error.getStatus() < 500;
  return error instanceof PersistenceError && !(error instanceof UnavailableError);
}
