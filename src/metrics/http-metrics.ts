import type { FastifyInstance, FastifyRequest } from 'fastify';
import { activeRequestsChange, httpRequestDuration } from './metrics';

const ENDED = Symbol('metrics: request ended');
type Tracked = FastifyRequest & { [ENDED]?: boolean };

/** Status classes precomputed: `2xx`, `4xx`, … (the label), by status / 100. */
const STATUS_CLASSES = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'];

/**
 * HTTP RED metrics from Fastify hooks (no Nest interceptor: those cost far more per request):
 * in-flight count on onRequest, duration by method, route pattern and status class on onResponse.
 * The route is Fastify's matched pattern (`/users/:id`), never the URL, so ids cannot multiply the
 * series; requests that match no route count as `unmatched`. Fastify measures the duration itself
 * (reply.elapsedTime, from routing to the last byte written).
 */
export function recordHttpMetrics(fastify: FastifyInstance): void {
  fastify.addHook('onRequest', (_request, _reply, done) => {
    activeRequestsChange(1);
    done();
  });
  fastify.addHook('onResponse', (request: Tracked, reply, done) => {
    if (!request[ENDED]) {
      request[ENDED] = true;
      activeRequestsChange(-1);
      httpRequestDuration.observe(
        {
          method: request.method,
          route: request.routeOptions.url ?? 'unmatched',
          status_class: STATUS_CLASSES[Math.trunc(reply.statusCode / 100)] ?? 'other',
        },
        reply.elapsedTime / 1000,
      );
    }
    done();
  });
  // A client that hangs up before the answer gets no onResponse: it is no longer in flight.
  fastify.addHook('onRequestAbort', (request: Tracked, done) => {
    if (!request[ENDED]) {
      request[ENDED] = true;
      activeRequestsChange(-1);
    }
    done();
  });
}
