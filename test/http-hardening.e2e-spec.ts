import { QueryFailedError } from 'typeorm';
import { UsersService } from '../src/users/users.service';
import { RATE_LIMITED_DETAIL } from '../src/http/rate-limit.module';
import { startTestApp, useTestApp } from './setup/test-app';

const PROBLEM = /application\/problem\+json/;

describe('HTTP hardening', () => {
  const t = useTestApp({ CORS_ORIGINS: 'https://app.example.com' });

  it('answers 413 problem+json for a body over the limit', async () => {
    const res = await t.api
      .post('/users')
      .send({ name: 'Big', email: 'big@example.com', profile: { bio: 'x'.repeat(200_000) } })
      .expect(413);
    expect(res.headers['content-type']).toMatch(PROBLEM);
  });

  it('answers 415 for a body that is not JSON', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
      const res = await t.api
        .post('/users')
        .set('Content-Type', type)
        .send('name=Ada&email=ada@example.com')
        .expect(415);
      expect(res.headers['content-type']).toMatch(PROBLEM);
    }
    expect((await t.query('SELECT count(*)::int AS n FROM users'))[0].n).toBe(0);
  });

  it('answers oversized headers and over-long path parameters with problem+json too', async () => {
    const headers = await t.api.get('/users').set('X-Padding', 'x'.repeat(20_000)).expect(431);
    expect(headers.headers['content-type']).toMatch(PROBLEM);
    const longId = await t.api.get(`/users/${'9'.repeat(3_000)}`).expect(414);
    expect(longId.headers['content-type']).toMatch(PROBLEM);
  });

  it('answers 400 for malformed JSON and for JSON that is not an object', async () => {
    await t.api.post('/users').set('Content-Type', 'application/json').send('{"name":').expect(400);
    await t.api.post('/users').set('Content-Type', 'application/json').send('[1,2,3]').expect(400);
    await t.api.post('/users').set('Content-Type', 'application/json').send('"just a string"').expect(400);
  });

  it('answers 405 with Allow for a method the resource does not support, 404 where nothing is (RFC 9110 §15.5.6)', async () => {
    const ada = await t.db.user('Ada');
    const post = await t.db.post(ada.id);
    const comment = await t.db.comment(post.id, ada.id, 'Kept');
    const patched = await t.api.patch(`/comments/${comment.id}`).send({ body: 'Changed' }).expect(405);
    expect(patched.headers['content-type']).toMatch(PROBLEM);
    // OPTIONS: this app answers CORS preflights (CORS_ORIGINS is set above) on every resource.
    expect(patched.headers.allow).toBe('DELETE, GET, HEAD, OPTIONS');
    expect(patched.body).toMatchObject({
      status: 405,
      title: 'Method Not Allowed',
      instance: `/comments/${comment.id}`,
    });
    expect(patched.body.detail).toContain('DELETE, GET, HEAD, OPTIONS');
    expect(patched.headers['x-request-id']).toBeDefined();
    const [{ body }] = await t.query('SELECT body FROM comments WHERE id = $1', [comment.id]);
    expect(body).toBe('Kept');

    expect((await t.api.put('/users').send({}).expect(405)).headers.allow).toBe('GET, HEAD, OPTIONS, POST');
    expect((await t.api.delete('/posts').expect(405)).headers.allow).toBe('GET, HEAD, OPTIONS');
    const nested = await t.api.put(`/posts/${post.id}/comments?limit=1`).expect(405);
    expect(nested.headers.allow).toBe('GET, HEAD, OPTIONS, POST');
    // Not a resource at all: still 404, with no Allow.
    const missing = await t.api.patch('/nothing-here/1').expect(404);
    expect(missing.headers['content-type']).toMatch(PROBLEM);
    expect(missing.headers.allow).toBeUndefined();
    await t.api.get('/nothing-here').expect(404);
    // A supported method still reaches its route (here: the auth guard).
    await t.api.delete(`/comments/${comment.id}`).expect(401);
  });

  it('sends security headers and CORS only for the configured origin', async () => {
    const allowed = await t.api.get('/health').set('Origin', 'https://app.example.com').expect(200);
    expect(allowed.headers['x-content-type-options']).toBe('nosniff');
    expect(allowed.headers['content-security-policy']).toContain("default-src 'self'");
    expect(allowed.headers['x-powered-by']).toBeUndefined();
    // Errors carry them too: the headers are set when the request arrives, before any handler runs.
    const missing = await t.api.get('/users/999999').expect(404);
    expect(missing.headers['x-frame-options']).toBe('SAMEORIGIN');
    // Strict-Transport-Security only over HTTPS (RFC 6797 §7.2): test/http-conformance.e2e-spec.ts.
    expect(missing.headers['strict-transport-security']).toBeUndefined();
    expect(allowed.headers['access-control-allow-origin']).toBe('https://app.example.com');
    const other = await t.api.get('/health').set('Origin', 'https://evil.example.com').expect(200);
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('never shows stacks, SQL or driver messages, even for internal errors', async () => {
    const users = t.app.get(UsersService);
    const leaks = [
      new QueryFailedError(
        'SELECT secret FROM users WHERE password = $1',
        ['hunter2'],
        new Error('relation "users" does not exist'),
      ),
      new TypeError("Cannot read properties of undefined (reading 'id') at /work/src/users/users.service.ts:42"),
    ];
    for (const error of leaks) {
      const spy = jest.spyOn(users, 'findOne').mockRejectedValueOnce(error);
      const res = await t.api.get('/users/1').expect(500);
      spy.mockRestore();
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.body).toEqual({
        type: 'about:blank',
        title: 'Internal Server Error',
        status: 500,
        detail: 'An unexpected error occurred',
        instance: '/users/1',
      });
    }
  });

  it('rate limits per client with 429 problem+json and Retry-After, but never health probes', async () => {
    const limited = await startTestApp({ RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000' });
    try {
      for (let i = 0; i < 3; i++) await limited.api.get('/users').expect(200);
      const res = await limited.api.get('/users').expect(429);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      expect(res.body).toMatchObject({ status: 429, title: 'Too Many Requests', detail: RATE_LIMITED_DETAIL });
      for (let i = 0; i < 5; i++) await limited.api.get('/health').expect(200);
    } finally {
      await limited.close();
    }
  });

  it('RATE_LIMIT_MAX is per client across the whole API, not per endpoint: the 4th request to any route is 429', async () => {
    const limited = await startTestApp({ RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000' });
    try {
      await limited.api.get('/users').expect(200);
      await limited.api.get('/posts').expect(200);
      await limited.api.get('/users/999').expect(404); // errors count too
      await limited.api.get('/health/ready').expect(200); // probes are exempt and do not count
      for (const url of ['/users', '/posts', '/comments/1', '/users/1/posts']) {
        const res = await limited.api.get(url).expect(429);
        expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      }
      await limited.api.post('/users').send({ name: 'A', email: 'a@example.com' }).expect(429);
      expect(await limited.db.count('users')).toBe(0);
    } finally {
      await limited.close();
    }
  });
});

/** Issue #13, kind 4: the CORS protocol (Fetch standard) for everything the API uses. */
describe('CORS for an allowed origin', () => {
  const t = useTestApp({ CORS_ORIGINS: 'https://app.example', RATE_LIMIT_MAX: '1' });

  it.each(['PATCH', 'DELETE', 'POST'])(
    'a preflight for %s with if-match, content-type allows the method and the headers',
    async (method) => {
      const res = await t.api
        .options('/users/1')
        .set('Origin', 'https://app.example')
        .set('Access-Control-Request-Method', method)
        .set('Access-Control-Request-Headers', 'if-match, content-type');
      expect(res.status).toBeLessThan(300);
      expect(res.headers['access-control-allow-origin']).toBe('https://app.example');
      expect(res.headers['access-control-allow-methods'].split(/,\s*/)).toEqual(
        expect.arrayContaining(['GET', 'HEAD', 'POST', 'PATCH', 'DELETE']),
      );
      const allowed = res.headers['access-control-allow-headers'].toLowerCase().split(/,\s*/);
      expect(allowed).toEqual(expect.arrayContaining(['if-match', 'if-none-match', 'content-type']));
    },
  );

  it('exposes ETag, Location, Link, Retry-After and X-Request-Id to browser code, also on a 429', async () => {
    const first = await t.api.get('/users').set('Origin', 'https://app.example').expect(200);
    const exposed = first.headers['access-control-expose-headers'].toLowerCase().split(/,\s*/);
    expect(exposed).toEqual(expect.arrayContaining(['etag', 'location', 'link', 'retry-after', 'x-request-id']));
    const limited = await t.api.get('/users').set('Origin', 'https://app.example').expect(429);
    expect(limited.headers['access-control-allow-origin']).toBe('https://app.example');
    expect(limited.headers['access-control-expose-headers']).toMatch(/Retry-After/i);
  });

  it('a preflight from another origin gets no CORS headers', async () => {
    const res = await t.api
      .options('/users/1')
      .set('Origin', 'https://evil.example')
      .set('Access-Control-Request-Method', 'PATCH');
    expect(res.headers['access-control-allow-origin']).toBeUndefined(); // without it the browser refuses
  });
});
