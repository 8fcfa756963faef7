import type { OpenAPIObject } from '@nestjs/swagger';
import type { FastifyInstance } from 'fastify';

type Schema = Record<string, unknown>;

/** 2xx statuses that never carry content (RFC 9110 §15.3.5, §15.3.6). */
const BODILESS = new Set(['204', '205']);

/**
 * Responses are written by their documented schema. For every route, the OpenAPI schema of each of
 * its 2xx JSON responses becomes the route's Fastify response schema, which Fastify compiles with
 * fast-json-stringify into the route's serializer. So the response DTO classes are the allowlist
 * (a property they do not declare, such as an entity's `version`, is never written), the API can
 * only send what its documentation says, and a controller returns its entities as they are: no
 * copying into DTO instances, no reflection per property, no generic JSON.stringify.
 *
 * It fails closed: a documented route whose 2xx response sends a body (any 2xx but 204 No Content
 * and 205 Reset Content, RFC 9110 §15.3) without a documented JSON schema stops startup with an
 * error naming the route, instead of sending the returned object as it is. Routes left out of the
 * document on purpose (@ApiExcludeController: health probes, the docs UI) are not API and keep
 * Fastify's default serializer.
 *
 * Errors are not affected: problem+json bodies have no 2xx status, so they are serialized as usual.
 */
export function serializeResponsesAsDocumented(fastify: FastifyInstance, document: OpenAPIObject): void {
  const components = (document.components?.schemas ?? {}) as Record<string, Schema>;
  fastify.addHook('onRoute', (route) => {
    const path = route.url?.replace(/:(\w+)/g, '{$1}');
    // HEAD is GET without the body, so it is serialized as GET is: its ETag (a hash of the bytes) is GET's.
    const method = typeof route.method === 'string' ? route.method.toLowerCase().replace('head', 'get') : undefined;
    const operation = path && method ? document.paths[path]?.[method as 'get'] : undefined;
    if (!operation || !method) return;
    const response: Record<string, Schema> = {};
    for (const [status, documented] of Object.entries(operation.responses)) {
      if (!status.startsWith('2') || BODILESS.has(status)) continue;
      const schema = (documented as { content?: Record<string, { schema?: Schema }> }).content?.['application/json']
        ?.schema;
      if (!schema) {
        throw new Error(
          `${method.toUpperCase()} ${path}: its ${status} response has no documented JSON schema, so its body cannot be serialized (add e.g. @ApiOkResponse({ type: ThingResponse }))`,
        );
      }
      response[status] = inline(schema, components) as Schema;
    }
    if (Object.keys(response).length > 0) route.schema = { ...route.schema, response };
  });
}

/** The schema with every `#/components/schemas/…` reference replaced by the schema it names. */
function inline(node: unknown, components: Record<string, Schema>, seen: string[] = []): unknown {
  if (Array.isArray(node)) return node.map((item) => inline(item, components, seen));
  if (!node || typeof node !== 'object') return node;
  const { $ref, ...rest } = node as Schema;
  if (typeof $ref === 'string') {
    const name = $ref.replace('#/components/schemas/', '');
    if (seen.includes(name)) throw new Error(`response schema ${name} refers to itself: not serializable as a tree`);
    return inline({ ...components[name], ...rest }, components, [...seen, name]);
  }
  return Object.fromEntries(Object.entries(rest).map(([key, value]) => [key, inline(value, components, seen)]));
}
