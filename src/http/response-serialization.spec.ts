import Fastify from 'fastify';
import type { OpenAPIObject } from '@nestjs/swagger';
import { serializeResponsesAsDocumented } from './response-serialization';

const document = {
  openapi: '3.1.0',
  info: { title: 'test', version: '1' },
  paths: {
    '/things': {
      // A 204 sends no body: nothing to serialize, nothing to document.
      delete: { responses: { '204': { description: 'Deleted' } } },
    },
    '/things/{id}': {
      get: {
        responses: {
          '200': { content: { 'application/json': { schema: { $ref: '#/components/schemas/Thing' } } } },
          '404': { content: { 'application/problem+json': { schema: { type: 'object' } } } },
        },
      },
    },
  },
  components: {
    schemas: {
      Thing: {
        type: 'object',
        properties: {
          id: { type: 'number' },
          at: { type: 'string', format: 'date-time' },
          owner: { anyOf: [{ $ref: '#/components/schemas/Owner' }, { type: 'null' }] },
        },
        required: ['id', 'at'],
      },
      Owner: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
    },
  },
} as unknown as OpenAPIObject;

async function serverReturning(body: (id: string) => { status: number; payload: object }) {
  const fastify = Fastify();
  serializeResponsesAsDocumented(fastify, document);
  fastify.get('/things/:id', (request, reply) => {
    const { status, payload } = body((request.params as { id: string }).id);
    return reply.code(status).send(payload);
  });
  await fastify.ready();
  return fastify;
}

describe('serializeResponsesAsDocumented', () => {
  it('writes exactly the documented properties, through references, dates as ISO strings', async () => {
    const fastify = await serverReturning((id) => ({
      status: 200,
      payload: { id: Number(id), at: new Date(0), version: 7, owner: { name: 'Ada', password: 'x' } },
    }));
    const res = await fastify.inject('/things/1');
    expect(res.body).toBe('{"id":1,"at":"1970-01-01T00:00:00.000Z","owner":{"name":"Ada"}}');
    expect((await fastify.inject('/things/2')).json()).toEqual({
      id: 2,
      at: '1970-01-01T00:00:00.000Z',
      owner: { name: 'Ada' },
    });
  });

  it('leaves undocumented statuses (errors) to the default serializer', async () => {
    const fastify = await serverReturning(() => ({ status: 404, payload: { status: 404, detail: 'gone' } }));
    expect((await fastify.inject('/things/1')).json()).toEqual({ status: 404, detail: 'gone' });
  });
});

describe('serializeResponsesAsDocumented fails closed', () => {
  it('stops startup naming the route when a 2xx response with a body has no documented schema', () => {
    const undocumented = {
      ...document,
      paths: { '/things/{id}': { patch: { responses: { '200': { description: 'Updated' } } } } },
    } as unknown as OpenAPIObject;
    const fastify = Fastify();
    serializeResponsesAsDocumented(fastify, undocumented);
    expect(() => fastify.patch('/things/:id', (_request, reply) => reply.send({ id: 1, version: 7 }))).toThrow(
      /^PATCH \/things\/\{id\}: its 200 response has no documented JSON schema/,
    );
  });

  it('accepts a bodiless 204 and leaves routes outside the document (health, docs UI) alone', async () => {
    const fastify = Fastify();
    serializeResponsesAsDocumented(fastify, document);
    fastify.delete('/things', (_request, reply) => reply.code(204).send());
    fastify.get('/health', () => ({ status: 'ok' }));
    await fastify.ready();
    expect((await fastify.inject({ method: 'DELETE', url: '/things' })).statusCode).toBe(204);
    expect((await fastify.inject('/health')).json()).toEqual({ status: 'ok' });
  });
});
