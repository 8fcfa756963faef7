import type { FastifyRequest } from 'fastify';
import type { PaginationQuery } from './pagination.query';

/** A page of roots plus whether more exist (found by reading one row past the limit). */
export interface Page<T> {
  items: T[];
  hasMore: boolean;
}

/** Reads `limit + 1` rows so a page knows whether a next one exists without a COUNT query. */
export function toPage<T>(rows: T[], limit: number): Page<T> {
  return { items: rows.slice(0, limit), hasMore: rows.length > limit };
}

/** RFC 8288 `Link` header value pointing at the next page: same path and filters, offset advanced. */
export function nextPageLink(request: FastifyRequest, { limit, offset }: PaginationQuery): string {
  const url = new URL(request.originalUrl, 'http://placeholder');
  url.searchParams.set('limit', String(limit));
  url.searchParams.set('offset', String(offset + limit));
  return `<${url.pathname}${url.search}>; rel="next"`;
}
