import { SpanKind } from '@opentelemetry/api';
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import type { ExportedSpan } from './setup/traced-app';
import { PASSWORD } from './setup/accounts';
import { itOn } from './setup/dialect';

/** How long the traced app may take to listen (ts-node compiles it first); less than the hook's timeout. */
const START_WITHIN_MS = 150_000;

/**
 * The app with tracing on (test/setup/traced-app.ts), its log lines, and a way to read its spans.
 * Throws, and kills the process, when it exited or did not listen within START_WITHIN_MS: a process
 * left running keeps the whole test run from ending.
 */
async function startTracedApp() {
  const child: ChildProcess = fork(join(__dirname, 'setup', 'traced-app.ts'), {
    execArgv: ['-r', 'ts-node/register/transpile-only'],
    env: {
      ...process.env,
      NODE_OPTIONS: '',
      LOG_LEVEL: 'info',
      LOG_FORMAT: 'json',
      DB_LOGGING: 'true', // query log lines too: each must carry the trace id
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', // turns tracing on; the spans go to memory
    },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const next = async <T>(): Promise<T> => {
    const [message] = (await Promise.race([once(child, 'message'), once(child, 'exit')])) as [T];
    if (child.exitCode !== null) throw new Error(`traced app exited:\n${output}`);
    return message;
  };
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`traced app not listening within ${START_WITHIN_MS} ms:\n${output}`)),
      START_WITHIN_MS,
    );
  });
  const { port } = await Promise.race([next<{ port: number }>(), late])
    .catch((error: unknown) => {
      child.kill('SIGKILL');
      throw error;
    })
    .finally(() => clearTimeout(timer));
  return {
    base: `http://127.0.0.1:${port}`,
    logLines: () =>
      output
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { requestId?: string; traceId?: string; msg: string }),
    spans: async () => {
      child.send('spans');
      return (await next<{ spans: ExportedSpan[] }>()).spans;
    },
    stop: async () => {
      child.send('stop');
      if (child.exitCode === null) await once(child, 'exit');
    },
  };
}

type Node = ExportedSpan & { children: Node[] };

/** The trace whose HTTP span carries `requestId`, as a tree from its root. */
function traceOf(spans: ExportedSpan[], requestId: string): { root: Node; all: ExportedSpan[] } {
  const http = spans.filter((span) => span.attributes['http.request.id'] === requestId);
  expect(http).toHaveLength(1);
  const all = spans.filter((span) => span.traceId === http[0].traceId);
  const nodes = new Map(all.map((span) => [span.spanId, { ...span, children: [] as Node[] }]));
  const roots: Node[] = [];
  for (const node of nodes.values()) {
    const parent = node.parentSpanId ? nodes.get(node.parentSpanId) : undefined;
    if (parent) parent.children.push(node);
    else roots.push(node);
  }
  expect(roots).toHaveLength(1); // one trace, one root: nothing of the request escaped it
  return { root: roots[0], all };
}

const statementOf = (span: ExportedSpan) => String(span.attributes['db.query.text'] ?? span.attributes['db.statement']);
const sqlSpans = (node: Node): Node[] => node.children.filter((child) => child.kind === SpanKind.CLIENT);

describe('tracing (OpenTelemetry, in-memory exporter)', () => {
  let app: Awaited<ReturnType<typeof startTracedApp>>;
  beforeAll(async () => (app = await startTracedApp()), 180_000);
  afterAll(() => app?.stop());

  itOn(
    ['postgres'],
    'SQL spans come from @opentelemetry/instrumentation-pg; mysql2 and better-sqlite3 statements are not traced (HTTP and handler spans are)',
  )(
    'one GET /users/{id} is one trace: HTTP span → Nest handler → the 3 SQL statements of the nested read',
    async () => {
      const email = `traced-${Date.now()}@example.com`;
      const created = await fetch(`${app.base}/users`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-Request-Id': 'trace-create' },
        body: JSON.stringify({
          name: 'Traced',
          email,
          password: PASSWORD,
          profile: { bio: 'b' },
          posts: [{ title: 'T', body: 'B' }],
        }),
      });
      expect(created.status).toBe(201);
      const { id } = (await created.json()) as { id: number };
      const read = await fetch(`${app.base}/users/${id}`, { headers: { 'X-Request-Id': 'trace-read' } });
      expect(read.status).toBe(200);

      const spans = await app.spans();
      const { root, all } = traceOf(spans, 'trace-read');
      expect(root).toMatchObject({
        kind: SpanKind.SERVER,
        name: 'GET /users/:id', // the route pattern, never the URL
        attributes: expect.objectContaining({ 'http.route': '/users/:id', 'http.response.status_code': 200 }),
      });
      expect(root.children).toHaveLength(1);
      const [handler] = root.children;
      expect(handler.name).toBe('UsersController.findOne');
      const statements = sqlSpans(handler);
      expect(statements.map(statementOf)).toEqual([
        expect.stringMatching(/^SELECT .* FROM "?users"? /),
        // One author, one post: each read as a plain statement (first-rows.ts), not the LATERAL join.
        expect.stringMatching(/^SELECT .* FROM posts p WHERE p\.author_id = \$1 .*LIMIT \$2$/i),
        expect.stringMatching(/^SELECT .* FROM comments WHERE post_id = \$1 .*LIMIT \$2$/i),
      ]);
      expect(all).toHaveLength(5); // and nothing else in the trace
      // Statement text with placeholders only: no parameter values anywhere on the spans.
      expect(JSON.stringify(all)).not.toContain(email);
    },
  );

  itOn(
    ['postgres'],
    'SQL spans come from @opentelemetry/instrumentation-pg; mysql2 and better-sqlite3 statements are not traced (HTTP and handler spans are)',
  )('a write’s trace holds its transaction: BEGIN, the INSERTs and COMMIT under one db.transaction span', async () => {
    const email = `traced-write-${Date.now()}@example.com`;
    const res = await fetch(`${app.base}/users`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Request-Id': 'trace-write' },
      body: JSON.stringify({ name: 'Writer', email, password: PASSWORD, profile: { bio: 'b' } }),
    });
    expect(res.status).toBe(201);
    const { root, all } = traceOf(await app.spans(), 'trace-write');
    expect(root.name).toBe('POST /users');
    const transaction = all.find((span) => span.name === 'db.transaction')!;
    const inTransaction = all.filter((span) => span.parentSpanId === transaction.spanId).map(statementOf);
    expect(inTransaction[0]).toMatch(/^(START TRANSACTION|BEGIN)/);
    expect(inTransaction.filter((sql) => /^INSERT INTO "?(users|profiles)"? /.test(sql))).toHaveLength(2);
    expect(inTransaction.at(-1)).toBe('COMMIT');
    expect(JSON.stringify(all)).not.toContain(email);
    expect(JSON.stringify(all)).not.toContain(PASSWORD); // nor the password, nor its hash's input
  });

  it('every log line of a request carries its trace id, the query log included', async () => {
    // A request of its own: the nested read above is skipped where SQL is not traced.
    const read = await fetch(`${app.base}/users?limit=1`, { headers: { 'X-Request-Id': 'trace-logs' } });
    expect(read.status).toBe(200);
    const { root } = traceOf(await app.spans(), 'trace-logs');
    // The request line is written once the response is out, and reaches us through a pipe: wait for it.
    const lines = await linesOf(app, 'trace-logs', (line) => line.msg === 'request completed');
    expect(lines.length).toBeGreaterThanOrEqual(2); // the page's statement (DB_LOGGING) + "request completed"
    expect(lines.map((line) => line.traceId)).toEqual(lines.map(() => root.traceId));
  });
});

/** The app's log lines of a request, once one of them satisfies `last` (at most 5 s later). */
async function linesOf(
  app: { logLines(): { requestId?: string; traceId?: string; msg: string }[] },
  requestId: string,
  last: (line: { msg: string }) => boolean,
) {
  for (let waited = 0; ; waited += 20) {
    const lines = app.logLines().filter((line) => line.requestId === requestId);
    if (lines.some(last) || waited >= 5_000) return lines;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
