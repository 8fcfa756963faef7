import { authAs } from './setup/accounts';
import { useTestApp } from './setup/test-app';

const PROBLEM = /application\/problem\+json/;

describe('ETags and conditional requests', () => {
  const t = useTestApp();

  it('GET returns a strong ETag; If-None-Match with it is 304 without a body', async () => {
    const ada = await t.db.user('Ada');
    const auth = await authAs(t.app, ada.id);
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
    const [row] = await t.dataSource.query('SELECT name, version FROM users WHERE id = $1', [ada.id]);
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
    const [row] = await t.dataSource.query('SELECT title, version FROM posts WHERE id = $1', [post.id]);
    expect(row).toEqual({ title: 'New', version: 2 });
  });
});
