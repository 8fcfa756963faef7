/**
 * The app with tracing on, exporting to memory, in its own process (forked by test/tracing.e2e-spec.ts):
 * the instrumentations patch modules as Node's loader requires them, which Jest's module registry
 * bypasses. Sends `{ port }` once listening; answers 'spans' with every finished span; 'stop' closes.
 */
import 'reflect-metadata';
import type { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import { loadConfig } from '../../src/config/app.config';
import { startTracing } from '../../src/tracing/tracing-sdk';

export interface ExportedSpan {
  name: string;
  kind: SpanKind;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  attributes: Record<string, unknown>;
}

async function main(): Promise<void> {
  const exporter = new InMemorySpanExporter();
  const tracing = startTracing(exporter);
  // Only now, as main.ts does: the instrumentations must see http, pg and Nest load.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { createApp } = require('../../src/app.setup') as typeof import('../../src/app.setup');
  const app = await createApp(loadConfig());
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as { port: number };
  process.send!({ port });
  process.on('message', (message) => {
    void (async () => {
      if (message === 'spans') {
        await tracing.forceFlush();
        const spans: ExportedSpan[] = exporter.getFinishedSpans().map((span) => ({
          name: span.name,
          kind: span.kind,
          traceId: span.spanContext().traceId,
          spanId: span.spanContext().spanId,
          parentSpanId: span.parentSpanContext?.spanId,
          attributes: { ...span.attributes },
        }));
        process.send!({ spans });
      } else if (message === 'stop') {
        await app.close();
        await tracing.shutdown();
        process.exit(0);
      }
    })();
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
