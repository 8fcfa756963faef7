import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { STATUS_CODES } from 'node:http';
import type { Response } from 'supertest';
import { adminAgent, PASSWORD } from './setup/accounts';
import { contractSessions } from './setup/contract-sessions';
import { openApiDocument } from './setup/openapi-document';
import { useTestApp } from './setup/test-app';

type Operation = {
  responses: Record<
    string,
    { headers?: Record<string, unknown>; content?: Record<string, { schema: object; example?: unknown }> }
  >;
};
type Schema = {
  $ref?: string;
  anyOf?: Schema[];
  oneOf?: Schema[];
  example?: unknown;
  items?: Schema;
  properties?: Record<string, Schema>;
};
const spec = openApiDocument<{
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
}>();

/** A request body as Swagger UI's Try-it-out pre-fills it: each property's example, nested objects and arrays followed. */
function sampleOf(schema: Schema): unknown {
  if (schema.$ref) return sampleOf(spec.components.schemas[schema.$ref.split('/').pop()!]);
  if (schema.example !== undefined) return schema.example;
  const [first] = schema.anyOf ?? schema.oneOf ?? []; // Swagger UI takes the first alternative
  if (first) return sampleOf(first);
  if (schema.items) return [sampleOf(schema.items)];
  if (schema.properties) {
    return Object.fromEntries(Object.entries(schema.properties).map(([name, property]) => [name, sampleOf(property)]));
  }
  throw new Error(`no example for ${JSON.stringify(schema)}`);
}

/**
 * Real responses against the OpenAPI document of the code under test (test/setup/openapi-document.ts;
 * the committed openapi.json is that document, which CI regenerates and diffs): every status, content
 * type, body and header the API sends must be the one the document describes.
 */
describe('OpenAPI contract', () => {
  const t = useTestApp({}, { resetEachTest: false });
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema(spec, 'openapi.json');
  const exercised = new Set<string>();

  function check(method: string, template: string, res: Response): Response {
    const operation = spec.paths[template]?.[method];
    if (!operation) throw new Error(`${method.toUpperCase()} ${template} is not in the OpenAPI document`);
    exercised.add(`${method} ${template}`);
    const documented = operation.responses[String(res.status)];
    if (!documented)
      throw new Error(`${method.toUpperCase()} ${template} answered ${res.status}, which the document does not list`);
    for (const header of ['etag', 'location', 'link', 'retry-after', 'www-authenticate']) {
      const declared = Object.keys(documented.headers ?? {}).map((name) => name.toLowerCase());
      if (res.headers[header] !== undefined && !declared.includes(header)) {
        throw new Error(`${method.toUpperCase()} ${template} ${res.status} sent ${header}, undocumented`);
      }
    }
    if (res.status === 304 || res.status === 204) return res; // no body
    const type = String(res.headers['content-type']).split(';')[0];
    const media = documented.content?.[type];
    if (!media) throw new Error(`${method.toUpperCase()} ${template} ${res.status} sent ${type}, undocumented`);
    const pointer = `openapi.json#/paths/${template.replaceAll('~', '~0').replaceAll('/', '~1')}/${method}/responses/${res.status}/content/${type.replace('/', '~1')}/schema`;
    const validate = ajv.getSchema(pointer)!;
    if (!validate(res.body))
      throw new Error(
        `${method.toUpperCase()} ${template} ${res.status}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(res.body).slice(0, 500)}`,
      );
    return res;
  }

  beforeAll(() => t.reset());

  it('is OpenAPI 3.1, served as it is at /docs/openapi.json, with Swagger UI at /docs', async () => {
    expect(spec.openapi).toBe('3.1.0');
    const served = await t.api.get('/docs/openapi.json').expect(200);
    expect(served.body).toEqual(spec);
    const ui = await t.api.get('/docs').expect(200);
    expect(ui.text).toContain('swagger');
  });

  it('loads Swagger UI with every asset at /docs and /docs/; /docs/index.html redirects to /docs/', async () => {
    await t.api.get('/docs/index.html').expect(301).expect('Location', '/docs/');
    for (const page of ['/docs', '/docs/']) {
      const html = await t.api
        .get(page)
        .expect(200)
        .expect('Content-Type', /text\/html/);
      // What a browser fetches next: each src/href resolved against the page's own URL.
      const assets = [...html.text.matchAll(/(?:src|href)="([^"]+)"/g)].map(
        ([, ref]) => new URL(ref, `http://localhost${page}`).pathname,
      );
      expect(assets).toEqual(expect.arrayContaining([expect.stringMatching(/swagger-ui-init\.js$/)]));
      for (const asset of assets) {
        const res = await t.api.get(asset);
        expect({ page, asset, status: res.status }).toEqual({ page, asset, status: 200 });
      }
    }
  });

  it('documents the input DTOs from their TypeScript types (the Swagger CLI plugin ran)', () => {
    // Without the plugin (or with a type checker that cannot see other files) these come out as bare
    // objects: the contract and the fuzz suite would then check and send nothing.
    const { CreateUserDto } = spec.components.schemas;
    expect(CreateUserDto.properties?.name).toMatchObject({ type: 'string', example: 'Ada Lovelace' });
    expect(JSON.stringify(CreateUserDto.properties?.profile)).toContain('#/components/schemas/ProfileDto');
    expect(CreateUserDto.properties?.posts?.items).toEqual({ $ref: '#/components/schemas/CreatePostDto' });
  });

  it('gives each documented problem an example of its own status and title (RFC 9457 §3.1)', () => {
    const problems = Object.entries(spec.paths).flatMap(([path, operations]) =>
      Object.entries(operations).flatMap(([method, operation]) =>
        Object.entries(operation.responses)
          .filter(([, response]) => response.content?.['application/problem+json'])
          .map(([code, response]) => ({
            where: `${method.toUpperCase()} ${path} ${code}`,
            code: Number(code),
            example: response.content!['application/problem+json'].example as { status: number; title: string },
          })),
      ),
    );
    expect(problems.length).toBeGreaterThan(20);
    const validate = ajv.getSchema('openapi.json#/components/schemas/ProblemDetailsSchema')!;
    for (const { where, code, example } of problems) {
      expect({ where, status: example?.status, title: example?.title }).toEqual({
        where,
        status: code,
        title: STATUS_CODES[code],
      });
      if (!validate(example)) throw new Error(`${where}: ${ajv.errorsText(validate.errors)}`);
    }
  });

  it('describes every response of a full client session', async () => {
    const api = t.api;
    const ada = check(
      'post',
      '/users',
      await api.post('/users').send({
        name: 'Ada',
        email: 'ada@example.com',
        password: PASSWORD,
        profile: { bio: 'Analyst' },
        posts: [{ title: 'Notes', body: 'On the engine' }],
      }),
    );
    const bob = check(
      'post',
      '/users',
      await api.post('/users').send({ name: 'Bob', email: 'bob@example.com', password: PASSWORD }),
    );
    check(
      'post',
      '/users',
      await api.post('/users').send({ name: 'Ada again', email: 'ADA@example.com', password: PASSWORD }),
    );
    check('post', '/users', await api.post('/users').send({ name: '', email: 'nope' }));
    check('post', '/users', await api.post('/users').set('Content-Type', 'text/plain').send('hello'));
    check(
      'post',
      '/users',
      await api.post('/users').send({ name: 'Big', email: 'big@example.com', profile: { bio: 'x'.repeat(150_000) } }),
    );

    const adaId = ada.body.id as number;
    const login = check(
      'post',
      '/auth/login',
      await api.post('/auth/login').send({ email: 'ada@example.com', password: PASSWORD }),
    );
    check(
      'post',
      '/auth/login',
      await api.post('/auth/login').send({ email: 'ada@example.com', password: 'wrong password!' }),
    );
    check('post', '/auth/login', await api.post('/auth/login').send({ email: 42 }));
    const asAda = { Authorization: `Bearer ${login.body.accessToken}` };
    const bobLogin = await api.post('/auth/login').send({ email: 'bob@example.com', password: PASSWORD });
    const asBob = { Authorization: `Bearer ${bobLogin.body.accessToken}` };
    const refreshed = check(
      'post',
      '/auth/refresh',
      await api.post('/auth/refresh').send({ refreshToken: login.body.refreshToken }),
    );
    check('post', '/auth/refresh', await api.post('/auth/refresh').send({ refreshToken: 'x'.repeat(43) }));
    check('get', '/auth/me', await api.get('/auth/me').set(asAda));
    check('get', '/auth/me', await api.get('/auth/me'));
    const got = check('get', '/users/{id}', await api.get(`/users/${adaId}`).set(asAda));
    check('get', '/users/{id}', await api.get(`/users/${adaId}`).set('Authorization', 'Bearer forged'));
    check('get', '/users/{id}', await api.get(`/users/${adaId}`).set('If-None-Match', got.headers.etag));
    check('get', '/users/{id}', await api.get(`/users/${adaId}?include=profile`));
    check('get', '/users/{id}', await api.get('/users/999'));
    check('get', '/users/{id}', await api.get('/users/abc'));
    check('get', '/users', await api.get('/users?limit=1'));
    check('get', '/users', await api.get('/users?limit=1000'));

    const patched = check(
      'patch',
      '/users/{id}',
      await api
        .patch(`/users/${adaId}`)
        .set(asAda)
        .set('If-Match', got.headers.etag)
        .send({ profile: { avatarUrl: 'https://example.com/a.png' } }),
    );
    check(
      'patch',
      '/users/{id}',
      await api.patch(`/users/${adaId}`).set(asAda).set('If-Match', got.headers.etag).send({ name: 'Stale' }),
    );
    check('patch', '/users/{id}', await api.patch(`/users/${adaId}`).set(asAda).send({ email: 'bob@example.com' }));
    check('patch', '/users/{id}', await api.patch('/users/999').set(asAda).send({ name: 'Nobody' }));
    check('patch', '/users/{id}', await api.patch(`/users/${adaId}`).send({ name: 'Anonymous' }));
    check('patch', '/users/{id}', await api.patch(`/users/${adaId}`).set(asBob).send({ name: 'Not Bob' }));
    expect(patched.status).toBe(200);

    const post = check(
      'post',
      '/users/{userId}/posts',
      await api
        .post(`/users/${adaId}/posts`)
        .set(asAda)
        .send({ title: 'Second', body: 'B', comments: [{ body: 'Hi' }] }),
    );
    check(
      'post',
      '/users/{userId}/posts',
      await api
        .post(`/users/${adaId}/posts`)
        .set(asAda)
        .send({ title: 'T', body: 'B', comments: [{ authorId: bob.body.id, body: 'x' }] }),
    );
    check(
      'post',
      '/users/{userId}/posts',
      await api.post('/users/999/posts').set(asAda).send({ title: 'T', body: 'B' }),
    );
    check(
      'post',
      '/users/{userId}/posts',
      await api.post(`/users/${adaId}/posts`).set(asBob).send({ title: 'T', body: 'B' }),
    );
    check('get', '/users/{userId}/posts', await api.get(`/users/${adaId}/posts?limit=1`));
    check('get', '/users/{userId}/posts', await api.get('/users/999/posts'));
    check('get', '/posts', await api.get('/posts?q=sec&sort=title&limit=1'));
    check('get', '/posts', await api.get('/posts?sort=bogus'));

    const postId = post.body.id as number;
    const postTag = check('get', '/posts/{id}', await api.get(`/posts/${postId}`)).headers.etag;
    check('get', '/posts/{id}', await api.get(`/posts/${postId}`).set('If-None-Match', postTag));
    check('get', '/posts/{id}', await api.get('/posts/999'));
    check(
      'patch',
      '/posts/{id}',
      await api.patch(`/posts/${postId}`).set(asAda).set('If-Match', postTag).send({ title: 'Renamed' }),
    );
    check(
      'patch',
      '/posts/{id}',
      await api.patch(`/posts/${postId}`).set(asAda).set('If-Match', postTag).send({ title: 'Stale' }),
    );
    check('patch', '/posts/{id}', await api.patch(`/posts/${postId}`).set(asBob).send({ title: 'Not mine' }));

    const comment = check(
      'post',
      '/posts/{postId}/comments',
      await api.post(`/posts/${postId}/comments`).set(asBob).send({ body: 'Reply' }),
    );
    check(
      'post',
      '/posts/{postId}/comments',
      await api.post(`/posts/${postId}/comments`).set(asBob).send({ authorId: adaId, body: 'As Ada' }),
    );
    check('post', '/posts/{postId}/comments', await api.post('/posts/999/comments').set(asBob).send({ body: 'Lost' }));
    check('post', '/posts/{postId}/comments', await api.post(`/posts/${postId}/comments`).send({ body: 'Anonymous' }));
    check('get', '/posts/{postId}/comments', await api.get(`/posts/${postId}/comments?limit=1`));
    check('get', '/posts/{postId}/comments', await api.get(`/posts/${postId}/comments?cursor=forged`));
    check('get', '/comments/{id}', await api.get(`/comments/${comment.body.id}`));
    const carol = await api.post('/users').send({ name: 'Carol', email: 'carol@example.com', password: PASSWORD });
    const carolLogin = await api.post('/auth/login').send({ email: 'carol@example.com', password: PASSWORD });
    const asCarol = { Authorization: `Bearer ${carolLogin.body.accessToken}` };
    check('delete', '/comments/{id}', await api.delete(`/comments/${comment.body.id}`).set(asCarol));
    check('delete', '/comments/{id}', await api.delete(`/comments/${comment.body.id}`).set(asBob));
    check('delete', '/comments/{id}', await api.delete(`/comments/${comment.body.id}`).set(asBob));

    check('delete', '/posts/{id}', await api.delete(`/posts/${postId}`).set(asAda).set('If-Match', postTag));
    check('delete', '/posts/{id}', await api.delete(`/posts/${postId}`).set(asBob));
    check('delete', '/posts/{id}', await api.delete(`/posts/${postId}`).set(asAda));
    check('delete', '/posts/{id}', await api.delete('/posts/999').set(asAda));
    check('delete', '/users/{id}', await api.delete(`/users/${carol.body.id}`).set(asBob));
    check('delete', '/users/{id}', await api.delete(`/users/${adaId}`).set(asAda).set('If-Match', got.headers.etag));
    const sameSession = { Authorization: `Bearer ${refreshed.body.accessToken}` }; // Ada's, after rotation
    check('delete', '/users/{id}', await api.delete(`/users/${adaId}`).set(sameSession));
    check('delete', '/users/{id}', await api.delete(`/users/${adaId}`).set(asBob));
    check('delete', '/users/{id}', await api.delete(`/users/${adaId}`));
    check('post', '/auth/logout', await api.post('/auth/logout').set(asBob));
    check('post', '/auth/logout', await api.post('/auth/logout').set(asBob));

    // Features with a test/<feature>.contract.ts (every resource `nest g resource` writes) bring their part of the session.
    const sample = (schemaName: string) => sampleOf(spec.components.schemas[schemaName]) as object;
    for (const session of await contractSessions()) await session(api, check, sample);

    const operations = Object.entries(spec.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => `${method} ${path}`),
    );
    expect(operations.filter((operation) => !exercised.has(operation))).toEqual([]);
  });

  it('pre-fills Try-it-out with request bodies the API accepts as they are', async () => {
    const schemas = spec.components.schemas;
    await t.reset();
    const user = await t.api.post('/users').send(sampleOf(schemas.CreateUserDto) as object);
    expect(user.status).toBe(201);
    expect(user.body).toMatchObject({ name: 'Ada Lovelace', email: 'ada@example.com' });
    await t.api
      .post('/auth/login')
      .send(sampleOf(schemas.LoginDto) as object)
      .expect(200);
    // The examples include admin-only fields (`role`, another `authorId`): an admin sends the writes.
    const admin = await adminAgent(t);
    await admin
      .patch(`/users/${user.body.id}`)
      .send(sampleOf(schemas.UpdateUserDto) as object)
      .expect(200);
    const post = sampleOf(schemas.CreatePostWithCommentsDto) as { comments: { authorId: number }[] };
    post.comments[0].authorId = user.body.id; // the one value no example can know
    const created = await admin.post(`/users/${user.body.id}/posts`).send(post).expect(201);
    await admin
      .patch(`/posts/${created.body.id}`)
      .send(sampleOf(schemas.UpdatePostDto) as object)
      .expect(200);
    await admin
      .post(`/posts/${created.body.id}/comments`)
      .send({ ...(sampleOf(schemas.CreateCommentDto) as object), authorId: user.body.id })
      .expect(201);
  });
});
