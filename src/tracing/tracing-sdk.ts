import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, SimpleSpanProcessor, type SpanExporter, TracerProvider } from '@opentelemetry/sdk-trace';

export interface Tracing {
  /** Exports what is still buffered; for tests, which read an in-memory exporter. */
  forceFlush(): Promise<void>;
  /** Exports what is buffered and stops tracing (main.ts calls it after the app has drained). */
  shutdown(): Promise<void>;
}

/** Probes and scrapes are not worth a trace each. */
const UNTRACED_PATHS = /^\/(health|metrics)(\/|\?|$)/;

/**
 * Starts OpenTelemetry tracing (the Trace SDK, W3C trace context) with the http and pg
 * instrumentations, exporting over OTLP/HTTP (protobuf) to OTEL_EXPORTER_OTLP_ENDPOINT — the exporter
 * reads that and the other OTEL_EXPORTER_OTLP_* variables, the resource OTEL_SERVICE_NAME and
 * OTEL_RESOURCE_ATTRIBUTES. `exporter` replaces OTLP (tests pass an InMemorySpanExporter, exported
 * span by span). Must run before http and pg are first required: the instrumentations patch them as
 * they load (main.ts loads the app only afterwards).
 *
 * Spans: the HTTP server span (named after the route pattern, with the request id), the Nest handler
 * (HandlerSpanInterceptor: @opentelemetry/instrumentation-nestjs-core patches CommonJS Nest ≤ 11,
 * and Nest 12 is an ES module it cannot hook), `db.transaction` around each transaction, and each SQL statement (its text
 * with placeholders, never the parameter values) inside a request.
 */
export function startTracing(exporter?: SpanExporter): Tracing {
  const resource = resourceFromAttributes({ 'service.name': 'nest-typeorm-users' }).merge(
    detectResources({ detectors: [envDetector] }),
  );
  const provider = new TracerProvider({
    resource,
    spanProcessors: [
      exporter ? new SimpleSpanProcessor({ exporter }) : new BatchSpanProcessor({ exporter: new OTLPTraceExporter() }),
    ],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(
    new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
  );
  trace.setGlobalTracerProvider(provider);
  registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (request) => UNTRACED_PATHS.test(request.url ?? ''),
        ignoreOutgoingRequestHook: () => true, // the service calls no HTTP API; the exporter's own calls stay out
      }),
      // Statements only inside a traced request (no root spans for pool housekeeping); the pool's
      // acquire time is a metric (db_pool_acquire_duration_seconds), not a span per statement.
      new PgInstrumentation({ requireParentSpan: true, ignoreConnectSpans: true }),
    ],
  });
  return {
    forceFlush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}
