import { adminAgent } from './setup/accounts';
import { useTestApp } from './setup/test-app';

const PROBLEM = /application\/problem\+json/;
/** superagent's serializer for a Buffer: the bytes as they are (it would send `{"type":"Buffer",…}`). */
const asBytes = (bytes: unknown) => bytes as string;

/** Issue #13, kind 3 (ordinary request headers) and issue #19 (Fastify's secure JSON parser). */
describe('request bodies and media types', () => {
  const t = useTestApp();
  // Writes need a caller allowed to make them: these tests act as an admin, who may make any.
  let api: Awaited<ReturnType<typeof adminAgent>>;
  beforeEach(async () => (api = await adminAgent(t)));

  it.each([
    'application/json; charset=utf-8',
    'application/json;charset=UTF-8',
    'application/json; charset="utf-8"',
    'application/merge-patch+json; charset=utf-8',
    'Application/JSON; Charset=utf-8',
  ])(
    'PATCH /users/{id} with Content-Type %s is 200 (RFC 9110 §8.3.1: parameters are part of the type)',
    async (type) => {
      const ada = await t.db.user('Ada');
      const res = await api.patch(`/users/${ada.id}`).set('Content-Type', type).send('{"name":"Ada K"}').expect(200);
      expect(res.body.name).toBe('Ada K');
      const [row] = await t.query('SELECT name FROM users WHERE id = $1', [ada.id]);
      expect(row.name).toBe('Ada K');
    },
  );

  it('refuses a charset other than UTF-8 with 415 (RFC 8259 §8.1: JSON is UTF-8), storing nothing', async () => {
    const ada = await t.db.user('Ada');
    const res = await api
      .patch(`/users/${ada.id}`)
      .set('Content-Type', 'application/json; charset=latin1')
      .send('{"name":"Ada K"}')
      .expect(415);
    expect(res.headers['content-type']).toMatch(PROBLEM);
    const [row] = await t.query('SELECT name FROM users WHERE id = $1', [ada.id]);
    expect(row.name).toBe('Ada');
  });

  it('DELETE /posts/{id} with Content-Type: application/json and no content answers as without the header', async () => {
    const ada = await t.db.user('Ada');
    const post = await t.db.post(ada.id);
    const res = await api
      .delete(`/posts/${post.id}`)
      .set('Content-Type', 'application/json')
      .set('Content-Length', '0')
      .expect(200);
    expect(res.body).toEqual({ message: 'Post deleted' });
    expect(await t.db.count('posts')).toBe(0);
    await api
      .delete(`/posts/${post.id}`)
      .set('Content-Type', 'application/json')
      .set('Content-Length', '0')
      .expect(404);
  });

  it('an empty body with a JSON type on every bodiless route is no body, not malformed JSON', async () => {
    const ada = await t.db.user('Ada');
    const post = await t.db.post(ada.id);
    const comment = await t.db.comment(post.id, ada.id);
    const empty = (req: ReturnType<typeof api.get>) =>
      req.set('Content-Type', 'application/json; charset=utf-8').set('Content-Length', '0');
    await empty(api.get(`/users/${ada.id}`)).expect(200);
    await empty(api.get('/posts')).expect(200);
    await empty(api.delete(`/comments/${comment.id}`)).expect(200);
    await empty(api.delete(`/users/${ada.id}`)).expect(200);
    // On a route that needs a body it is the same 400 as a request without one: no JSON object.
    const missing = await empty(api.post('/users')).expect(400);
    const without = await api.post('/users').expect(400);
    expect(missing.body).toEqual(without.body);
    expect(missing.body.detail).toBe('The request body must be a JSON object (got no body)');
  });

  it.each(['text/plain;charset=UTF-8', 'application/x-www-form-urlencoded'])(
    'no content with Content-Type %s (curl -d "", fetch with body "") is no body, not 415: the type describes content (RFC 9110 §8.3)',
    async (type) => {
      const ada = await t.db.user('Ada');
      const post = await t.db.post(ada.id);
      const empty = (req: ReturnType<typeof api.get>) => req.set('Content-Type', type).set('Content-Length', '0');
      await empty(api.delete(`/posts/${post.id}`)).expect(200);
      const missing = await empty(api.post('/users')).expect(400);
      expect(missing.body.detail).toBe('The request body must be a JSON object (got no body)');
      // With content, the type is refused before the body is read.
      const refused = await api.post('/users').set('Content-Type', type).send('name=A').expect(415);
      expect(refused.headers['content-type']).toMatch(PROBLEM);
    },
  );

  it.each([
    '{"name":"A","email":"a@example.com","__proto__":{"isAdmin":true}}',
    '{"name":"A","email":"a@example.com","profile":{"__proto__":{"bio":"x"}}}',
    '{"name":"A","email":"a@example.com","constructor":{"prototype":{"isAdmin":true}}}',
    '{"name":"A","email":"a@example.com","\\u005f_proto__":{}}',
  ])('a prototype-poisoning key is a 400 problem, not a silent drop: %s', async (body) => {
    const res = await api.post('/users').set('Content-Type', 'application/json').send(body).expect(400);
    expect(res.headers['content-type']).toMatch(PROBLEM);
    expect(res.body.detail).toMatch(/forbidden key/);
    expect(await t.db.count('users')).toBe(1); // the admin only
  });

  it('a lone UTF-16 surrogate in a string is a 400, and nothing is stored', async () => {
    const res = await api
      .post('/users')
      .set('Content-Type', 'application/json')
      .send('{"name":"\\ud800","email":"a@example.com"}')
      .expect(400);
    expect(res.headers['content-type']).toMatch(PROBLEM);
    expect(await t.db.count('users')).toBe(1); // the admin only
  });

  // PostgreSQL's text cannot hold U+0000; MariaDB and SQLite would store it. One answer on every
  // dialect: a 400 naming the field (RFC 9457 §3), and nothing stored.
  it.each([
    [
      'POST /users',
      'name',
      () => ({
        path: '/users',
        body: '{"name":"a\\u0000b","email":"nul@example.com","password":"correct horse battery staple"}',
      }),
    ],
    [
      'POST /users (nested)',
      'bio',
      () => ({
        path: '/users',
        body: '{"name":"N","email":"nul@example.com","password":"correct horse battery staple","profile":{"bio":"\\u0000"}}',
      }),
    ],
  ])(
    'a NUL character (U+0000) in a string of %s is a 400 naming %s, on every dialect, and nothing is stored',
    async (_call, field, request) => {
      const { path, body } = request();
      const res = await api.post(path).set('Content-Type', 'application/json').send(body).expect(400);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.body.detail).toMatch(/NUL/);
      expect(res.body.errors).toEqual([{ field, messages: [res.body.detail] }]);
      expect(await t.db.count('users')).toBe(1); // the admin only
    },
  );

  it('a NUL character in a post body or comment is a 400 on every dialect, and nothing is stored', async () => {
    const ada = await t.db.user('Ada');
    const post = await api
      .post(`/users/${ada.id}/posts`)
      .set('Content-Type', 'application/json')
      .send('{"title":"T","body":"a\\u0000b"}')
      .expect(400);
    expect(post.body.errors).toEqual([{ field: 'body', messages: [post.body.detail] }]);
    expect(await t.db.count('posts')).toBe(0);
    const { body: created } = await api.post(`/users/${ada.id}/posts`).send({ title: 'T', body: 'B' }).expect(201);
    await api
      .post(`/posts/${created.id}/comments`)
      .set('Content-Type', 'application/json')
      .send('{"body":"\\u0000"}')
      .expect(400);
    expect(await t.db.count('comments')).toBe(0);
  });

  it('bytes that are not UTF-8 in a JSON body are a 400, not U+FFFD stored (RFC 8259 §8.1)', async () => {
    const ada = await t.db.user('Ada');
    for (const bad of [[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xe2, 0x82]]) {
      const body = Buffer.concat([Buffer.from('{"name":"A'), Buffer.from(bad), Buffer.from('"}')]);
      const res = await api
        .patch(`/users/${ada.id}`)
        .set('Content-Type', 'application/json')
        .serialize(asBytes)
        .send(body)
        .expect(400);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.body.detail).toMatch(/UTF-8/);
    }
    const [row] = await t.query('SELECT name FROM users WHERE id = $1', [ada.id]);
    expect(row.name).toBe('Ada');
    // Valid UTF-8 beyond ASCII, and a leading byte order mark (RFC 8259 §8.1 lets a parser ignore it), still pass.
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"name":"Zoë 😀"}')]);
    const ok = await api
      .patch(`/users/${ada.id}`)
      .set('Content-Type', 'application/json')
      .serialize(asBytes)
      .send(bom)
      .expect(200);
    expect(ok.body.name).toBe('Zoë 😀');
  });

  it.each(['gzip', 'deflate', 'br', 'identity, gzip', 'x-unknown'])(
    'a body with Content-Encoding: %s is 415 with Accept-Encoding: identity (RFC 9110 §15.5.16, §12.5.3), nothing stored',
    async (coding) => {
      const ada = await t.db.user('Ada');
      const res = await api
        .patch(`/users/${ada.id}`)
        .set('Content-Type', 'application/json')
        .set('Content-Encoding', coding)
        .send('{"name":"Ada K"}')
        .expect(415);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.headers['accept-encoding']).toBe('identity');
      expect(res.body).toMatchObject({ status: 415, instance: `/users/${ada.id}` });
      const [row] = await t.query('SELECT name FROM users WHERE id = $1', [ada.id]);
      expect(row.name).toBe('Ada');
    },
  );

  it('Content-Encoding: identity, or on a request without a body, changes nothing (RFC 9110 §8.4.1)', async () => {
    const ada = await t.db.user('Ada');
    await api
      .patch(`/users/${ada.id}`)
      .set('Content-Type', 'application/json')
      .set('Content-Encoding', 'identity')
      .send('{"name":"Ada K"}')
      .expect(200);
    await api.get(`/users/${ada.id}`).set('Content-Encoding', 'gzip').expect(200);
  });

  it.each([
    'constructor',
    'hasOwnProperty',
    'isPrototypeOf',
    'propertyIsEnumerable',
    '__defineGetter__',
    'toString',
    'valueOf',
  ])(
    'a body key named %s (an inherited member) is a 400 naming it, at the top and nested, nothing stored',
    async (key) => {
      const ada = await t.db.user('Ada');
      const top = await api
        .patch(`/users/${ada.id}`)
        .set('Content-Type', 'application/json')
        .send(`{"name":"Ada K","${key}":"x"}`)
        .expect(400);
      expect(top.headers['content-type']).toMatch(PROBLEM);
      expect(top.body.errors).toEqual([{ field: key, messages: [`property ${key} should not exist`] }]);
      const nested = await api
        .patch(`/users/${ada.id}`)
        .set('Content-Type', 'application/json')
        .send(`{"profile":{"bio":"b","${key}":1}}`)
        .expect(400);
      expect(nested.body.errors).toEqual([
        { field: `profile.${key}`, messages: [`property profile.${key} should not exist`] },
      ]);
      const [row] = await t.query('SELECT name FROM users WHERE id = $1', [ada.id]);
      expect(row.name).toBe('Ada');
    },
  );

  it.each(['constructor', 'hasOwnProperty', '__proto__', 'toString', '__lookupGetter__'])(
    'a query key named %s is a 400 naming it',
    async (key) => {
      const res = await api.get(`/users?${key}=1`).expect(400);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.body.errors).toEqual([{ field: key, messages: [`property ${key} should not exist`] }]);
    },
  );

  it('a body with thousands of unknown fields: 400 listing the first 20, the detail saying how many (RFC 9457 §3)', async () => {
    const ada = await t.db.user('Ada');
    const body = Object.fromEntries(Array.from({ length: 3_000 }, (_, i) => [`f${i}`, i]));
    const res = await api.patch(`/users/${ada.id}`).send(body).expect(400);
    expect(res.headers['content-type']).toMatch(PROBLEM);
    expect(res.body.errors).toHaveLength(20);
    expect(res.body.errors[0]).toEqual({ field: 'f0', messages: ['property f0 should not exist'] });
    expect(res.body.detail).toMatch(/the first 20 of 3000 invalid fields/);
    expect(res.text.length).toBeLessThan(4_000);
  });
});
