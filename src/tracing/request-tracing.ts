import { context, SpanStatusCode, trace } from '@opentelemetry/api';
import { getRPCMetadata, RPCType } from '@opentelemetry/core';
import type { FastifyInstance } from 'fastify';

/** Span attribute carrying the request id that the logs and the X-Request-Id header show. */
export const REQUEST_ID_ATTRIBUTE = 'http.request.id';

/** The service's tracer: its spans are the ones this app adds to the instrumentations'. */
export const tracer = trace.getTracer('nest-typeorm-users');

/**
 * Runs `work` in a child span of the current one. Without an active span — tracing off, or outside
 * a traced request — it just runs `work`: one context lookup, nothing recorded.
 */
export async function inSpan<T>(name: string, work: () => Promise<T>): Promise<T> {
  if (!trace.getActiveSpan()) return work();
  return tracer.startActiveSpan(name, async (span) => {
    try {
      return await work();
    } catch (error) {
      span.recordException(error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw error;
    } finally {
      span.end();
    }
  });
}

/** pino mixin: the trace and span a log line was written in, so a request's logs lead to its trace. */
export function traceContextForLogs(): { traceId?: string; spanId?: string } {
  const span = trace.getActiveSpan();
  if (!span) return {};
  const { traceId, spanId } = span.spanContext();
  return { traceId, spanId };
}

/**
 * Names each request's HTTP span after its route pattern (`GET /users/:id`, and `http.route`), the
 * way framework instrumentations do (RPC metadata read by @opentelemetry/instrumentation-http), and
 * puts the request id on it. Registered only when tracing is on.
 */
export function traceRequests(fastify: FastifyInstance): void {
  fastify.addHook('onRequest', (request, _reply, done) => {
    const active = context.active();
    const span = trace.getSpan(active);
    if (span) {
      span.setAttribute(REQUEST_ID_ATTRIBUTE, request.id);
      const rpc = getRPCMetadata(active);
      if (rpc?.type === RPCType.HTTP && request.routeOptions.url) rpc.route = request.routeOptions.url;
    }
    done();
  });
}
