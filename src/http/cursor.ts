import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { Module } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app.config';
import { validationProblem } from './problem';

/** One key of a keyset position: a timestamp, a text (a name, a title) or an id. */
export type KeyKind = 'date' | 'text' | 'id';
/** A keyset position as the list's ORDER BY columns read it, e.g. `[createdAt, id]`. */
export type KeysetValue = Date | string | number;

/**
 * Which list a cursor belongs to: the list's name (e.g. `posts`, `post-comments`) and everything that
 * decides its rows and their order — path ids, `sort`, filters — but not `limit` or `include`, which
 * may change from page to page. Values must be the validated ones (e.g. `q` after NFC).
 */
export interface CursorScope {
  list: string;
  keys: readonly KeyKind[];
  params?: Record<string, string | number | undefined>;
}

/**
 * Opaque keyset cursors: `base64url(json).signature`, the JSON being `[scope tag, ...position]`.
 * The HMAC makes them tamper-evident, so a forged or edited cursor is a 400 rather than a query at an
 * arbitrary position; the scope tag (a hash of CursorScope) binds each cursor to the list, sort and
 * filters that issued it, so one used on another list is a 400 too, never a silently empty page
 * (e2a#782: a client that got `200 []` stopped paging).
 */
export class CursorCodec {
  private readonly secret: Buffer;

  /** Without a configured secret, cursors stay valid only as long as this process runs. */
  constructor(secret?: string) {
    this.secret = secret ? Buffer.from(secret) : randomBytes(32);
  }

  /** The cursor of the position after `position` (the last row of a page) in `scope`'s list. */
  encode(scope: CursorScope, position: readonly KeysetValue[]): string {
    const values = position.map((value) => (value instanceof Date ? value.toISOString() : value));
    const payload = Buffer.from(JSON.stringify([scopeTag(scope), ...values])).toString('base64url');
    return `${payload}.${this.sign(payload)}`;
  }

  /**
   * The position a cursor of `scope` carries, typed as `scope.keys` says. Throws a 400 problem naming
   * `cursor` when it is malformed or not signed by this server's key, or was issued for another list,
   * sort or filters.
   */
  decode(scope: CursorScope, cursor: string): KeysetValue[] {
    const [payload, signature, extra] = cursor.split('.');
    if (!payload || !signature || extra !== undefined || !this.verify(payload, signature)) throw invalidCursor();
    let decoded: unknown;
    try {
      decoded = JSON.parse(Buffer.from(payload, 'base64url').toString());
    } catch {
      throw invalidCursor();
    }
    if (!Array.isArray(decoded) || decoded.length !== scope.keys.length + 1) throw invalidCursor();
    const [tag, ...values] = decoded as unknown[];
    if (tag !== scopeTag(scope)) throw foreignCursor();
    return values.map((value, i) => typed(scope.keys[i], value));
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.secret).update(payload).digest('base64url').slice(0, 22);
  }

  private verify(payload: string, signature: string): boolean {
    const expected = Buffer.from(this.sign(payload));
    const given = Buffer.from(signature);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }
}

/** Provides the one CursorCodec (keyed by CURSOR_SECRET) to every module with a list. */
@Module({
  providers: [
    {
      provide: CursorCodec,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => new CursorCodec(config.cursorSecret),
    },
  ],
  exports: [CursorCodec],
})
export class CursorModule {}

/** 11 base64url characters (66 bits) of SHA-256 over the scope in a fixed key order. */
function scopeTag({ list, keys, params = {} }: CursorScope): string {
  const canonical = JSON.stringify([
    list,
    keys,
    Object.keys(params)
      .sort()
      .map((key) => [key, params[key] ?? null]),
  ]);
  return createHash('sha256').update(canonical).digest('base64url').slice(0, 11);
}

function typed(kind: KeyKind, value: unknown): KeysetValue {
  if (kind === 'id' && Number.isSafeInteger(value) && (value as number) >= 1) return value as number;
  if (kind === 'text' && typeof value === 'string') return value;
  if (kind === 'date' && typeof value === 'string') {
    const date = new Date(value);
    if (!Number.isNaN(date.getTime())) return date;
  }
  throw invalidCursor();
}

function invalidCursor() {
  return validationProblem([{ field: 'cursor', messages: ['cursor is malformed or was not issued by this server'] }]);
}

function foreignCursor() {
  return validationProblem([
    {
      field: 'cursor',
      messages: [
        'cursor was issued for another list, sort or filter: follow the Link of this list, or start again without cursor',
      ],
    },
  ]);
}
