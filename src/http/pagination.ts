import type { FastifyRequest } from 'fastify';
import { validationProblem } from './problem';
import type { KeysetValue } from './cursor';
import type { PaginationQuery } from './pagination.query';

/** A page of roots plus, when more exist, the cursor of the next page (found by reading one row past the limit). */
export interface Page<T> {
  items: T[];
  nextCursor?: string;
}

/** Where a page starts: after a keyset position (from a cursor), or at an offset (the first page: 0). */
export type PageStart = { after: KeysetValue[] } | { offset: number };

/**
 * Reads `limit + 1` rows so a page knows whether a next one exists without a COUNT query; the next
 * page's cursor is made from the last row kept (`cursorOf`).
 */
export function toPage<T>(rows: T[], limit: number, cursorOf: (last: T) => string): Page<T> {
  const items = rows.slice(0, limit);
  return { items, nextCursor: rows.length > limit ? cursorOf(items[limit - 1]) : undefined };
}

/**
 * Where the page of `query` starts, its cursor decoded by `decode`. `offset` and `cursor` together
 * are a 400 naming cursor: a cursor is a position, not a page number to add an offset to.
 */
export function pageStart(
  { cursor, offset }: Pick<PaginationQuery, 'cursor' | 'offset'>,
  decode: (cursor: string) => KeysetValue[],
): PageStart {
  if (cursor === undefined) return { offset: offset ?? 0 };
  if (offset) {
    throw validationProblem([{ field: 'cursor', messages: ['cursor and offset cannot be used together'] }]);
  }
  return { after: decode(cursor) };
}

/**
 * RFC 8288 `Link` header value pointing at the next page: the same path and query (filters, sort,
 * limit, include) with `offset` dropped and `cursor` set, so a client that follows links never pays
 * for an offset.
 */
export function nextPageLink(request: FastifyRequest, limit: number, cursor: string): string {
  const url = new URL(request.originalUrl, 'http://placeholder');
  url.searchParams.delete('offset');
  url.searchParams.set('limit', String(limit));
  url.searchParams.set('cursor', cursor);
  return `<${url.pathname}${url.search}>; rel="next"`;
}
