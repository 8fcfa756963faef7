import { tokenFor } from './setup/accounts';
import { useTestApp } from './setup/test-app';

const PROBLEM = /application\/problem\+json/;
type Who = 'anonymous' | 'another user' | 'the owner' | 'an admin';
const WHO: Who[] = ['anonymous', 'another user', 'the owner', 'an admin'];

/**
 * Every write route × every kind of caller, with the database checked after each request: the
 * README's ownership table, enforced. 401 for anonymous (RFC 6750 §3.1), 403 for someone else's
 * resource (RFC 9110 §15.5.4), and the write happens only for the owner and for admins.
 */
describe('ownership of every write', () => {
  const t = useTestApp();

  /** A fresh owner, another user and an admin, each with a live session, and the owner's post with a comment by another user. */
  async function world() {
    const owner = await t.db.user('Owner');
    const other = await t.db.user('Other');
    const admin = await t.db.user('Admin');
    await t.query(`UPDATE users SET role = 'admin' WHERE id = $1`, [admin.id]);
    const post = await t.db.post(owner.id, 'Original');
    const commenter = await t.db.user('Commenter');
    const comment = await t.db.comment(post.id, commenter.id, 'By the commenter');
    const tokens = {
      anonymous: undefined,
      'another user': await tokenFor(t.app, other.id),
      'the owner': await tokenFor(t.app, owner.id),
      'an admin': await tokenFor(t.app, admin.id),
    } satisfies Record<Who, string | undefined>;
    return { owner, other, admin, post, comment, commenter, tokens };
  }
  type World = Awaited<ReturnType<typeof world>>;

  const query = <T>(sql: string, params: unknown[]) => t.query<T[]>(sql, params).then((rows) => rows[0]);

  interface Route {
    name: string;
    send: (w: World, token?: string) => Promise<{ status: number; headers: Record<string, string> }>;
    expected: Record<Who, number>;
    /** Whether the write is visible in the database afterwards. */
    happened: (w: World) => Promise<boolean>;
  }
  const authorized = (token?: string) => (token ? { Authorization: `Bearer ${token}` } : {});

  const routes: Route[] = [
    {
      name: 'PATCH /users/{id}',
      send: (w, token) => t.api.patch(`/users/${w.owner.id}`).set(authorized(token)).send({ name: 'Changed' }),
      expected: { anonymous: 401, 'another user': 403, 'the owner': 200, 'an admin': 200 },
      happened: async (w) =>
        (await query<{ name: string }>('SELECT name FROM users WHERE id = $1', [w.owner.id])).name === 'Changed',
    },
    {
      name: 'DELETE /users/{id}',
      send: (w, token) => t.api.delete(`/users/${w.owner.id}`).set(authorized(token)),
      expected: { anonymous: 401, 'another user': 403, 'the owner': 200, 'an admin': 200 },
      happened: async (w) => !(await query('SELECT 1 FROM users WHERE id = $1', [w.owner.id])),
    },
    {
      name: 'POST /users/{id}/posts',
      send: (w, token) =>
        t.api.post(`/users/${w.owner.id}/posts`).set(authorized(token)).send({ title: 'New', body: 'b' }),
      expected: { anonymous: 401, 'another user': 403, 'the owner': 201, 'an admin': 201 },
      happened: async (w) =>
        Boolean(await query('SELECT 1 FROM posts WHERE author_id = $1 AND title = $2', [w.owner.id, 'New'])),
    },
    {
      name: 'PATCH /posts/{id}',
      send: (w, token) => t.api.patch(`/posts/${w.post.id}`).set(authorized(token)).send({ title: 'Changed' }),
      expected: { anonymous: 401, 'another user': 403, 'the owner': 200, 'an admin': 200 },
      happened: async (w) =>
        (await query<{ title: string }>('SELECT title FROM posts WHERE id = $1', [w.post.id])).title === 'Changed',
    },
    {
      name: 'DELETE /posts/{id}',
      send: (w, token) => t.api.delete(`/posts/${w.post.id}`).set(authorized(token)),
      expected: { anonymous: 401, 'another user': 403, 'the owner': 200, 'an admin': 200 },
      happened: async (w) => !(await query('SELECT 1 FROM posts WHERE id = $1', [w.post.id])),
    },
    {
      name: 'POST /posts/{id}/comments (any signed-in user)',
      send: (w, token) =>
        t.api.post(`/posts/${w.post.id}/comments`).set(authorized(token)).send({ body: 'New comment' }),
      expected: { anonymous: 401, 'another user': 201, 'the owner': 201, 'an admin': 201 },
      happened: async (w) =>
        Boolean(await query('SELECT 1 FROM comments WHERE post_id = $1 AND body = $2', [w.post.id, 'New comment'])),
    },
    {
      name: 'DELETE /comments/{id} (the owner: the post’s author)',
      send: (w, token) => t.api.delete(`/comments/${w.comment.id}`).set(authorized(token)),
      expected: { anonymous: 401, 'another user': 403, 'the owner': 200, 'an admin': 200 },
      happened: async (w) => !(await query('SELECT 1 FROM comments WHERE id = $1', [w.comment.id])),
    },
  ];

  describe.each(routes)('$name', (route) => {
    it.each(WHO)('by %s', async (who) => {
      const w = await world();
      const res = await route.send(w, w.tokens[who]);
      expect(res.status).toBe(route.expected[who]);
      expect(await route.happened(w)).toBe(res.status < 300);
      if (res.status >= 400) expect(res.headers['content-type']).toMatch(PROBLEM);
      if (res.status === 401) expect(res.headers['www-authenticate']).toBe('Bearer realm="api"');
    });
  });

  it('POST /users (sign-up) is open to anyone', async () => {
    await t.api
      .post('/users')
      .send({ name: 'New', email: 'new@example.com', password: 'long enough to be a password' })
      .expect(201);
    expect(await t.db.count('users')).toBe(1);
  });

  it('DELETE /comments/{id}: the comment’s own author may delete it too', async () => {
    const w = await world();
    await t.api
      .delete(`/comments/${w.comment.id}`)
      .set(authorized(await tokenFor(t.app, w.commenter.id)))
      .expect(200);
    expect(await t.db.count('comments')).toBe(0);
  });

  it('a comment’s author is the caller; authorId in the body is refused (400) unless an admin sends it', async () => {
    const w = await world();
    const mine = await t.api
      .post(`/posts/${w.post.id}/comments`)
      .set(authorized(w.tokens['another user']))
      .send({ body: 'Mine' })
      .expect(201);
    expect(mine.body.authorId).toBe(w.other.id);

    const impersonation = await t.api
      .post(`/posts/${w.post.id}/comments`)
      .set(authorized(w.tokens['another user']))
      .send({ authorId: w.owner.id, body: 'As the owner' })
      .expect(400);
    expect(impersonation.body.errors).toEqual([expect.objectContaining({ field: 'authorId' })]);

    const nested = await t.api
      .post(`/users/${w.owner.id}/posts`)
      .set(authorized(w.tokens['the owner']))
      .send({ title: 'T', body: 'B', comments: [{ body: 'fine' }, { authorId: w.other.id, body: 'as other' }] })
      .expect(400);
    expect(nested.body.errors).toEqual([expect.objectContaining({ field: 'comments.1.authorId' })]);
    expect(await t.db.count('posts')).toBe(1); // only the world's post

    const onBehalf = await t.api
      .post(`/posts/${w.post.id}/comments`)
      .set(authorized(w.tokens['an admin']))
      .send({ authorId: w.owner.id, body: 'Moderated' })
      .expect(201);
    expect(onBehalf.body.authorId).toBe(w.owner.id);
    const stored = await t.query('SELECT author_id AS "authorId", body FROM comments WHERE post_id = $1 ORDER BY id', [
      w.post.id,
    ]);
    expect(stored).toEqual([
      { authorId: w.commenter.id, body: 'By the commenter' },
      { authorId: w.other.id, body: 'Mine' },
      { authorId: w.owner.id, body: 'Moderated' },
    ]);
  });

  it.each(['another user', 'an admin'] as const)('a missing resource is 404 for %s, never 403', async (who) => {
    const w = await world();
    const headers = authorized(w.tokens[who]);
    await t.api.patch('/users/99999').set(headers).send({ name: 'x' }).expect(404);
    await t.api.delete('/users/99999').set(headers).expect(404);
    await t.api.post('/users/99999/posts').set(headers).send({ title: 'T', body: 'B' }).expect(404);
    await t.api.patch('/posts/99999').set(headers).send({ title: 'x' }).expect(404);
    await t.api.delete('/posts/99999').set(headers).expect(404);
    await t.api.post('/posts/99999/comments').set(headers).send({ body: 'x' }).expect(404);
    await t.api.delete('/comments/99999').set(headers).expect(404);
  });
});
