import type { OpenAPIObject } from '@nestjs/swagger';
import type { FastifyInstance } from 'fastify';

type Schema = Record<string, unknown>;

/**
 * Responses are written by their documented schema. For every route, the OpenAPI schema of each of
 * its 2xx JSON responses becomes the route's Fastify response schema, which Fastify compiles with
 * fast-json-stringify into the route's serializer. So the response DTO classes are the allowlist
 * (a property they do not declare, such as an entity's `version`, is never written), the API can
 * only send what its documentation says, and a controller returns its entities as they are: no
 * copying into DTO instances, no reflection per property, no generic JSON.stringify.
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
    if (!operation) return;
    const response: Record<string, Schema> = {};
    for (const [status, documented] of Object.entries(operation.responses)) {
      const schema = (documented as { content?: Record<string, { schema?: Schema }> }).content?.['application/json']
        ?.schema;
      if (status.startsWith('2') && schema) response[status] = inline(schema, components) as Schema;
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
