import type { FastifyInstance } from 'fastify';
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { once } from 'node:events';
import type { MetricsConfig } from '../config/app.config';
import { HIDDEN_ROUTE } from '../http/method-not-allowed';
import { registry } from './metrics';

export const METRICS_PATH = '/metrics';

/**
 * Who may read /metrics (they are not public):
 * - METRICS_TOKEN set: whoever sends `Authorization: Bearer <token>` (RFC 6750 §2.1);
 * - otherwise, on the main port: only a direct connection from loopback. A request a proxy forwarded
 *   (X-Forwarded-For or Forwarded, RFC 7239) is not local even if the proxy runs on this host;
 * - otherwise, on METRICS_PORT: anyone who can reach that port (the operator chose to expose it).
 * Anyone else gets the same 404 as an unknown path (RFC 9110 §15.5.5 lets a server hide a resource).
 */
export function mayScrape(request: IncomingMessage, config: MetricsConfig, onOwnPort: boolean): boolean {
  if (config.token) return bearerTokenMatches(request.headers.authorization, config.token);
  if (onOwnPort) return true;
  const forwarded = request.headers['x-forwarded-for'] !== undefined || request.headers.forwarded !== undefined;
  return !forwarded && isLoopback(request.socket.remoteAddress);
}

/** 127.0.0.0/8 and ::1, also as IPv4-mapped IPv6 (RFC 6890). */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return v4.startsWith('127.') || address === '::1';
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/** `Bearer <token>` (scheme case-insensitive, RFC 6750 §2.1), compared in constant time. */
function bearerTokenMatches(authorization: string | undefined, token: string): boolean {
  const presented = /^Bearer +([\w~+/.-]+=*) *$/i.exec(authorization ?? '')?.[1];
  return presented !== undefined && timingSafeEqual(digest(presented), digest(token));
}

/** GET /metrics on the main Fastify instance, answering 404 (like any unknown path) to whoever may not scrape. */
export function serveMetricsOnMainPort(fastify: FastifyInstance, config: MetricsConfig): void {
  fastify.get(METRICS_PATH, { config: HIDDEN_ROUTE }, async (request, reply) => {
    if (!mayScrape(request.raw, config, false)) return reply.callNotFound();
    return reply.type(registry.contentType).send(await registry.metrics());
  });
}

/** GET /metrics alone on a listener of its own (METRICS_PORT), on the main port's address (HOST). */
export async function serveMetricsOnOwnPort(config: MetricsConfig & { port: number }): Promise<Server> {
  const server = createServer((request, response) => {
    const path = request.url?.split('?')[0];
    if (request.method !== 'GET' || path !== METRICS_PATH || !mayScrape(request, config, true)) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found\n');
      return;
    }
    registry.metrics().then(
      (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
      () => response.writeHead(500).end(),
    );
  });
  server.listen(config.port, config.host ?? '0.0.0.0');
  await once(server, 'listening');
  return server;
}
