import { bearer, signUp } from './setup/accounts';
import { bodyOf, exchange as rawExchange, statusOf } from './setup/raw-http';
import { startTestApp, type TestApp } from './setup/test-app';

const PROBLEM = /application\/problem\+json/;

/**
 * Bad input always gets a 4xx problem+json whose `errors` names what was wrong (RFC 9457 §3): the
 * path parameter, the query parameter, the header, the part of the request line or the body's key.
 * Shared mechanisms are tested here; the checks derived from the OpenAPI document (every path and
 * query parameter of every route) are in http-conformance.e2e-spec.ts.
 */
describe('Bad input names what was wrong (RFC 9457 §3)', () => {
  let t: TestApp;
  let port: number;
  beforeAll(async () => {
    t = await startTestApp();
    port = await t.listen();
  });
  beforeEach(() => t.reset());
  afterAll(() => t.close());

  const exchange = (text: string) => rawExchange(port, text);

  describe('the request target (RFC 3986 §2.1, RFC 9112 §3.2)', () => {
    it.each([
      ['a truncated UTF-8 sequence', 'GET /users/%E0%A4%A HTTP/1.1', 'id'],
      ['% without hex digits', 'GET /users/%zz HTTP/1.1', 'id'],
      ['a nested route', 'GET /users/%zz/posts HTTP/1.1', 'userId'],
      ['the absolute-form (RFC 9112 §3.2.2)', 'GET http://localhost/posts/%E0%A4%A/comments HTTP/1.1', 'postId'],
      ['a query after it', 'GET /comments/%FF?x=1 HTTP/1.1', 'id'],
      ['a method the path does not allow', 'PUT /users/%zz HTTP/1.1', 'id'],
      ['a static segment', 'GET /us%zzers HTTP/1.1', 'path'],
    ])('broken percent-encoding in %s: 400 naming the path parameter', async (_name, line, field) => {
      const answer = await exchange(`${line}\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
      expect(statusOf(answer)).toBe(400);
      expect(answer).toMatch(/content-type: application\/problem\+json/i);
      expect(bodyOf(answer)).toMatchObject({
        status: 400,
        type: '/problems/validation',
        detail: `Invalid request: ${field}`,
        errors: [{ field, messages: [`${field} is not valid percent-encoded UTF-8 (RFC 3986 §2.1, §2.5)`] }],
      });
    });

    it('a path parameter over 100 characters: 414 naming it (RFC 9110 §15.5.15)', async () => {
      const res = await t.api.get(`/users/1/posts`.replace('1', '9'.repeat(3_000))).expect(414);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.body).toMatchObject({
        detail: 'Path parameter too long: userId',
        errors: [{ field: 'userId', messages: ['userId must be at most 100 characters long'] }],
      });
    });

    it('a session id that is no UUID: 400 naming id, not a 404 for a session no such id can name', async () => {
      const ada = await signUp(t.api, 'Ada');
      for (const id of ['not-a-uuid', '1', `${'0'.repeat(8)}-0000-0000-0000-${'0'.repeat(11)}`]) {
        const res = await t.api.delete(`/auth/sessions/${id}`).set(bearer(ada)).expect(400);
        expect(res.headers['content-type']).toMatch(PROBLEM);
        expect(res.body.errors).toEqual([{ field: 'id', messages: ['must be a UUID (RFC 9562 §4)'] }]);
      }
      await t.api.delete('/auth/sessions/00000000-0000-4000-8000-000000000000').set(bearer(ada)).expect(404);
    });
  });

  describe("what Node's parser refuses names the part of the request (RFC 9112)", () => {
    it.each([
      ['a method that is no token (RFC 9110 §9.1)', 'G@T /health HTTP/1.1\r\nHost: a\r\n\r\n', 400, 'method'],
      ['a control character in the target (§3.2)', 'GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n', 400, 'request-target'],
      ['an unknown HTTP version (§2.3)', 'GET /health HTTP/9.x\r\nHost: a\r\n\r\n', 400, 'HTTP-version'],
      ['a protocol that is not HTTP (§2.3)', 'GET /health FOO/1.1\r\nHost: a\r\n\r\n', 400, 'HTTP-version'],
      ['whitespace before the colon (§5.1)', 'GET /health HTTP/1.1\r\nHost: a\r\nX-Foo : b\r\n\r\n', 400, 'X-Foo'],
      [
        'a control character in a value (§5.5)',
        'GET /health HTTP/1.1\r\nHost: a\r\nX-Foo: a\x01b\r\n\r\n',
        400,
        'X-Foo',
      ],
      ['a folded line (obs-fold, §5.2)', 'GET /health HTTP/1.1\r\nHost: a\r\nX-Foo: a\r\n b\r\n\r\n', 400, 'X-Foo'],
      ['a field name with a space (§5.1)', 'GET /health HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n', 400, 'headers'],
      [
        'a Content-Length that is no number (RFC 9110 §8.6)',
        'POST /users HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n',
        400,
        'Content-Length',
      ],
      [
        'two Content-Lengths (§6.3)',
        'POST /users HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
        400,
        'Content-Length',
      ],
      [
        'Transfer-Encoding with Content-Length (§6.3)',
        'POST /users HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
        400,
        'Transfer-Encoding',
      ],
      [
        'a Transfer-Encoding not ending in chunked (§6.1)',
        'POST /users HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n',
        400,
        'Transfer-Encoding',
      ],
      [
        'a header section over the limit (RFC 6585 §5)',
        `GET /health HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
        431,
        'X-Big',
      ],
    ])('%s', async (_name, text, status, field) => {
      const answer = await exchange(text);
      expect(statusOf(answer)).toBe(status);
      expect(answer).toMatch(/content-type: application\/problem\+json/i);
      expect(bodyOf(answer)).toMatchObject({ status, errors: [{ field, messages: [expect.any(String)] }] });
    });
  });

  describe('headers (RFC 9110 §8.3, §8.4, RFC 6750 §2.1)', () => {
    const user = { name: 'Ada', email: 'ada@example.com', password: 'correct horse battery staple' };

    it.each([
      ['text/plain', 'The request body must be JSON (Content-Type: application/json)'],
      ['application/json; charset=latin1', 'JSON bodies must be UTF-8 (charset=utf-8)'],
    ])('Content-Type %s: 415 naming Content-Type (RFC 9110 §15.5.16)', async (type, message) => {
      const res = await t.api.post('/users').set('Content-Type', type).send(JSON.stringify(user)).expect(415);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.body.errors).toEqual([{ field: 'Content-Type', messages: [message] }]);
      expect(await t.db.count('users')).toBe(0);
    });

    it('Content-Encoding: gzip: 415 naming Content-Encoding (RFC 9110 §8.4, §15.5.16)', async () => {
      const res = await t.api
        .post('/users')
        .set('Content-Type', 'application/json')
        .set('Content-Encoding', 'gzip')
        .send(JSON.stringify(user))
        .expect(415);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.body.errors).toEqual([{ field: 'Content-Encoding', messages: [expect.any(String)] }]);
    });

    it.each([
      ['Basic YWRhOnB3', 'Authorization must use the Bearer scheme (RFC 6750 §2.1)'],
      ['Bearer a b', 'The access token is malformed'],
      ['Bearer ???', 'The access token is malformed'],
      ['Bearer', 'The access token is malformed'],
      ['Bearer abc.def.ghi', 'The access token has a header this server does not issue'],
    ])('Authorization: %s: 401 naming Authorization (RFC 6750 §2.1, §3.1)', async (authorization, message) => {
      const res = await t.api.get('/auth/me').set('Authorization', authorization).expect(401);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="api"/);
      expect(res.body.errors).toEqual([{ field: 'Authorization', messages: [message] }]);
    });

    it('no Authorization at all is no bad input: the 401 has no errors member (RFC 6750 §3.1)', async () => {
      const res = await t.api.get('/auth/me').expect(401);
      expect(res.body).not.toHaveProperty('errors');
    });

    it('a refresh token that is not valid: 401 naming refreshToken, the body field it came in', async () => {
      const res = await t.api
        .post('/auth/refresh')
        .send({ refreshToken: 'x'.repeat(43) })
        .expect(401);
      expect(res.body.errors).toEqual([
        { field: 'refreshToken', messages: ['The refresh token is invalid, expired or revoked'] },
      ]);
    });
  });

  describe('JSON bodies (RFC 8259)', () => {
    const post = (body: string) => t.api.post('/users').set('Content-Type', 'application/json').send(body);

    it.each([
      ['a lone UTF-16 surrogate (§8.2)', '{"name":"\\ud800","email":"a@example.com"}', 'name', /lone UTF-16 surrogate/],
      ['a nested one', '{"name":"A","email":"a@example.com","profile":{"bio":"\\udc00"}}', 'bio', /surrogate/],
      ['U+0000', '{"name":"a\\u0000","email":"a@example.com"}', 'name', /NUL/],
      [
        'a __proto__ key',
        '{"name":"A","email":"a@example.com","__proto__":{"role":"admin"}}',
        '__proto__',
        /forbidden/,
      ],
      [
        'constructor.prototype',
        '{"name":"A","email":"a@example.com","profile":{"constructor":{"prototype":{}}}}',
        'constructor.prototype',
        /forbidden/,
      ],
    ])('a string or key that cannot be taken, %s: 400 naming its key', async (_name, body, field, message) => {
      const res = await post(body).expect(400);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.body.errors).toEqual([{ field, messages: [expect.stringMatching(message)] }]);
      expect(await t.db.count('users')).toBe(0);
    });

    it('malformed JSON is a 400 whose detail names the body, quoting none of it', async () => {
      const res = await post('{"name": "secret').expect(400);
      expect(res.body.detail).toBe('The request body is not valid JSON');
    });
  });

  describe('query strings (RFC 3986 §3.4)', () => {
    it.each([
      ['limit=1e3', 'limit'],
      ['limit=-0', 'limit'],
      ['limit=99999999999999999999999', 'limit'],
      ['limit=1&limit=2', 'limit'],
      ['limit[]=1', 'limit[]'],
      ['cursor=garbage', 'cursor'],
      ['cursor=a&cursor=b', 'cursor'],
      ['limit=%zz', 'limit'],
      ['unknown=1', 'unknown'],
    ])('?%s: 400 naming %s', async (query, field) => {
      const res = await t.api.get(`/users?${query}`).expect(400);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.body.errors).toEqual([expect.objectContaining({ field })]);
    });
  });
});
