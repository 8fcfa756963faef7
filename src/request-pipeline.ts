import { HttpStatus } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import helmet from 'helmet';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIPv6, type Socket } from 'node:net';
import { PinoLogger } from 'nestjs-pino';
import type { AppConfig } from './config/app.config';
import { ReplicaSet } from './database/reads/replicas';
import { Draining } from './health/draining';
import { IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED } from './idempotency/idempotency-key';
import { idempotentResponses } from './idempotency/idempotency.interceptor';
import { IdempotencyRepository } from './idempotency/idempotency.repository';
import { traceRequests } from './tracing/request-tracing';
import { entityTags } from './http/conditional-requests';
import { CONSISTENCY_TOKEN, consistencyTokens } from './http/consistency-token';
import { refuseContentEncodings } from './http/content-encoding';
import { parseJsonBodies } from './http/json-body';
import { logRequests } from './http/logging';
import { answerUnsupportedMethods } from './http/method-not-allowed';
import { refuseMalformedQueries } from './http/query-string';
import { buildOpenApiDocument } from './openapi.document';
import { setupOpenApi } from './http/openapi';
import { ProblemException, validationProblem } from './http/problem';
import { answerWithProblem, type ProblemDetailsFilter, refuseConnect } from './http/problem-details.filter';
import { serializeResponsesAsDocumented } from './http/response-serialization';
import { createValidationPipe } from './http/validation';
import { vary } from './http/vary';

/**
 * The request pipeline, installed here in this order. Fastify runs the hooks of one kind in the order
 * they were added (a plugin's hooks, CORS's too, count from where it was registered), so the calls
 * below are the stages, in order; ADR 0018 says why each is where it is.
 *
 * | phase          | stages, in order (file)                                                         |
 * |----------------|---------------------------------------------------------------------------------|
 * | Node's parser  | malformed request line or headers, header/body timeouts → 400/408/431 naming the part (answerClientError, client-errors.ts); CONNECT → 501 (refuseConnect; both problem-details.filter.ts) |
 * | routing        | bad URL, over-long path parameter → 400/414 naming the parameter (createApp's frameworkErrors, path-params.ts) |
 * | Node's Expect  | an expectation other than 100-continue is handed on as a request, marked (refuseUnmetExpectations); 100-continue is answered by Node |
 * | onRequest      | 1 securityHeaders · 2 CORS (@fastify/cors; a preflight ends here) · 3 echoRequestId · 4 requireOneHost → 400 · 5 refuseUnmetExpectations → 417 · 6 answerUnsupportedMethods → 405 (method-not-allowed.ts) · 7 refuseMalformedQueries → 400 (query-string.ts; the query was parsed while routing) · 8 traceRequests (tracing/) · 9 /docs/index.html → /docs/ (openapi.ts) · 10 endStuckClientsOnClose: tracks the request · 11 logRequests: the log context (logging.ts) · 12 recordHttpMetrics (metrics/, added at init) |
 * | preParsing     | refuseContentEncodings → 415 (content-encoding.ts)                              |
 * | parsing        | parseJsonBodies → 400/413/415 (json-body.ts)                                    |
 * | preHandler     | consistencyTokens → 400, else replica routing (consistency-token.ts; with replicas) |
 * | handler        | Nest: guards (auth, rate limit), ValidationPipe → 400 (validation.ts), interceptors (idempotency), the controller; every error → ProblemDetailsFilter |
 * | serialization  | the documented schema serializes 2xx bodies (response-serialization.ts)         |
 * | onSend         | 1 varyByOrigin (with a CORS allow-list) · 2 entityTags: ETag, 412, 304 (conditional-requests.ts) · 3 consistencyTokens' header · 4 idempotentResponses: replay or store (idempotency/) · 5 closeConnectionsWhileDraining |
 * | onResponse     | endStuckClientsOnClose forgets it · logRequests' line · recordHttpMetrics        |
 * | onRequestAbort | the same three, for a client that left first                                    |
 * | preClose       | endStuckClientsOnClose: a body still arriving during shutdown → 408; connections without a request closed |
 *
 * A hook that answers with a problem does it through answerWithProblem (problem-details.filter.ts),
 * so every problem has the filter's shape, headers, logging and metrics.
 */
export async function installRequestPipeline(
  app: NestFastifyApplication,
  config: AppConfig,
  problems: ProblemDetailsFilter,
): Promise<void> {
  const fastify: FastifyInstance = app.getHttpAdapter().getInstance();
  fastify.server.on('connect', refuseConnect);
  securityHeaders(fastify);
  const anyOrigin = config.corsOrigins.includes('*');
  if (config.corsOrigins.length > 0) {
    // Everything the API uses (Fetch standard, CORS protocol): without PATCH/DELETE and If-Match in
    // the preflight answer, browsers block every edit.
    app.enableCors({
      origin: anyOrigin ? '*' : config.corsOrigins,
      methods: ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'],
      allowedHeaders: [
        'Authorization',
        'Content-Type',
        'If-Match',
        'If-None-Match',
        'X-Request-Id',
        CONSISTENCY_TOKEN,
        IDEMPOTENCY_KEY,
      ],
      exposedHeaders: [
        'Location',
        'Link',
        'ETag',
        'Retry-After',
        'WWW-Authenticate',
        'X-Request-Id',
        CONSISTENCY_TOKEN,
        IDEMPOTENT_REPLAYED,
      ],
      maxAge: 600,
    });
    if (!anyOrigin) varyByOrigin(fastify);
  }
  refuseContentEncodings(fastify);
  parseJsonBodies(fastify);
  entityTags(fastify);
  const replicas = app.get(ReplicaSet);
  if (replicas.enabled) consistencyTokens(fastify, replicas);
  idempotentResponses(fastify, app.get(IdempotencyRepository)); // after entityTags and consistencyTokens: a replay's headers win
  const draining = app.get(Draining);
  closeConnectionsWhileDraining(fastify, draining);
  echoRequestId(fastify);
  requireOneHost(fastify);
  refuseUnmetExpectations(fastify);
  answerUnsupportedMethods(fastify);
  refuseMalformedQueries(fastify);
  if (config.tracing.enabled) traceRequests(fastify);
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(problems);
  const document = buildOpenApiDocument(app);
  serializeResponsesAsDocumented(fastify, document);
  setupOpenApi(app, document);
  endStuckClientsOnClose(fastify, config.shutdownTimeoutMs);
  // It needs nestjs-pino's PinoLogger, a transient provider (resolve()).
  if (config.log.level !== 'silent') logRequests(fastify, await app.resolve(PinoLogger));
}

/**
 * Helmet's default security headers on every response, set as Fastify reply headers. Helmet's
 * defaults depend on nothing in the request (no CSP nonce), so its middleware runs once, at startup,
 * against a recorder, and each request gets the recorded headers in one `reply.headers()` call.
 * Running helmet per request cost more: a dozen `setHeader` calls on the raw response, which also
 * make Node merge every other header one by one when the reply is written.
 *
 * Two recordings: over HTTPS (TLS here, or `X-Forwarded-Proto: https` from a trusted proxy, see
 * TRUST_PROXY_HOPS) all of helmet's defaults; over plain HTTP neither CSP `upgrade-insecure-requests`
 * (the browser would fetch Swagger UI's assets over https, which a plain-HTTP server does not serve)
 * nor `Strict-Transport-Security` (RFC 6797 §7.2: not sent over non-secure transport).
 */
function securityHeaders(fastify: FastifyInstance): void {
  const overHttps = helmetHeaders();
  const overHttp = helmetHeaders({
    strictTransportSecurity: false,
    contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } },
  });
  fastify.addHook('onRequest', (request, reply, done) => {
    void reply.headers(request.protocol === 'https' ? overHttps : overHttp);
    done();
  });
}

/** The headers `helmet(options)` sets on a response (names lower-cased), recorded from one dry run. */
export function helmetHeaders(options?: Parameters<typeof helmet>[0]): Record<string, string> {
  const headers: Record<string, string> = {};
  const recorder = {
    setHeader: (name: string, value: string) => (headers[name.toLowerCase()] = value),
    removeHeader: (name: string) => delete headers[name.toLowerCase()],
  };
  let ran = false;
  helmet(options)({} as IncomingMessage, recorder as unknown as ServerResponse, () => (ran = true));
  if (!ran) throw new Error('helmet did not finish synchronously: its headers cannot be recorded once');
  return headers;
}

/**
 * With a list of allowed origins, whether a response carries `Access-Control-Allow-Origin` depends on
 * the request's `Origin`: every response says so in `Vary` (Fetch standard, "CORS protocol and HTTP
 * caches"), errors and 304s included, merged with the route's own `Vary` (which it would otherwise
 * replace), so a shared cache never serves one origin's answer to another.
 */
function varyByOrigin(fastify: FastifyInstance): void {
  fastify.addHook('onSend', (_request, reply, payload, done) => {
    vary(reply, 'Origin');
    done(null, payload);
  });
}

/**
 * Once shutdown has begun, every response closes its keep-alive connection: busy clients then
 * reconnect (elsewhere) instead of holding this server open, so draining always finishes.
 */
function closeConnectionsWhileDraining(fastify: FastifyInstance, draining: Draining): void {
  fastify.addHook('onSend', (_request, reply, payload, done) => {
    if (draining.active) reply.header('Connection', 'close');
    done(null, payload);
  });
}

/** Every response names its request id (see http/logging.ts), so a client can quote it. */
function echoRequestId(fastify: FastifyInstance): void {
  fastify.addHook('onRequest', (request, reply, done) => {
    reply.header('X-Request-Id', request.id);
    done();
  });
}

/**
 * RFC 9112 §3.2: an HTTP/1.1 request without a Host header, or with more than one, or any request whose
 * Host is not `uri-host [":" port]` (RFC 9110 §7.2; RFC 3986 §3.2.2, §3.2.3), is a 400. Node would
 * answer the first itself with an empty 400 (its `requireHostHeader`, turned off in createApp), serve
 * the second with the first Host and take any text as the third; here each gets a problem+json
 * naming the header. HTTP/1.0 requests may omit Host.
 */
function requireOneHost(fastify: FastifyInstance): void {
  let lastAccepted: string | undefined; // a client sends the same Host on every request: checked once
  fastify.addHook('onRequest', (request, reply, done) => {
    const raw = request.raw.rawHeaders;
    let hosts = 0;
    for (let i = 0; i < raw.length; i += 2) if (raw[i].length === 4 && raw[i].toLowerCase() === 'host') hosts++;
    const message =
      hosts > 1
        ? 'A request must have one Host header'
        : hosts === 0
          ? request.raw.httpVersion === '1.0'
            ? undefined
            : 'An HTTP/1.1 request must have a Host header'
          : hostFault(request.raw.headers.host ?? '', lastAccepted);
    if (message === undefined) {
      if (hosts === 1) lastAccepted = request.raw.headers.host;
      return done();
    }
    void reply.header('Connection', 'close'); // which authority the client meant is unknown: no further requests
    answerWithProblem(request, reply, validationProblem([{ field: 'Host', messages: [message] }]));
  });
}

/** `uri-host [":" port]`: an IP literal in brackets, or a reg-name (IPv4 addresses are reg-names too). */
const HOST = /^(?:\[(?<literal>[^\]]*)\]|(?<name>(?:[\w.~!$&'()*+,;=-]|%[0-9A-Fa-f]{2})+))(?::(?<port>\d*))?$/;
/** RFC 3986 §3.2.2's IPvFuture, the other form an IP literal may take. */
const IP_FUTURE = /^v[0-9A-Fa-f]+\.[\w.~!$&'()*+,;=:-]+$/;

/**
 * Why a Host value is not `uri-host [":" port]`, or undefined when it is. No userinfo (RFC 9112 §3.2:
 * the client leaves it out), no spaces, one port of decimal digits up to 65535, and a host that is not
 * empty: an `http` URI has one (RFC 9110 §4.2.1). `accepted`, a value already found valid, is not checked again.
 */
function hostFault(value: string, accepted?: string): string | undefined {
  if (value === accepted) return undefined;
  if (value.includes('@')) return 'Host must not contain userinfo (user@): it is uri-host [":" port] (RFC 9110 §7.2)';
  const parts = HOST.exec(value)?.groups;
  const literal = parts?.literal;
  if (!parts || (literal !== undefined && !isIPv6(literal) && !IP_FUTURE.test(literal))) {
    return 'Host must be a host name or IP address with at most one ":port" (uri-host [":" port], RFC 9110 §7.2)';
  }
  if (parts.port && Number(parts.port) > 65_535) return 'The port in Host must be at most 65535';
  return undefined;
}

/**
 * RFC 9110 §10.1.1: an expectation the server cannot meet (any but `100-continue`) is a 417. Node
 * writes that 417 itself, empty, unless the server listens for 'checkExpectation'; here the listener
 * hands the request on to Fastify, marked, and this hook answers it as problem+json naming Expect,
 * with the request id, headers, log line and metrics of every other answer. `Connection: close`: the
 * client may still send the body it held back. `100-continue` is Node's to answer (a `100 Continue`,
 * then the request as usual), and HTTP/1.0 expectations are ignored, as Node does.
 */
function refuseUnmetExpectations(fastify: FastifyInstance): void {
  const unmet = new WeakSet<IncomingMessage>();
  fastify.server.on('checkExpectation', (request: IncomingMessage, response: ServerResponse) => {
    unmet.add(request);
    fastify.server.emit('request', request, response);
  });
  fastify.addHook('onRequest', (request, reply, done) => {
    if (!unmet.has(request.raw)) return done();
    void reply.header('Connection', 'close');
    const message = 'The only expectation this server can meet is 100-continue';
    const failed = new ProblemException(HttpStatus.EXPECTATION_FAILED, `Expect cannot be met: ${message}`, {
      errors: [{ field: 'Expect', messages: [message] }],
    });
    answerWithProblem(request, reply, failed);
  });
}

/**
 * Shutdown ends a request whose body is still arriving. Closing the server stops Node's checks of
 * HTTP_REQUEST_TIMEOUT_MS, so a client that sent its headers and part of its body, then nothing,
 * would otherwise hold the server open until SHUTDOWN_TIMEOUT_MS and the process would exit 1.
 * When the server starts closing, such a request has half of SHUTDOWN_TIMEOUT_MS to complete its
 * body; then it is answered 408 problem+json (RFC 9110 §15.5.9) with `Connection: close` (RFC 9112
 * §9.6), logged as a 408, and its connection closed. At the same moment every connection without a
 * request in flight is closed: one that sent nothing or only part of its headers (a port scanner, a load
 * balancer's pre-opened connection) would hold the server open just the same, and no answer is owed
 * to a request that never arrived (RFC 9112 §9.6). Requests whose body has arrived are left to finish.
 */
function endStuckClientsOnClose(fastify: FastifyInstance, shutdownTimeoutMs: number): void {
  // Each open connection and the reply it is serving, updated in place. Not a collection of replies:
  // V8 promotes to the old generation whatever passes through a long-lived Set or Map whose entries
  // come and go (BENCHMARKS.md, "A Set of requests in flight"), here every request's objects.
  const serving = new Map<Socket, FastifyReply | undefined>();
  fastify.server.on('connection', (socket: Socket) => {
    serving.set(socket, undefined);
    socket.once('close', () => serving.delete(socket));
  });
  // Only connections the server accepted: light-my-request's (inject) never close.
  fastify.addHook('onRequest', (request, reply, done) => {
    if (serving.has(request.raw.socket)) serving.set(request.raw.socket, reply);
    done();
  });
  // Only if it is still this request's: a pipelined next request may already be the one served.
  const forget = (request: FastifyRequest) => {
    if (serving.get(request.raw.socket)?.request === request) serving.set(request.raw.socket, undefined);
  };
  fastify.addHook('onResponse', (request, _reply, done) => {
    forget(request);
    done();
  });
  fastify.addHook('onRequestAbort', (request, done) => {
    forget(request);
    done();
  });
  fastify.addHook('preClose', (done) => {
    const timer = setTimeout(() => {
      for (const [socket, reply] of serving) {
        if (!reply) {
          socket.destroy();
          continue;
        }
        if (reply.sent || reply.request.raw.complete) continue;
        void reply.header('Connection', 'close');
        const timedOut = new ProblemException(
          HttpStatus.REQUEST_TIMEOUT,
          'The server is shutting down and the request body did not arrive in time',
        );
        answerWithProblem(reply.request, reply, timedOut);
      }
    }, shutdownTimeoutMs / 2);
    timer.unref();
    done();
  });
}
