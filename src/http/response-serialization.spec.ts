import Fastify from 'fastify';
import type { OpenAPIObject } from '@nestjs/swagger';
import { serializeResponsesAsDocumented } from './response-serialization';

const document = {
  openapi: '3.1.0',
  info: { title: 'test', version: '1' },
  paths: {
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
