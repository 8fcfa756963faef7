import type { Response } from 'supertest';
import { adminAgent, authAs } from './setup/accounts';
import { openApiDocument } from './setup/openapi-document';
import { startTestApp, useTestApp, type TestApp } from './setup/test-app';

/**
 * What clients, caches and browsers rely on at the HTTP level, checked on every operation the OpenAPI
 * document lists (derived from it, so a new endpoint is covered without a new test): 304s, Vary with
 * CORS, security headers on plain HTTP, hidden resources, integers, and write bodies.
 */
const PROBLEM = /application\/problem\+json/;
const ORIGIN = 'https://app.example.com';

interface Parameter {
  name: string;
  in: string;
  schema?: { type?: string; minimum?: number; maximum?: number };
}
interface Operation {
  parameters?: Parameter[];
  requestBody?: { required?: boolean };
  security?: unknown[];
  responses: Record<string, { headers?: Record<string, unknown> }>;
}
const document = openApiDocument<{ paths: Record<string, Record<string, Operation>> }>();
const operations = Object.entries(document.paths).flatMap(([template, byMethod]) =>
  Object.entries(byMethod).map(([method, operation]) => ({ method, template, operation })),
);

/** A user, their post and a comment on it: every path template's ids filled from them. */
interface World {
  userId: number;
  postId: number;
  commentId: number;
  auth: { Authorization: string };
}
async function arrange(t: TestApp): Promise<World> {
  const ada = await t.db.user('Ada');
  const post = await t.db.post(ada.id);
  const comment = await t.db.comment(post.id, ada.id);
  return { userId: ada.id, postId: post.id, commentId: comment.id, auth: await authAs(t.app, ada.id) };
}

/** `/posts/{postId}/comments` → `/posts/7/comments`: each `{param}` is the id of the collection before it. */
function fill(template: string, world: World): string {
  const ids: Record<string, number> = { users: world.userId, posts: world.postId, comments: world.commentId };
  return template.replace(/([a-z]+)\/\{\w+\}/g, (_, collection: string) => `${collection}/${ids[collection]}`);
}

/** The lower-cased members of a response's Vary field. */
const varyOf = (res: Response): string[] =>
  String(res.headers.vary ?? '')
    .split(',')
    .map((member) => member.trim().toLowerCase())
    .filter(Boolean);

describe('A 304 carries the headers the 200 would have (RFC 9110 §15.4.5) and no wrong Content-Length (RFC 9110 §8.6)', () => {
  const t = useTestApp({ CORS_ORIGINS: ORIGIN });
  const tagged = operations.filter(
    ({ method, operation }) => method === 'get' && operation.responses['200']?.headers?.ETag,
  );

  it('the document lists the GETs that send an ETag (what this test derives from)', () => {
    expect(tagged.map(({ template }) => template)).toEqual(
      expect.arrayContaining(['/users/{id}', '/posts/{id}', '/auth/me']),
    );
  });

  it.each(tagged.map(({ template }) => template))('GET and HEAD %s with a matching If-None-Match', async (template) => {
    const world = await arrange(t);
    const url = fill(template, world);
    for (const method of ['get', 'head'] as const) {
      const full = await t.api[method](url).set(world.auth).set('Origin', ORIGIN).expect(200);
      const cached = await t.api[method](url)
        .set(world.auth)
        .set('Origin', ORIGIN)
        .set('If-None-Match', full.headers.etag)
        .expect(304);
      for (const name of ['etag', 'vary', 'cache-control', 'content-location', 'expires']) {
        expect([name, cached.headers[name]]).toEqual([name, full.headers[name]]);
      }
      // Either no Content-Length, or the 200's: never 0 for a representation that has bytes.
      const length = cached.headers['content-length'];
      if (length !== undefined) expect(length).toBe(full.headers['content-length']);
      expect(cached.headers['content-type']).toBeUndefined();
      expect(cached.text ?? '').toBe('');
    }
  });
});

describe('CORS and HTTP caches: every response says Vary: Origin, merged with its own Vary (Fetch standard, §3.2.5 "CORS protocol and HTTP caches")', () => {
  const t = useTestApp({ CORS_ORIGINS: ORIGIN });

  it('every GET of the document, from the allowed origin, another one and none', async () => {
    const world = await arrange(t);
    const gets = operations.filter(({ method }) => method === 'get').map(({ template }) => fill(template, world));
    for (const url of [...gets, '/health', '/docs/openapi.json']) {
      for (const origin of [ORIGIN, 'https://other.example.com', undefined]) {
        const request = t.api.get(url).set(world.auth);
        const res = await (origin ? request.set('Origin', origin) : request);
        expect([url, origin, res.status, varyOf(res)]).toEqual([url, origin, 200, expect.arrayContaining(['origin'])]);
        if (/^\/(users\/\d+|users|auth\/me)$/.test(url))
          expect([url, varyOf(res)]).toEqual([url, expect.arrayContaining(['authorization'])]);
        expect(res.headers['access-control-allow-origin']).toBe(origin === ORIGIN ? ORIGIN : undefined);
      }
    }
  });

  it('errors, 304s and preflights too', async () => {
    const world = await arrange(t);
    const etag = (await t.api.get(`/users/${world.userId}`).expect(200)).headers.etag;
    const answers: [string, Response][] = [
      ['304', await t.api.get(`/users/${world.userId}`).set('Origin', ORIGIN).set('If-None-Match', etag)],
      ['400', await t.api.get('/users?limit=abc').set('Origin', ORIGIN)],
      ['401', await t.api.patch(`/users/${world.userId}`).set('Origin', ORIGIN).send({ name: 'x' })],
      ['404', await t.api.get('/users/999999').set('Origin', ORIGIN)],
      ['404', await t.api.get('/no-such-path').set('Origin', ORIGIN)],
      ['405', await t.api.put('/users').set('Origin', ORIGIN).send({})],
      [
        '204',
        await t.api
          .options(`/users/${world.userId}`)
          .set('Origin', ORIGIN)
          .set('Access-Control-Request-Method', 'PATCH')
          .set('Access-Control-Request-Headers', 'authorization, if-match'),
      ],
    ];
    for (const [status, res] of answers) {
      expect([status, res.status, varyOf(res)]).toEqual([status, Number(status), expect.arrayContaining(['origin'])]);
    }
    expect(varyOf(answers[0][1])).toEqual(expect.arrayContaining(['authorization', 'origin']));
  });
});

describe('Security headers fit the transport: upgrade-insecure-requests (CSP Level 3 / W3C Upgrade Insecure Requests §3) and HSTS (RFC 6797 §7.2) only over HTTPS', () => {
  const t = useTestApp({ TRUST_PROXY_HOPS: '1' });

  it('over plain HTTP: no upgrade-insecure-requests, no Strict-Transport-Security, on the API and on Swagger UI', async () => {
    for (const url of ['/users', '/docs/', '/no-such-path']) {
      const res = await t.api.get(url);
      expect(res.headers['content-security-policy']).toContain("default-src 'self'");
      expect([url, res.headers['content-security-policy']]).toEqual([
        url,
        expect.not.stringContaining('upgrade-insecure-requests'),
      ]);
      expect([url, res.headers['strict-transport-security']]).toEqual([url, undefined]);
    }
  });

  it('behind a trusted TLS-terminating proxy (X-Forwarded-Proto: https): both', async () => {
    const res = await t.api.get('/users').set('X-Forwarded-Proto', 'https').expect(200);
    expect(res.headers['content-security-policy']).toContain('upgrade-insecure-requests');
    expect(res.headers['strict-transport-security']).toMatch(/max-age=\d+/);
  });

  it('X-Forwarded-Proto from a client no proxy vouches for (TRUST_PROXY_HOPS=0) changes nothing', async () => {
    const direct = await startTestApp();
    try {
      const res = await direct.api.get('/users').set('X-Forwarded-Proto', 'https').expect(200);
      expect(res.headers['content-security-policy']).not.toContain('upgrade-insecure-requests');
      expect(res.headers['strict-transport-security']).toBeUndefined();
    } finally {
      await direct.close();
    }
  });
});

describe('A hidden resource answers every method exactly like an unknown path (RFC 9110 §15.5.5)', () => {
  const token = 'a-scrape-token-of-some-length';
  const t = useTestApp({ METRICS_TOKEN: token, CORS_ORIGINS: ORIGIN, RATE_LIMIT_MAX: '1000' });
  // The same answer but for the path itself, which a 404 names (and so its length).
  const comparable = (res: Response, path: string) => {
    const headers = Object.fromEntries(
      Object.entries(res.headers).filter(([name]) => !['date', 'x-request-id', 'content-length'].includes(name)),
    );
    const text = (res.text ?? '').replaceAll(path, '<path>');
    const body = text && /json/.test(String(headers['content-type'])) ? (JSON.parse(text) as unknown) : text;
    return { status: res.status, headers: Object.keys(headers).sort(), allow: headers.allow, body };
  };

  it.each(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])(
    '%s /metrics without the scrape token',
    async (method) => {
      const send = (path: string, authorization?: string) => {
        const request = t.api[method.toLowerCase() as 'get'](path).set('Origin', ORIGIN);
        return authorization ? request.set('Authorization', authorization) : request;
      };
      for (const authorization of [undefined, 'Bearer not-the-token-at-all']) {
        const hidden = comparable(await send('/metrics', authorization), '/metrics');
        const unknown = comparable(await send('/metricz', authorization), '/metricz');
        expect(hidden).toEqual(unknown);
        if (method !== 'OPTIONS') expect(hidden.status).toBe(404);
      }
    },
  );

  it('a scraper with the token still reads it', async () => {
    const res = await t.api.get('/metrics').set('Authorization', `Bearer ${token}`).expect(200);
    expect(res.text).toContain('http_server_request_duration_seconds');
  });
});

describe('Integers in a query, a path or a header are plain decimal, 0|[1-9][0-9]*, within range (else 400 naming them; nestjs/nest#8024)', () => {
  const t = useTestApp();
  const NOT_PLAIN = [
    '0x2',
    '2e0',
    ' 2',
    '2 ',
    '0b1',
    '0o2',
    '+2',
    '-0',
    '02',
    '2.0',
    '',
    '١',
    'Infinity',
    '99999999999',
  ];
  const integerParameters = operations
    .filter(({ method }) => method === 'get')
    .flatMap(({ template, operation }) =>
      (operation.parameters ?? [])
        .filter((parameter) => parameter.schema?.type === 'integer' && ['query', 'path'].includes(parameter.in))
        .map((parameter) => ({ template, parameter })),
    );

  it('the document lists integer query and path parameters (what this test derives from)', () => {
    const names = integerParameters.map(({ template, parameter }) => `${template} ${parameter.in} ${parameter.name}`);
    expect(names).toEqual(expect.arrayContaining(['/users query limit', '/users query offset', '/users/{id} path id']));
  });

  it.each(
    integerParameters.map(({ template, parameter }) => [
      `${template} ${parameter.in} ${parameter.name}`,
      template,
      parameter,
    ]),
  )('%s', async (_name, template, parameter) => {
    const world = await arrange(t);
    const path = fill(template, world);
    const { name, schema } = parameter;
    const send = (value: string) => {
      if (parameter.in === 'query') {
        return t.api.get(`${path}?${name}=${encodeURIComponent(value)}`).set(world.auth);
      }
      const segment = fill(template, world).split('/');
      const index = template.split('/').indexOf(`{${name}}`);
      segment[index] = encodeURIComponent(value);
      return t.api.get(segment.join('/')).set(world.auth);
    };
    const plain = String(Math.max(schema?.minimum ?? 0, 1));
    if (parameter.in === 'query') await send(plain).expect(200);
    for (const value of NOT_PLAIN) {
      if (value === '' && parameter.in === 'path') continue; // an empty segment is another path
      const res = await send(value);
      expect([value, res.status]).toEqual([value, 400]);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.body.errors).toEqual([expect.objectContaining({ field: name })]);
    }
  });

  it('an If-Match naming a version as no tag we issued ("01-…") matches nothing: 412, nothing changed (RFC 9110 §8.8.3.2)', async () => {
    const world = await arrange(t);
    const { etag } = (await t.api.get(`/users/${world.userId}`).expect(200)).headers;
    const padded = etag.replace(/^"(\d+)-/, '"0$1-');
    await t.api.patch(`/users/${world.userId}`).set(world.auth).set('If-Match', padded).send({ name: 'x' }).expect(412);
    const [row] = await t.query('SELECT name, version FROM users WHERE id = $1', [world.userId]);
    expect(row).toEqual({ name: 'Ada', version: 1 });
  });
});

describe('A write body is a JSON object (RFC 8259 §4; the schema of every request body is an object)', () => {
  const t = useTestApp();
  const writes = operations.filter(({ operation }) => operation.requestBody !== undefined);
  const NOT_OBJECTS = ['null', '[]', '[{}]', '"x"', '42', 'true', ''];

  it('the document lists the writes with a body (what this test derives from)', () => {
    expect(writes.map(({ method, template }) => `${method.toUpperCase()} ${template}`)).toEqual(
      expect.arrayContaining(['POST /users', 'PATCH /users/{id}', 'POST /auth/login', 'POST /auth/refresh']),
    );
  });

  it.each(writes.map(({ method, template }) => [`${method.toUpperCase()} ${template}`, method, template]))(
    '%s with a body that is not an object: 400 problem+json, nothing changed',
    async (_name, method, template) => {
      const world = await arrange(t);
      const admin = await adminAgent(t);
      const snapshot = () =>
        t.query(
          'SELECT (SELECT count(*) FROM users)::int AS users, (SELECT sum(version) FROM users)::int AS "userVersions", ' +
            '(SELECT count(*) FROM posts)::int AS posts, (SELECT sum(version) FROM posts)::int AS "postVersions", ' +
            '(SELECT count(*) FROM comments)::int AS comments, (SELECT count(*) FROM sessions)::int AS sessions, ' +
            '(SELECT count(*) FROM refresh_tokens WHERE rotated_at IS NULL)::int AS "liveRefreshTokens"',
        );
      const before = await snapshot();
      // Where the body may be left out (requestBody.required false), an empty one is no body: accepted.
      const optional =
        operations.find((o) => o.method === method && o.template === template)?.operation.requestBody?.required ===
        false;
      for (const body of NOT_OBJECTS.filter((text) => !(optional && text === ''))) {
        const res = await admin[method as 'post'](fill(template, world))
          .set('Content-Type', 'application/json')
          .send(body);
        expect([body, res.status]).toEqual([body, 400]);
        expect(res.headers['content-type']).toMatch(PROBLEM);
        expect(res.body.detail).toMatch(/JSON object/);
      }
      expect(await snapshot()).toEqual(before);
    },
  );
});

describe('Every query parameter of every route is percent-encoded UTF-8 text (RFC 3986 §2.1, §2.5): else 400 naming it', () => {
  const t = useTestApp();
  const queryParameters = operations
    .filter(({ method }) => method === 'get')
    .flatMap(({ template, operation }) =>
      (operation.parameters ?? [])
        .filter((parameter) => parameter.in === 'query')
        .map((parameter) => ({ template, name: parameter.name })),
    );
  const MALFORMED = [
    ['%FF%FE', 'bytes that are not UTF-8'],
    ['%C0%AF', 'an overlong UTF-8 sequence'],
    ['%ED%A0%80', 'an encoded UTF-16 surrogate'],
    ['%', 'a lone %'],
    ['%zz', '% without two hex digits'],
    ['a%2', '% with one hex digit'],
    ['%00', 'NUL'],
    ['a%01b', 'a control character'],
    ['a%0Ab', 'a line feed'],
    ['%7F', 'DEL'],
  ];

  it('the document lists the query parameters (what this test derives from)', () => {
    expect(queryParameters.map(({ template, name }) => `${template} ${name}`)).toEqual(
      expect.arrayContaining([
        '/posts q',
        '/posts sort',
        '/users include',
        '/users limit',
        '/posts/{postId}/comments cursor',
      ]),
    );
  });

  it.each(queryParameters.map(({ template, name }) => [`${template} ?${name}=`, template, name]))(
    '%s',
    async (_name, template, name) => {
      const world = await arrange(t);
      const path = fill(template, world);
      for (const [value, what] of MALFORMED) {
        const res = await t.api.get(`${path}?${name}=${value}`).set(world.auth);
        expect([what, res.status]).toEqual([what, 400]);
        expect(res.headers['content-type']).toMatch(PROBLEM);
        expect([what, res.body.errors]).toEqual([what, [{ field: name, messages: [expect.any(String)] }]]);
      }
    },
  );

  it('names the parameter among valid ones, a malformed name by its encoded text; well-formed UTF-8 is still text', async () => {
    const several = await t.api.get('/posts?limit=5&q=%FF&sort=-createdAt').expect(400);
    expect(several.body).toMatchObject({ status: 400, type: '/problems/validation', detail: 'Invalid request: q' });
    expect(several.body.errors).toEqual([
      { field: 'q', messages: ['q is not valid percent-encoded UTF-8 (RFC 3986 §2.1, §2.5)'] },
    ]);
    const nul = await t.api.get('/posts?q=%00').expect(400);
    expect(nul.body.errors).toEqual([
      { field: 'q', messages: ['q must not contain control characters (U+0000–U+001F, U+007F)'] },
    ]);
    const badName = await t.api.get('/posts?%FF=1').expect(400);
    expect(badName.body.errors).toEqual([expect.objectContaining({ field: '%FF' })]);
    const ada = await t.db.user('Ada');
    await t.db.post(ada.id, 'Café au lait');
    const found = await t.api.get('/posts?q=caf%C3%A9+au').expect(200);
    expect(found.body.map((post: { title: string }) => post.title)).toEqual(['Café au lait']);
  });
});

describe('Every path parameter of every route is percent-encoded UTF-8 text (RFC 3986 §2.1, §2.5) of at most 100 characters: else 400 (414 when too long) naming it (RFC 9457 §3)', () => {
  const t = useTestApp();
  const pathParameters = operations.flatMap(({ method, template, operation }) =>
    (operation.parameters ?? [])
      .filter((parameter) => parameter.in === 'path')
      .map((parameter) => ({ method, template, name: parameter.name })),
  );
  /** Bodies the routes accept, so the only thing wrong is the path. */
  const BODIES: Record<string, object> = {
    'POST /users/{userId}/posts': { title: 'T', body: 'B' },
    'POST /posts/{postId}/comments': { body: 'B' },
    'PATCH /users/{id}': { name: 'N' },
    'PATCH /posts/{id}': { title: 'T' },
  };
  const MALFORMED = [
    ['%E0%A4%A', 'a truncated UTF-8 sequence'],
    ['%zz', '% without two hex digits'],
    ['a%2', '% with one hex digit'],
    ['%', 'a lone %'],
    ['%FF%FE', 'bytes that are not UTF-8'],
    ['%C0%AF', 'an overlong UTF-8 sequence'],
    ['%ED%A0%80', 'an encoded UTF-16 surrogate'],
  ];

  it('the document lists the path parameters (what this test derives from)', () => {
    expect(pathParameters.map(({ method, template, name }) => `${method} ${template} ${name}`)).toEqual(
      expect.arrayContaining([
        'get /users/{id} id',
        'get /users/{userId}/posts userId',
        'post /posts/{postId}/comments postId',
        'delete /auth/sessions/{id} id',
      ]),
    );
  });

  it.each(
    pathParameters.map(({ method, template, name }) => [
      `${method.toUpperCase()} ${template} {${name}}`,
      method,
      template,
      name,
    ]),
  )('%s', async (operation, method, template, name) => {
    const admin = await adminAgent(t);
    const at = template.split('/').indexOf(`{${name}}`);
    const target = (value: string) => {
      const segments = template.split('/');
      segments[at] = value;
      return segments.join('/').replace(/\{\w+\}/g, '1');
    };
    const send = (path: string) => {
      const request = admin[method as 'get'](path);
      return BODIES[operation.split(' {')[0]] ? request.send(BODIES[operation.split(' {')[0]]) : request;
    };
    for (const [value, what] of MALFORMED) {
      const res = await send(target(value));
      expect([what, res.status]).toEqual([what, 400]);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect([what, res.body.errors]).toEqual([
        what,
        [{ field: name, messages: [`${name} is not valid percent-encoded UTF-8 (RFC 3986 §2.1, §2.5)`] }],
      ]);
    }
    const long = await send(target('1'.repeat(101)));
    expect(long.status).toBe(414); // RFC 9110 §15.5.15
    expect(long.headers['content-type']).toMatch(PROBLEM);
    expect(long.body.errors).toEqual([{ field: name, messages: [`${name} must be at most 100 characters long`] }]);
  });

  it('a fault outside any parameter names the path; a query does not hide a faulty path parameter', async () => {
    const admin = await adminAgent(t);
    for (const path of ['/us%zzers', '/nothing/here/%E0%A4%A']) {
      const res = await admin.get(path).expect(400);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.body.errors).toEqual([
        { field: 'path', messages: ['path is not valid percent-encoded UTF-8 (RFC 3986 §2.1, §2.5)'] },
      ]);
    }
    const two = await admin.get('/users/%zz/posts').query({ limit: 5 }).expect(400);
    expect(two.body).toMatchObject({ type: '/problems/validation', detail: 'Invalid request: userId' });
  });
});

describe('A 404 for a resource the path names is the same on every route: no `errors` member (docs/api.md, Errors; RFC 9110 §15.5.5)', () => {
  const t = useTestApp();
  const templated = operations.filter(({ operation }) => (operation.parameters ?? []).some((p) => p.in === 'path'));
  /** Bodies the routes accept, so the only thing wrong is the missing resource. */
  const BODIES: Record<string, object> = {
    'POST /users/{userId}/posts': { title: 'T', body: 'B' },
    'POST /posts/{postId}/comments': { body: 'B' },
    'PATCH /users/{id}': { name: 'N' },
    'PATCH /posts/{id}': { title: 'T' },
  };

  it.each(templated.map(({ method, template }) => [`${method.toUpperCase()} ${template}`, method, template]))(
    '%s with an id nothing has',
    async (name, method, template) => {
      const admin = await adminAgent(t);
      const missing = template.replace(/\{(\w+)\}/g, (_, parameter: string) =>
        templated.find((o) => o.template === template)?.operation.parameters?.find((p) => p.name === parameter)?.schema
          ?.type === 'integer'
          ? '999999'
          : '00000000-0000-4000-8000-000000000000',
      );
      const request = admin[method as 'get'](missing);
      const res = await (BODIES[name] ? request.send(BODIES[name]) : request);
      expect([name, res.status]).toEqual([name, 404]);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.body).toEqual({
        type: 'about:blank',
        title: 'Not Found',
        status: 404,
        detail: expect.any(String),
        instance: missing,
      });
    },
  );
});
