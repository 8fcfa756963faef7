import { HttpStatus } from '@nestjs/common';
import type { FastifyInstance } from 'fastify';
import { ProblemException } from './problem';
import { answerWithProblem } from './problem-details.filter';

/**
 * A request whose path names a resource we serve, with a method that resource does not support
 * (`PATCH /comments/42`), is answered 405 Method Not Allowed with an `Allow` header listing the
 * methods it does support (RFC 9110 §15.5.6), as problem+json; Fastify alone would say 404, which
 * tells the client the resource is missing. Paths nothing serves stay 404.
 *
 * Route patterns are collected as Fastify registers them (so every route counts, the implicit HEAD
 * of each GET included); a request that matched no route is compared with them, which only costs
 * anything on that rare path. Routes registered with HIDDEN_ROUTE (e.g. /metrics, which answers 404
 * to whoever may not scrape) are left out: any other method there is a 404 like an unknown path
 * (RFC 9110 §15.5.5), not a 405 whose Allow would reveal them.
 */
export function answerUnsupportedMethods(fastify: FastifyInstance): void {
  const routes = new Map<string, { pattern: RegExp; methods: Set<string> }>();
  fastify.addHook('onRoute', (route) => {
    if (Object.hasOwn(route.config ?? {}, 'hiddenRoute')) return;
    const entry = routes.get(route.url) ?? { pattern: patternOf(route.url), methods: new Set<string>() };
    for (const method of [route.method].flat()) entry.methods.add(method.toUpperCase());
    routes.set(route.url, entry);
  });
  fastify.addHook('onRequest', (request, reply, done) => {
    if (request.routeOptions.url !== undefined) return done(); // a route matched: not ours to answer
    const path = request.url.split('?')[0];
    const allowed = new Set<string>();
    for (const [url, { pattern, methods }] of routes) {
      if (!CATCH_ALL.has(url) && pattern.test(path)) for (const method of methods) allowed.add(method);
    }
    if (allowed.size === 0) return done(); // nothing here: 404
    // Routes for every path (CORS preflights: OPTIONS *) apply to this resource too, but alone they
    // would make every unknown path a 405.
    for (const url of CATCH_ALL) for (const method of routes.get(url)?.methods ?? []) allowed.add(method);
    const allow = [...allowed].sort().join(', ');
    answerWithProblem(
      request,
      reply,
      new ProblemException(HttpStatus.METHOD_NOT_ALLOWED, `${request.method} is not supported here; use ${allow}`, {
        headers: { Allow: allow },
      }),
    );
  });
}

const CATCH_ALL = new Set(['*', '/*']);

/**
 * Fastify route `config` for a route that must look like an unknown path to callers it refuses
 * (they get `reply.callNotFound()`): no 405 + Allow for its other methods either.
 */
export const HIDDEN_ROUTE = { hiddenRoute: true } as const;

/** A Fastify route URL (`/users/:id`, `/docs/*`) as a regular expression over request paths. */
function patternOf(url: string): RegExp {
  const source = url
    .split(/(:\w+|\*)/)
    .map((part) => (part === '*' ? '.*' : part.startsWith(':') ? '[^/]+' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`);
}
