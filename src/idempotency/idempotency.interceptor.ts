import {
  type CallHandler,
  type ExecutionContext,
  HttpStatus,
  Inject,
  Injectable,
  Logger,
  type NestInterceptor,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createHmac, randomBytes } from 'node:crypto';
import { from, lastValueFrom, type Observable } from 'rxjs';
import type { Caller } from '../auth/caller';
import { APP_CONFIG, type AppConfig } from '../config/app.config';
import { inTransaction } from '../database/transactions/transactions';
import { takeEntityTag } from '../http/conditional-requests';
import { CONSISTENCY_TOKEN } from '../http/consistency-token';
import { ProblemException } from '../http/problem';
import { countIdempotency } from '../metrics/idempotency-metrics';
import { fingerprintOf, hashKey, IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED, parseIdempotencyKey } from './idempotency-key';
import { IdempotencyRepository, type KeyLookup, type NewKey, type StoredKey } from './idempotency.repository';
import { UnavailableError } from '../database/errors/persistence-errors';

/** The scope of keys sent without a bearer token (sign-up). */
const ANONYMOUS_SCOPE = 'anonymous';
/** A stored response: status, the headers that matter (content-type, location, etag) and the body sent. */
interface StoredResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Route metadata set by @Idempotent({ lookUpFirst }): read the key's row before running the handler. */
export const LOOK_UP_FIRST = 'idempotency:lookUpFirst';
const REPLAY = Symbol('idempotencyReplay');
const OUTCOME_TO_STORE = Symbol('idempotencyOutcomeToStore');
type KeyedRequest = FastifyRequest & { caller?: Caller; [OUTCOME_TO_STORE]?: NewKey };
type KeyedReply = FastifyReply & { [REPLAY]?: StoredResponse };

const JSON_TYPE = 'application/json; charset=utf-8';
/** The headers a response is stored with besides Content-Type (responseOf). */
const RERUN_HEADERS = ['location', 'etag'];

/**
 * The Idempotency-Key header (draft-ietf-httpapi-idempotency-key-header-07), on the routes marked
 * @Idempotent(). A request without the header runs as before. With it:
 * 1. the key is parsed (§2.1: an sf-string, 1–255 characters; else 400 naming the header) and the
 *    request fingerprinted (§2.4: method, route, canonical body, If-Match/If-None-Match);
 * 2. one transaction is opened around the whole handler (the services' own inTransaction() calls join
 *    it); the handler runs; its result is serialized here, by the route's schema, with its ETag;
 * 3. the key is stored with the response (status, Content-Type, Location, ETag, body) by the
 *    transaction's last statement before COMMIT (IdempotencyRepository.store). So a committed write
 *    always has its key and stored response; a rollback, a 5xx or a crash before COMMIT leaves no
 *    key, and the retry runs normally. Nothing is read before the write: a keyed write costs one
 *    statement more than an unkeyed one (ADR 0014) — except on routes marked
 *    @Idempotent({ lookUpFirst: true }), whose stored key is looked up first and replayed unrun;
 * 4. a key that is already stored (§2.6 "Retry"): the store inserts nothing — or the handler fails,
 *    as a retry's often does — and the write is rolled back; then the same fingerprint gets the
 *    stored response again, byte for byte, with `Idempotent-Replayed: true` (and a fresh
 *    Consistency-Token, a later position than the original's, which reads the write all the same);
 *    another fingerprint gets 422 (§2.7). A concurrent request with the key (§2.6 "Concurrent
 *    Request") whose store finds the key held by another open transaction stores nothing, without
 *    waiting, and gets 409 with Retry-After;
 * 5. a 4xx, whose write rolled back, is stored after it has been rendered, in a small transaction of
 *    its own (idempotentResponses), unless it says to retry (Retry-After, 408); the key is free in
 *    between, so a concurrent retry may run instead: then its outcome is the one stored.
 * Scope (§5 "composite key"): a signed-in caller's keys are theirs (`user:<id>`); anonymous sign-up
 * keys share one scope, where only the same fingerprint — the same body, password included — replays.
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  private readonly secret: Buffer;
  private readonly ttlMs: number;
  private readonly maxLive: number;

  constructor(
    private readonly keys: IdempotencyRepository,
    private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>,
    private readonly reflector: Reflector,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    // A key of its own, derived from the JWT secret every instance shares (so all compute one fingerprint).
    this.secret = createHmac('sha256', config.auth.jwtSecret ?? randomBytes(32))
      .update('idempotency-fingerprint')
      .digest();
    this.ttlMs = config.idempotency.keyTtlSeconds * 1000;
    this.maxLive = config.idempotency.maxKeysPerCaller;
  }

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const http = context.switchToHttp();
    const request = http.getRequest<KeyedRequest>();
    const field = request.headers['idempotency-key'];
    if (field === undefined) return next.handle();
    const key = parseIdempotencyKey(Array.isArray(field) ? field.join(', ') : field);
    const now = new Date();
    const attempt: NewKey = {
      scope: request.caller ? `user:${request.caller.id}` : ANONYMOUS_SCOPE,
      keyHash: hashKey(key),
      fingerprint: fingerprintOf(request, this.secret),
      createdAt: now,
      expiresAt: new Date(now.getTime() + this.ttlMs),
      // Windows one lifetime long: every live key was stored in this window or the one before.
      cap: request.caller
        ? { max: this.maxLive, windowStart: now.getTime() - (now.getTime() % this.ttlMs), windowMs: this.ttlMs }
        : undefined,
    };
    const lookUpFirst = this.reflector.get<boolean | undefined>(LOOK_UP_FIRST, context.getHandler()) === true;
    return from(this.run(attempt, request, http.getResponse<KeyedReply>(), next, lookUpFirst));
  }

  private async run(
    attempt: NewKey,
    request: KeyedRequest,
    reply: KeyedReply,
    next: CallHandler,
    lookUpFirst: boolean,
  ): Promise<unknown> {
    if (lookUpFirst) {
      const lookup = await this.keys.find(attempt);
      if (lookup.state === 'stored') return this.replay(lookup.stored, attempt, reply);
    }
    let ran: StoredResponse;
    try {
      ran = await inTransaction(this.txHost, async () => {
        const response = responseOf(reply, await lastValueFrom(next.handle(), { defaultValue: undefined }));
        const stored = await this.keys.store(attempt, {
          status: response.status,
          headers: JSON.stringify(response.headers),
          body: response.body,
        });
        if (!stored) throw new KeyNotStored(); // rolls the write back
        return response;
      });
    } catch (error) {
      return this.afterRollback(error, attempt, request, reply);
    }
    countIdempotency('stored');
    void reply.type(JSON_TYPE);
    return ran.body;
  }

  /**
   * The write rolled back: because its key was stored already (a retry, whose handler ran again and
   * was undone; a concurrent request, whose insert waited for the first to commit) or the caller is
   * at the cap (KeyNotStored), or because the handler failed — which a retry's handler often does
   * where the original succeeded (the email now taken, the If-Match stale, the row deleted). So the
   * key's stored row decides: the same request replays it; another request gets 422. Without one,
   * the handler's own error stands (stored by idempotentResponses if it is a lasting 4xx).
   */
  private async afterRollback(
    error: unknown,
    attempt: NewKey,
    request: KeyedRequest,
    reply: KeyedReply,
  ): Promise<unknown> {
    // The database is unreachable: the lookup would fail too, after the pool's acquire timeout.
    if (error instanceof UnavailableError) throw error;
    let lookup: KeyLookup;
    try {
      lookup = await this.keys.find(attempt);
    } catch (lookupError) {
      // Whether the key's write committed is unknown: the handler's own 4xx (a rerun's 404 for a DELETE
      // that did happen, a 412 for a PATCH that did) would tell the client it did not. The lookup's
      // failure (a 5xx: nothing stored, the retry runs) says nothing either way.
      throw error instanceof KeyNotStored ? this.inUse() : lookupError;
    }
    if (lookup.state === 'stored') return this.replay(lookup.stored, attempt, reply);
    if (lookup.state === 'full' && error instanceof KeyNotStored) {
      countIdempotency('limit');
      throw new ProblemException(
        HttpStatus.TOO_MANY_REQUESTS,
        `Too many new Idempotency-Keys (${this.maxLive} per key lifetime); retry later, when older ones have expired`,
        { type: '/problems/idempotency-key-limit', retryAfterSeconds: 60 },
      );
    }
    // Not stored, and nothing committed under the key: another request is storing it right now.
    if (error instanceof KeyNotStored) throw this.inUse();
    request[OUTCOME_TO_STORE] = attempt; // idempotentResponses stores it if it is rendered as a lasting 4xx
    throw error;
  }

  /** The stored response for the same request (§2.6); 422 naming Idempotency-Key for another one (§2.7). */
  private replay(found: StoredKey, attempt: NewKey, reply: KeyedReply): string {
    if (found.fingerprint !== attempt.fingerprint) {
      countIdempotency('mismatch');
      const detail =
        'This Idempotency-Key was already used for a different request (method, path, body or preconditions); use a new key';
      throw new ProblemException(HttpStatus.UNPROCESSABLE_ENTITY, detail, {
        type: '/problems/idempotency-key-reused',
        errors: [{ field: IDEMPOTENCY_KEY, messages: [detail] }],
      });
    }
    countIdempotency('replayed');
    reply[REPLAY] = {
      status: found.responseStatus,
      headers: JSON.parse(found.responseHeaders) as Record<string, string>,
      body: found.responseBody,
    };
    return reply[REPLAY].body;
  }

  /** 409 with Retry-After (§2.6 "Concurrent Request"): the key is held, and nothing is stored under it yet. */
  private inUse(): ProblemException {
    countIdempotency('conflict');
    return new ProblemException(
      HttpStatus.CONFLICT,
      'A request with this Idempotency-Key is still being processed; retry after Retry-After',
      { type: '/problems/idempotency-key-in-use', retryAfterSeconds: 1 },
    );
  }
}

/** Thrown inside the write's transaction when its key could not be stored: rolls the write back. */
class KeyNotStored extends Error {}

/**
 * The handler's result as it will be sent: serialized now by the route's response schema (what
 * Fastify would do after us), with its ETag (takeEntityTag), so the stored bytes are the sent bytes.
 */
function responseOf(reply: FastifyReply, result: unknown): StoredResponse {
  const body = result === undefined ? '' : typeof result === 'string' ? result : (reply.serialize(result) as string);
  const headers: Record<string, string> = { 'content-type': JSON_TYPE };
  const location = reply.getHeader('location');
  if (location !== undefined) headers.location = String(location);
  const etag = takeEntityTag(reply, body);
  if (etag) headers.etag = etag;
  return { status: reply.statusCode, headers, body };
}

/**
 * The response half of IdempotencyInterceptor, as the last onSend hook (after entityTags and
 * consistencyTokens): a replay gets the stored status, headers and body, and `Idempotent-Replayed:
 * true`; a signed-in caller's keyed request that failed with a lasting 4xx has that response stored
 * (a 5xx, a 408, a 4xx with Retry-After, or an anonymous caller's 4xx is not: the retry runs). Storing is awaited before the response goes out,
 * so a client's next retry sees it; if storing fails, the 4xx is sent all the same (the retry then runs).
 */
export function idempotentResponses(fastify: FastifyInstance, keys: IdempotencyRepository): void {
  const logger = new Logger('Idempotency');
  // A callback hook, not an async one: most responses are neither replays nor keyed 4xx, and pass
  // through without a promise; only storing an outcome waits for the database.
  fastify.addHook('onSend', (request: KeyedRequest, reply: KeyedReply, payload, done) => {
    const replay = reply[REPLAY];
    if (replay) {
      // The handler ran again before its write was rolled back: what it set is not what was stored.
      for (const name of RERUN_HEADERS) reply.removeHeader(name);
      void reply.code(replay.status).headers(replay.headers).header(IDEMPOTENT_REPLAYED, 'true');
      if (replay.status >= 300) reply.removeHeader(CONSISTENCY_TOKEN);
      return done(null, replay.body);
    }
    const attempt = request[OUTCOME_TO_STORE];
    const status = reply.statusCode;
    if (!attempt || status < 400 || status > 499 || status === 408 || reply.hasHeader('retry-after')) {
      return done(null, payload);
    }
    // An anonymous caller's 4xx is not kept: nothing would bound how many such rows one client leaves.
    if (attempt.scope === ANONYMOUS_SCOPE || typeof payload !== 'string') return done(null, payload);
    void storeOutcome(keys, attempt, reply, payload, logger).then(() => done(null, payload));
  });
}

/**
 * Stores a keyed request's 4xx (`payload`, as sent) as its key's outcome. Never rejects: if storing
 * fails, the failure is logged and the 4xx goes out all the same (the retry then runs).
 */
async function storeOutcome(
  keys: IdempotencyRepository,
  attempt: NewKey,
  reply: FastifyReply,
  payload: string,
  logger: Logger,
): Promise<void> {
  const status = reply.statusCode;
  try {
    const contentType = String(reply.getHeader('content-type') ?? JSON_TYPE);
    const stored = await keys.insertOutcome(attempt, {
      status,
      headers: JSON.stringify({ 'content-type': contentType }),
      body: payload,
    });
    if (stored) countIdempotency('stored');
  } catch (error) {
    const { method, url } = reply.request;
    logger.warn(
      `The ${status} of ${method} ${url} was not stored for its Idempotency-Key: ${(error as Error).message}`,
    );
  }
}
