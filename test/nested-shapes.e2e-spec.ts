import { MAX_JSON_DEPTH } from '../src/http/json-body';
import { adminAgent, PASSWORD } from './setup/accounts';
import { useTestApp } from './setup/test-app';

const PROBLEM = /application\/problem\+json/;
const J = 'application/json';

/** `[[[…[value]…]]]`, `depth` arrays deep. */
const nestedArray = (depth: number, value: unknown) => '['.repeat(depth) + JSON.stringify(value) + ']'.repeat(depth);

/** Issue #13, kind 1: nested shapes are validated as shapes. */
describe('nested shapes', () => {
  const t = useTestApp();
  // Writes need a caller allowed to make them: these tests act as an admin, who may make any.
  let api: Awaited<ReturnType<typeof adminAgent>>;
  beforeEach(async () => (api = await adminAgent(t)));

  const countAll = async () => ({
    users: await t.db.count('users'),
    profiles: await t.db.count('profiles'),
    posts: await t.db.count('posts'),
    comments: await t.db.count('comments'),
  });
  const nothing = { users: 1 /* the admin */, profiles: 0, posts: 0, comments: 0 };

  it('POST /users with profile as an array of objects is 400 naming profile, and stores nothing', async () => {
    const res = await api
      .post('/users')
      .send({ name: 'A', email: 'a1@example.com', password: PASSWORD, profile: [{ bio: 'Analyst' }] })
      .expect(400);
    expect(res.headers['content-type']).toMatch(PROBLEM);
    expect(res.body.errors).toEqual([{ field: 'profile', messages: ['profile must be an object'] }]);
    expect(await countAll()).toEqual(nothing);
  });

  it('POST /users with "profile": [] is 400 and creates no (empty) profile', async () => {
    const res = await api
      .post('/users')
      .send({ name: 'A', email: 'a1@example.com', password: PASSWORD, profile: [] })
      .expect(400);
    expect(res.body.errors).toEqual([expect.objectContaining({ field: 'profile' })]);
    expect(await countAll()).toEqual(nothing);
  });

  it('PATCH /users/{id} {"profile":[{"bio":"new"}]} is 400; profile and version unchanged', async () => {
    const ada = await t.db.user('Ada');
    await t.db.profile(ada.id, 'old');
    const res = await api
      .patch(`/users/${ada.id}`)
      .send({ profile: [{ bio: 'new' }] })
      .expect(400);
    expect(res.body.errors).toEqual([expect.objectContaining({ field: 'profile' })]);
    const [row] = await t.query(
      'SELECT u.version, p.bio FROM users u JOIN profiles p ON p.user_id = u.id WHERE u.id = $1',
      [ada.id],
    );
    expect(row).toEqual({ version: 1, bio: 'old' });
  });

  // Every object-typed field rejects arrays and scalars, with a field-level error.
  // (Each case wrapped in an array of its own: it.each spreads array rows into arguments.)
  const notObjects = [[], [{ bio: 'x' }], 'bio', 42, true].map((value) => [value]);
  it.each(notObjects)('profile = %j is 400 naming profile, on POST and PATCH', async (profile) => {
    const created = await api
      .post('/users')
      .send({ name: 'A', email: 'a@example.com', password: PASSWORD, profile })
      .expect(400);
    expect(created.body.errors).toEqual([{ field: 'profile', messages: [expect.any(String)] }]);
    const ada = await t.db.user('Ada');
    const patched = await api.patch(`/users/${ada.id}`).send({ profile }).expect(400);
    expect(patched.body.errors).toEqual([{ field: 'profile', messages: [expect.any(String)] }]);
    expect(await t.db.count('profiles')).toBe(0);
    const [{ version }] = await t.query('SELECT version FROM users WHERE id = $1', [ada.id]);
    expect(version).toBe(1);
  });

  // Every array-of-objects field rejects nested arrays and scalar elements.
  const notObjectElements = [[[{ title: 'T', body: 'B' }]], [1], ['x'], [null]].map((value) => [value]);
  it.each(notObjectElements)('posts = %j on POST /users is 400 naming posts, nothing stored', async (posts) => {
    const res = await api
      .post('/users')
      .send({ name: 'A', email: 'a@example.com', password: PASSWORD, posts })
      .expect(400);
    expect(res.body.errors).toEqual([{ field: 'posts', messages: ['each value in posts must be an object'] }]);
    expect(await countAll()).toEqual(nothing);
  });

  it.each(notObjectElements)(
    'comments = %j on POST /users/{id}/posts is 400 naming comments, nothing stored',
    async (comments) => {
      const ada = await t.db.user('Ada');
      const res = await api.post(`/users/${ada.id}/posts`).send({ title: 'T', body: 'B', comments }).expect(400);
      expect(res.body.errors).toEqual([{ field: 'comments', messages: ['each value in comments must be an object'] }]);
      expect(await t.db.count('posts')).toBe(0);
    },
  );

  it.each(['posts', 'profile'])(
    'a 3.6 kB body whose %s is an array nested 1,800 deep is 400, not 500',
    async (field) => {
      const body = `{"name":"A","email":"a@example.com","${field}":${nestedArray(1_800, { title: 'T', body: 'B' })}}`;
      expect(body.length).toBeGreaterThan(3_600);
      const res = await api.post('/users').set('Content-Type', J).send(body).expect(400);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.body.detail).toContain(`deeper than ${MAX_JSON_DEPTH} levels`);
      expect(await countAll()).toEqual(nothing);
    },
  );

  it('no body under the size limit yields a 5xx, whatever its depth, on every write', async () => {
    const ada = await t.db.user('Ada');
    const post = await t.db.post(ada.id);
    const writes: [string, string][] = [
      ['post', '/users'],
      ['patch', `/users/${ada.id}`],
      ['post', `/users/${ada.id}/posts`],
      ['patch', `/posts/${post.id}`],
      ['post', `/posts/${post.id}/comments`],
    ];
    for (const depth of [MAX_JSON_DEPTH - 2, MAX_JSON_DEPTH + 1, 10_000, 50_000]) {
      for (const [method, url] of writes) {
        const body = `{"profile":${nestedArray(depth, 1)},"posts":${nestedArray(depth, 1)}}`;
        const res = await (method === 'post' ? api.post(url) : api.patch(url)).set('Content-Type', J).send(body);
        expect([400, 413]).toContain(res.status);
        expect(res.headers['content-type']).toMatch(PROBLEM);
      }
    }
    // Objects count as levels too, and brackets inside strings do not.
    const deepObject = '{"a":'.repeat(MAX_JSON_DEPTH + 1) + '1' + '}'.repeat(MAX_JSON_DEPTH + 1);
    await api.post('/users').set('Content-Type', J).send(deepObject).expect(400);
    const res = await api
      .post('/users')
      .send({ name: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[', email: 'brackets@example.com', password: PASSWORD })
      .expect(201);
    expect(res.body.name).toMatch(/^\[+$/);
  });
});

/** Issue #19: one validation message per fault, the most specific. */
describe('validation messages', () => {
  const t = useTestApp();
  // Writes need a caller allowed to make them: these tests act as an admin, who may make any.
  let api: Awaited<ReturnType<typeof adminAgent>>;
  beforeEach(async () => (api = await adminAgent(t)));

  it.each([
    ['', 'name must not be blank'],
    ['   ', 'name must not be blank'],
    ['x'.repeat(101), 'name must be shorter than or equal to 100 characters'],
    [42, 'name must be a string'],
    [['Ada'], 'name must be a string'],
  ])('name %j gets exactly one message: %s', async (name, message) => {
    const res = await api.post('/users').send({ name, email: 'a@example.com', password: PASSWORD }).expect(400);
    expect(res.body.errors).toEqual([{ field: 'name', messages: [message] }]);
  });

  it('a wrong type is the one fault reported for a field, also in nested and numeric fields', async () => {
    const ada = await t.db.user('Ada');
    const post = await t.db.post(ada.id);
    const email = await api.post('/users').send({ name: 'A', email: 7, password: PASSWORD }).expect(400);
    expect(email.body.errors).toEqual([{ field: 'email', messages: ['email must be a string'] }]);
    const bio = await api
      .patch(`/users/${ada.id}`)
      .send({ profile: { bio: 5 } })
      .expect(400);
    expect(bio.body.errors).toEqual([{ field: 'profile.bio', messages: ['bio must be a string'] }]);
    const author = await api.post(`/posts/${post.id}/comments`).send({ authorId: 'x', body: 'hi' }).expect(400);
    expect(author.body.errors).toEqual([{ field: 'authorId', messages: ['authorId must be an integer number'] }]);
    const title = await api.patch(`/posts/${post.id}`).send({ title: '' }).expect(400);
    expect(title.body.errors).toEqual([{ field: 'title', messages: ['title must not be blank'] }]);
  });
});
