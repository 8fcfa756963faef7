import { adminAgent, authAs, PASSWORD } from './setup/accounts';
import { useTestApp } from './setup/test-app';

const PROBLEM = /application\/problem\+json/;

describe('ETags and conditional requests', () => {
  const t = useTestApp();

  it('GET returns a strong ETag; If-None-Match with it is 304 without a body', async () => {
    const ada = await t.db.user('Ada');
    const first = await t.api.get(`/users/${ada.id}`).expect(200);
    expect(first.headers.etag).toMatch(/^"\d+-[\w-]+"$/);
    const cached = await t.api.get(`/users/${ada.id}`).set('If-None-Match', first.headers.etag).expect(304);
    expect(cached.text).toBeFalsy();
  });

  it('the ETag changes when the user or anything included in the representation changes', async () => {
    const ada = await t.db.user('Ada');
    const auth = await authAs(t.app, ada.id);
    const tag = async () => (await t.api.get(`/users/${ada.id}`).expect(200)).headers.etag;
    const initial = await tag();
    await t.db.post(ada.id); // a related row, not the user's own
    const withPost = await tag();
    expect(withPost).not.toBe(initial);
    await t.api.patch(`/users/${ada.id}`).set(auth).send({ name: 'Ada K' }).expect(200);
    expect(await tag()).not.toBe(withPost);
  });

  it('of two clients PATCHing with the same If-Match, exactly one wins and only its change is stored', async () => {
    const ada = await t.db.user('Ada');
    const auth = await authAs(t.app, ada.id);
    const { etag } = (await t.api.get(`/users/${ada.id}`).expect(200)).headers;

    const [a, b] = await Promise.all([
      t.api.patch(`/users/${ada.id}`).set(auth).set('If-Match', etag).send({ name: 'Client A' }),
      t.api.patch(`/users/${ada.id}`).set(auth).set('If-Match', etag).send({ name: 'Client B' }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 412]);
    const loser = a.status === 412 ? a : b;
    const winner = a.status === 200 ? a : b;
    expect(loser.headers['content-type']).toMatch(PROBLEM);
    const [row] = await t.query('SELECT name, version FROM users WHERE id = $1', [ada.id]);
    expect(row).toEqual({ name: winner.body.name, version: 2 });
  });

  it('a stale If-Match on DELETE is 412 and deletes nothing; a current one deletes', async () => {
    const ada = await t.db.user('Ada');
    const auth = await authAs(t.app, ada.id);
    const stale = (await t.api.get(`/users/${ada.id}`).expect(200)).headers.etag;
    const fresh = (await t.api.patch(`/users/${ada.id}`).set(auth).send({ name: 'Ada 2' }).expect(200)).headers.etag;
    await t.api.delete(`/users/${ada.id}`).set(auth).set('If-Match', stale).expect(412);
    expect(await t.db.count('users')).toBe(1);
    await t.api.delete(`/users/${ada.id}`).set(auth).set('If-Match', fresh).expect(200);
    expect(await t.db.count('users')).toBe(0);
  });

  it('a missing row is 404, not 412, whatever If-Match says', async () => {
    const auth = await authAs(t.app, (await t.db.user('Someone')).id);
    await t.api.patch('/users/999').set(auth).set('If-Match', '"1-abc"').send({ name: 'x' }).expect(404);
    await t.api.delete('/posts/999').set(auth).set('If-Match', '"1-abc"').expect(404);
  });

  it('weak or malformed tags never match (412); `*` means any current version', async () => {
    const ada = await t.db.user('Ada');
    const auth = await authAs(t.app, ada.id);
    await t.api.patch(`/users/${ada.id}`).set(auth).set('If-Match', 'W/"1-abc"').send({ name: 'x' }).expect(412);
    await t.api.patch(`/users/${ada.id}`).set(auth).set('If-Match', 'garbage').send({ name: 'x' }).expect(412);
    await t.api.patch(`/users/${ada.id}`).set(auth).set('If-Match', '*').send({ name: 'Star' }).expect(200);
  });

  it('posts have versions and ETags too', async () => {
    const ada = await t.db.user('Ada');
    const auth = await authAs(t.app, ada.id);
    const post = await t.db.post(ada.id);
    const { etag } = (await t.api.get(`/posts/${post.id}`).expect(200)).headers;
    await t.api.get(`/posts/${post.id}`).set('If-None-Match', etag).expect(304);
    const updated = await t.api
      .patch(`/posts/${post.id}`)
      .set(auth)
      .set('If-Match', etag)
      .send({ title: 'New' })
      .expect(200);
    expect(updated.headers.etag).not.toBe(etag);
    await t.api.patch(`/posts/${post.id}`).set(auth).set('If-Match', etag).send({ title: 'Lost update' }).expect(412);
    const [row] = await t.query('SELECT title, version FROM posts WHERE id = $1', [post.id]);
    expect(row).toEqual({ title: 'New', version: 2 });
  });
});

/** Issue #13, kind 2: every precondition header on every route, against RFC 9110 §13.1 and §13.2. */
describe('preconditions (RFC 9110 §13)', () => {
  const t = useTestApp();
  // Writes need a caller allowed to make them: these tests act as an admin, who may make any.
  let api: Awaited<ReturnType<typeof adminAgent>>;
  beforeEach(async () => (api = await adminAgent(t)));

  const arrange = async () => {
    const ada = await t.db.user('Ada');
    const post = await t.db.post(ada.id, 'Before');
    const { etag } = (await api.get(`/posts/${post.id}`).expect(200)).headers;
    return { ada, post, etag: etag };
  };
  const postRow = async (id: number) =>
    (await t.query('SELECT title, version FROM posts WHERE id = $1', [id]))[0] as
      { title: string; version: number } | undefined;

  it('§13.1.2: If-None-Match uses the weak comparison: W/"<etag>" on GET and HEAD is 304', async () => {
    const { post, etag } = await arrange();
    const weak = `W/${etag}`;
    const get = await api.get(`/posts/${post.id}`).set('If-None-Match', weak).expect(304);
    expect(get.headers.etag).toBe(etag);
    expect(get.text).toBeFalsy();
    await api.head(`/posts/${post.id}`).set('If-None-Match', weak).expect(304);
    expect((await api.head(`/posts/${post.id}`).expect(200)).headers.etag).toBe(etag); // HEAD's tag is GET's
    await api.get(`/posts/${post.id}`).set('If-None-Match', `"other", ${weak}`).expect(304); // a list
    await api.get(`/posts/${post.id}`).set('If-None-Match', '*').expect(304); // `*`: it exists
  });

  it('§13.1.2: DELETE with If-None-Match: * is 412 and the post stays', async () => {
    const { post } = await arrange();
    const res = await api.delete(`/posts/${post.id}`).set('If-None-Match', '*').expect(412);
    expect(res.headers['content-type']).toMatch(PROBLEM);
    expect(await postRow(post.id)).toEqual({ title: 'Before', version: 1 });
  });

  it('§13.1.2: PATCH with If-None-Match: * is 412 while the post exists (nothing changed), 404 once it is gone', async () => {
    const { post } = await arrange();
    const res = await api.patch(`/posts/${post.id}`).set('If-None-Match', '*').send({ title: 'After' }).expect(412);
    expect(res.headers['content-type']).toMatch(PROBLEM);
    expect(await postRow(post.id)).toEqual({ title: 'Before', version: 1 });
    await api.delete(`/posts/${post.id}`).expect(200);
    await api.patch(`/posts/${post.id}`).set('If-None-Match', '*').send({ title: 'After' }).expect(404);
  });

  it('§13.1.2: PATCH with If-None-Match naming the current ETag (strong or weak) is 412, nothing changed', async () => {
    const { post, etag } = await arrange();
    await api.patch(`/posts/${post.id}`).set('If-None-Match', etag).send({ title: 'After' }).expect(412);
    await api.patch(`/posts/${post.id}`).set('If-None-Match', `W/${etag}`).send({ title: 'After' }).expect(412);
    expect(await postRow(post.id)).toEqual({ title: 'Before', version: 1 });
    // Naming only an older version, it holds.
    const fresh = (await api.patch(`/posts/${post.id}`).send({ title: 'Second' }).expect(200)).headers.etag;
    await api.patch(`/posts/${post.id}`).set('If-None-Match', etag).send({ title: 'Third' }).expect(200);
    await api.delete(`/posts/${post.id}`).set('If-None-Match', fresh).expect(200);
    expect(await postRow(post.id)).toBeUndefined();
  });

  it('§13.1.2: a user PATCH/DELETE with a matching If-None-Match is 412 too', async () => {
    const ada = await t.db.user('Ada');
    const { etag } = (await api.get(`/users/${ada.id}`).expect(200)).headers;
    await api.patch(`/users/${ada.id}`).set('If-None-Match', etag).send({ name: 'X' }).expect(412);
    await api.delete(`/users/${ada.id}`).set('If-None-Match', '*').expect(412);
    const [row] = await t.query('SELECT name, version FROM users WHERE id = $1', [ada.id]);
    expect(row).toEqual({ name: 'Ada', version: 1 });
  });

  it('§13.1.1: If-Match takes a list (any member may match) and compares strongly (W/ never matches)', async () => {
    const { post, etag } = await arrange();
    await api.patch(`/posts/${post.id}`).set('If-Match', `W/${etag}`).send({ title: 'Weak' }).expect(412);
    await api.patch(`/posts/${post.id}`).set('If-Match', `"0-stale", ${etag}`).send({ title: 'Listed' }).expect(200);
    expect(await postRow(post.id)).toEqual({ title: 'Listed', version: 2 });
  });

  it('§13.1.1: If-Match on GET/HEAD: a stale tag is 412 problem+json, the current tag or * is 200', async () => {
    const { post, etag } = await arrange();
    const stale = await api.get(`/posts/${post.id}`).set('If-Match', '"1-stale"').expect(412);
    expect(stale.headers['content-type']).toMatch(PROBLEM);
    expect(stale.body).toEqual(expect.objectContaining({ status: 412, instance: `/posts/${post.id}` }));
    await api.head(`/posts/${post.id}`).set('If-Match', '"1-stale"').expect(412);
    await api.get(`/posts/${post.id}`).set('If-Match', etag).expect(200);
    await api.get(`/posts/${post.id}`).set('If-Match', '*').expect(200);
    // A collection has no entity tag: a tag list cannot match it.
    await api.get('/posts').set('If-Match', etag).expect(412);
    await api.get('/posts').set('If-Match', '*').expect(200);
  });

  it('§13.2.2: If-Match is evaluated before If-None-Match', async () => {
    const { post, etag } = await arrange();
    await api.get(`/posts/${post.id}`).set('If-Match', '"1-stale"').set('If-None-Match', etag).expect(412);
    await api.get(`/posts/${post.id}`).set('If-Match', etag).set('If-None-Match', etag).expect(304);
  });

  it('§8.8.3: unparseable or out-of-range tags match nothing: If-Match is 412, If-None-Match holds', async () => {
    const { post } = await arrange();
    for (const tag of ['garbage', '"99999999999-x"', '"9999999999-x"', '"2147483648-x"', '"-1-x"', '1-abc']) {
      await api.patch(`/posts/${post.id}`).set('If-Match', tag).send({ title: 'X' }).expect(412);
      await api.delete(`/posts/${post.id}`).set('If-Match', tag).expect(412);
      await api.get(`/posts/${post.id}`).set('If-None-Match', tag).expect(200);
    }
    expect(await postRow(post.id)).toEqual({ title: 'Before', version: 1 });
    await api.patch(`/posts/${post.id}`).set('If-None-Match', 'garbage').send({ title: 'After' }).expect(200);
  });

  it('§13.2.1: preconditions are ignored when the target is missing (404) or the request malformed (400)', async () => {
    await api.delete('/posts/999').set('If-None-Match', '*').expect(404);
    await api.patch('/posts/999').set('If-Match', '"1-x"').send({ title: 'x' }).expect(404);
    await api.patch('/users/999').set('If-None-Match', '*').send({ name: 'x' }).expect(404);
    await api.delete('/users/999').set('If-Match', '"1-x"').expect(404);
    await api.post('/posts/999/comments').set('If-Match', '"1-x"').send({ authorId: 1, body: 'x' }).expect(404);
    await api.post('/users/999/posts').set('If-Match', '"1-x"').send({ title: 'T', body: 'B' }).expect(404);
    await api.delete('/comments/999').set('If-Match', '"1-x"').expect(404);
    await api.post('/users').set('If-Match', '"1-x"').send({ name: 'A' }).expect(400);
  });

  describe('§13.2.1, §13.2.2: preconditions are evaluated before the write’s effect, so a failed one is 412 even where the effect would fail with 409 or 422', () => {
    const userRow = async (id: number) =>
      (await t.query('SELECT email, role, version FROM users WHERE id = $1', [id]))[0] as
        { email: string; role: string; version: number } | undefined;
    /** The only admin (the test's agent is an admin too: it is made an ordinary user first). */
    const loneAdmin = async () => {
      const root = await t.db.user('Root', 'root@example.com');
      await t.query(`UPDATE users SET role = 'user' WHERE role = 'admin'`);
      await t.query(`UPDATE users SET role = 'admin' WHERE id = $1`, [root.id]);
      const auth = await authAs(t.app, root.id);
      const { etag } = (await t.api.get(`/users/${root.id}`).set(auth).expect(200)).headers;
      return { root, auth, etag, stale: etag.replace(/^"1-/, '"2-') };
    };

    it('PATCH /users/{id}: a taken email with a stale If-Match is 412, with the current one 409', async () => {
      const ada = await t.db.user('Ada', 'ada@example.com');
      await t.db.user('Bo', 'bo@example.com');
      const { etag } = (await api.get(`/users/${ada.id}`).expect(200)).headers;
      const stale = etag.replace(/^"1-/, '"2-');
      const taken = { email: 'BO@example.com' };
      const res = await api.patch(`/users/${ada.id}`).set('If-Match', stale).send(taken).expect(412);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      await api.patch(`/users/${ada.id}`).set('If-None-Match', etag).send(taken).expect(412);
      await api.patch(`/users/${ada.id}`).set('If-Match', etag).send(taken).expect(409);
      expect(await userRow(ada.id)).toEqual({ email: 'ada@example.com', role: 'user', version: 1 });
    });

    it('PATCH /users/{id}: the last admin giving up the role with a stale If-Match is 412, with the current one 409', async () => {
      const { root, auth, etag, stale } = await loneAdmin();
      await t.api.patch(`/users/${root.id}`).set(auth).set('If-Match', stale).send({ role: 'user' }).expect(412);
      await t.api.patch(`/users/${root.id}`).set(auth).set('If-None-Match', '*').send({ role: 'user' }).expect(412);
      await t.api.patch(`/users/${root.id}`).set(auth).set('If-Match', etag).send({ role: 'user' }).expect(409);
      expect(await userRow(root.id)).toEqual({ email: 'root@example.com', role: 'admin', version: 1 });
    });

    it('DELETE /users/{id}: the last admin with a stale If-Match is 412, with the current one 409', async () => {
      const { root, auth, etag, stale } = await loneAdmin();
      await t.api.delete(`/users/${root.id}`).set(auth).set('If-Match', stale).expect(412);
      await t.api.delete(`/users/${root.id}`).set(auth).set('If-None-Match', etag).expect(412);
      await t.api.delete(`/users/${root.id}`).set(auth).set('If-Match', etag).expect(409);
      expect(await userRow(root.id)).toEqual({ email: 'root@example.com', role: 'admin', version: 1 });
    });

    it('POST /users: a tag list in If-Match with a taken email is 412, without it 409', async () => {
      await t.db.user('Ada', 'ada@example.com');
      const user = { name: 'A', email: 'ada@example.com', password: PASSWORD };
      await api.post('/users').set('If-Match', '"1-x"').send(user).expect(412);
      await api.post('/users').send(user).expect(409);
    });

    it('POST /posts/{id}/comments and POST /users/{id}/posts: a failed precondition is 412 before a missing author’s 422', async () => {
      const ada = await t.db.user('Ada');
      const post = await t.db.post(ada.id);
      await api
        .post(`/posts/${post.id}/comments`)
        .set('If-None-Match', '*')
        .send({ authorId: 555, body: 'x' })
        .expect(412);
      await api.post(`/posts/${post.id}/comments`).send({ authorId: 555, body: 'x' }).expect(422);
      const withComment = { title: 'T', body: 'B', comments: [{ authorId: 555, body: 'x' }] };
      await api.post(`/users/${ada.id}/posts`).set('If-Match', '"1-x"').send(withComment).expect(412);
      await api.post(`/users/${ada.id}/posts`).send(withComment).expect(422);
      expect([await t.db.count('posts'), await t.db.count('comments')]).toEqual([1, 0]);
    });
  });

  it('§13.1.1/§13.1.2 on targets without an ETag (collections, comments): a tag list or If-None-Match: * is 412, nothing stored', async () => {
    const ada = await t.db.user('Ada');
    const post = await t.db.post(ada.id);
    const comment = await t.db.comment(post.id, ada.id);
    const user = { name: 'Bo', email: 'bo@example.com', password: PASSWORD };
    await api.post('/users').set('If-Match', '"1-x"').send(user).expect(412);
    await api.post('/users').set('If-None-Match', '*').send(user).expect(412);
    await api.post(`/users/${ada.id}/posts`).set('If-Match', '"1-x"').send({ title: 'T', body: 'B' }).expect(412);
    await api
      .post(`/posts/${post.id}/comments`)
      .set('If-None-Match', '*')
      .send({ authorId: ada.id, body: 'x' })
      .expect(412);
    await api.delete(`/comments/${comment.id}`).set('If-Match', '"1-x"').expect(412);
    expect([await t.db.count('users'), await t.db.count('posts'), await t.db.count('comments')]).toEqual([2, 1, 1]); // Ada and the admin
    // `*` in If-Match holds for anything that exists; a tag list in If-None-Match holds (nothing to match).
    await api.post('/users').set('If-Match', '*').set('If-None-Match', '"1-x"').send(user).expect(201);
    await api.delete(`/comments/${comment.id}`).set('If-Match', '*').expect(200);
  });

  it('§13.1.3/§13.1.4: If-Modified-Since and If-Unmodified-Since are ignored (no Last-Modified is published)', async () => {
    const { post } = await arrange();
    const res = await api
      .get(`/posts/${post.id}`)
      .set('If-Modified-Since', 'Fri, 01 Jan 2100 00:00:00 GMT')
      .expect(200);
    expect(res.headers['last-modified']).toBeUndefined();
    await api
      .patch(`/posts/${post.id}`)
      .set('If-Unmodified-Since', 'Thu, 01 Jan 1970 00:00:00 GMT')
      .send({ title: 'After' })
      .expect(200);
  });
});
