import { NESTED_LIMIT } from '../src/http/pagination.query';
import { PostsService } from '../src/posts/posts.service';
import { authAs, bearer, PASSWORD, signUp } from './setup/accounts';
import { User } from '../src/users/entities/user.entity';
import { UsersRepository } from '../src/users/users.repository';
import { useTestApp } from './setup/test-app';

const PROBLEM = /application\/problem\+json/;

describe('users', () => {
  const t = useTestApp();

  describe('POST /users', () => {
    it('creates a user with a profile and answers 201 with Location and the stored user', async () => {
      const res = await t.api
        .post('/users')
        .send({
          name: 'Ada Lovelace',
          email: 'Ada@Example.com',
          password: PASSWORD,
          profile: { bio: 'Analyst', avatarUrl: 'https://example.com/ada.png' },
        })
        .expect(201);

      expect(res.headers.location).toBe(`/users/${res.body.id}`);
      expect(res.body).toEqual({
        id: expect.any(Number),
        name: 'Ada Lovelace',
        email: 'Ada@Example.com',
        emailVerified: false, // until the mailed link is used (test/accounts.e2e-spec.ts)
        role: 'user',
        createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        updatedAt: expect.stringMatching(/Z$/),
        profile: { bio: 'Analyst', avatarUrl: 'https://example.com/ada.png' },
        posts: [],
      });
      const [row] = await t.query('SELECT name, email FROM users WHERE id = $1', [res.body.id]);
      expect(row).toEqual({ name: 'Ada Lovelace', email: 'Ada@Example.com' }); // stored as given
      expect(await t.db.count('profiles')).toBe(1);
    });

    it('answers profile: null for a user created without one', async () => {
      const res = await t.api
        .post('/users')
        .send({ name: 'Bob', email: 'bob@example.com', password: PASSWORD })
        .expect(201);
      expect(res.body.profile).toBeNull();
      expect(await t.db.count('profiles')).toBe(0);
    });

    it('stores initial posts in the same transaction', async () => {
      const res = await t.api
        .post('/users')
        .send({
          name: 'Cy',
          email: 'cy@example.com',
          password: PASSWORD,
          posts: [
            { title: 'First', body: 'one' },
            { title: 'Second', body: 'two' },
          ],
        })
        .expect(201);
      expect(res.body.posts).toHaveLength(2);
      expect(res.body.posts[0]).toEqual(expect.objectContaining({ authorId: res.body.id, comments: [] }));
      expect(await t.db.count('posts')).toBe(2);
    });

    it('answers with the user as stored, from its INSERT … RETURNING after COMMIT: byte for byte what GET then reads', async () => {
      const created = await t.api
        .post('/users')
        .send({
          name: 'Di',
          email: 'di@example.com',
          password: PASSWORD,
          profile: { avatarUrl: 'https://example.com/di.png' }, // bio from the column default
          posts: [
            { title: 'First', body: 'one' },
            { title: 'Second', body: 'two' },
          ],
        })
        .expect(201);
      // Di reads herself, so the representation has her email and role, as the sign-up answer does.
      const auth = await authAs(t.app, created.body.id);
      const queries = await t.queriesDuring(async () => {
        const read = await t.api.get(`/users/${created.body.id}`).set(auth).expect(200);
        expect(read.text).toBe(created.text);
        expect(read.headers.etag).toBe(created.headers.etag); // RFC 9110 §8.8.3: same representation, same tag
      });
      expect(queries).toHaveLength(4); // the 3 of the nested read + the session lookup
      expect(created.body.profile).toEqual({ bio: '', avatarUrl: 'https://example.com/di.png' });
      expect(created.body.posts.map((post: { title: string }) => post.title)).toEqual(['Second', 'First']);
    });

    it('treats an email composed (U+00E9) and decomposed (e + U+0301) as one: 409, stored in NFC', async () => {
      const composed = 'jos\u00e9@example.com';
      const decomposed = 'jose\u0301@example.com';
      const first = await t.api
        .post('/users')
        .send({ name: 'Jose\u0301', email: composed, password: PASSWORD })
        .expect(201);
      expect(first.body.name).toBe('Jos\u00e9');
      const second = await t.api
        .post('/users')
        .send({ name: 'Other', email: decomposed.toUpperCase(), password: PASSWORD })
        .expect(409);
      expect(second.body.errors).toEqual([expect.objectContaining({ field: 'email' })]);
      const other = await t.api
        .post('/users')
        .send({ name: 'Other', email: 'other@example.com', password: PASSWORD })
        .expect(201);
      await t.api
        .patch(`/users/${other.body.id}`)
        .set(await authAs(t.app, other.body.id))
        .send({ email: decomposed, currentPassword: PASSWORD })
        .expect(409);
      const rows = await t.query('SELECT name, email FROM users ORDER BY id');
      expect(rows).toEqual([
        { name: 'Jos\u00e9', email: composed },
        { name: 'Other', email: 'other@example.com' },
      ]);
      // Titles are stored in NFC too, and `q` is normalized the same way, so a search finds them.
      await t.api
        .post(`/users/${other.body.id}/posts`)
        .set(await authAs(t.app, other.body.id))
        .send({ title: 'Cafe\u0301 notes', body: 'b' })
        .expect(201);
      const [post] = await t.query('SELECT title FROM posts');
      expect(post.title).toBe('Caf\u00e9 notes');
      const found = await t.api.get('/posts').query({ q: 'cafe\u0301' }).expect(200);
      expect(found.body).toHaveLength(1);
    });

    it('rejects a second user with the same email, whatever the case, naming the field', async () => {
      await t.api.post('/users').send({ name: 'Ada', email: 'ada@example.com', password: PASSWORD }).expect(201);
      const res = await t.api
        .post('/users')
        .send({ name: 'Ada 2', email: 'ADA@example.com', password: PASSWORD })
        .expect(409);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.body).toEqual(
        expect.objectContaining({ status: 409, errors: [expect.objectContaining({ field: 'email' })] }),
      );
      expect(await t.db.count('users')).toBe(1);
    });

    it('lets exactly one of several concurrent requests for the same email win', async () => {
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          t.api.post('/users').send({ name: `Racer ${i}`, email: `Race@example.com`, password: PASSWORD }),
        ),
      );
      const statuses = results.map((r) => r.status).sort();
      expect(statuses.filter((s) => s === 201)).toHaveLength(1);
      expect(statuses.filter((s) => s === 409)).toHaveLength(11);
      expect(await t.db.count('users')).toBe(1);
    });

    it('rolls everything back when a step fails after the first insert', async () => {
      const posts = t.app.get(PostsService);
      const original = posts.createMany.bind(posts);
      // Let the real inserts run inside the transaction, then fail: nothing may survive.
      const spy = jest.spyOn(posts, 'createMany').mockImplementationOnce(async (...args) => {
        await original(...args);
        throw new Error('injected failure');
      });
      try {
        const res = await t.api
          .post('/users')
          .send({
            name: 'Dee',
            email: 'dee@example.com',
            password: PASSWORD,
            profile: { bio: 'x' },
            posts: [{ title: 'T', body: 'B' }],
          })
          .expect(500);
        expect(res.headers['content-type']).toMatch(PROBLEM);
        expect(JSON.stringify(res.body)).not.toMatch(/injected|at |\.ts/);
      } finally {
        spy.mockRestore();
      }
      expect(await t.db.count('users')).toBe(0);
      expect(await t.db.count('profiles')).toBe(0);
      expect(await t.db.count('posts')).toBe(0);
    });

    it.each([
      [{ name: 'Eve', email: 'eve@example.com', role: 'admin' }, 'role'],
      [{ name: '', email: 'eve@example.com' }, 'name'],
      [{ name: '   ', email: 'eve@example.com' }, 'name'],
      [{ name: 'x'.repeat(101), email: 'eve@example.com' }, 'name'],
      [{ name: 42, email: 'eve@example.com' }, 'name'],
      [{ name: 'Eve', email: 'not-an-email' }, 'email'],
      [{ name: 'Eve' }, 'email'],
      [
        { name: 'Eve', email: 'eve@example.com', profile: { bio: 'b', avatarUrl: 'javascript:alert(1)' } },
        'profile.avatarUrl',
      ],
      [{ name: 'Eve', email: 'eve@example.com', profile: { mood: 'happy' } }, 'profile.mood'],
      [{ name: 'Eve', email: 'eve@example.com', profile: 'bio' }, 'profile'],
      [{ name: 'Eve', email: 'eve@example.com', posts: [{ title: '' }] }, 'posts.0.title'],
    ])('rejects %j with a 400 naming %s, storing nothing', async (body, field) => {
      const res = await t.api.post('/users').send(body).expect(400);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
      expect(await t.db.count('users')).toBe(0);
    });

    it('rejects malformed JSON with a 400 problem', async () => {
      const res = await t.api.post('/users').set('Content-Type', 'application/json').send('{"name": ').expect(400);
      expect(res.headers['content-type']).toMatch(PROBLEM);
    });
  });

  describe('GET /users/:id', () => {
    it('returns the user with profile and posts, each with comments, in at most 3 queries', async () => {
      const ada = await t.db.user('Ada');
      const bob = await t.db.user('Bob');
      await t.db.profile(ada.id, 'Analyst');
      const older = await t.db.post(ada.id, 'Older');
      const newer = await t.db.post(ada.id, 'Newer');
      const c1 = await t.db.comment(older.id, bob.id, 'Nice');
      const c2 = await t.db.comment(older.id, ada.id, 'Thanks');

      let res!: { body: any };
      const queries = await t.queriesDuring(async () => (res = await t.api.get(`/users/${ada.id}`).expect(200)));

      expect(queries.length).toBeLessThanOrEqual(3);
      expect(res.body.profile).toEqual({ bio: 'Analyst', avatarUrl: null });
      expect(res.body.posts.map((p: { id: number }) => p.id)).toEqual([newer.id, older.id]); // newest first
      const olderPost = res.body.posts.find((p: { id: number }) => p.id === older.id);
      expect(olderPost.comments).toEqual([
        { id: c1.id, postId: older.id, authorId: bob.id, body: 'Nice', createdAt: expect.any(String) },
        { id: c2.id, postId: older.id, authorId: ada.id, body: 'Thanks', createdAt: expect.any(String) },
      ]);
      expect(res.body.posts.find((p: { id: number }) => p.id === newer.id).comments).toEqual([]);
    });

    it(`embeds only the user's newest ${NESTED_LIMIT} posts and links to the rest, in the same 3 queries`, async () => {
      const ada = await t.db.user('Ada');
      const bob = await t.db.user('Bob');
      await t.db.post(bob.id, 'only');
      const posts: number[] = [];
      for (let i = 0; i < NESTED_LIMIT + 5; i++) posts.push((await t.db.post(ada.id, `P${i}`)).id);
      const newest = posts.reverse(); // same created_at possible: ties go by id, newest first too
      await t.db.comment(newest[0], bob.id, 'on the newest');

      const few = await t.queriesDuring(() => t.api.get(`/users/${bob.id}`).expect(200));
      let res!: { body: any };
      const queries = await t.queriesDuring(async () => (res = await t.api.get(`/users/${ada.id}`).expect(200)));
      expect(queries).toHaveLength(few.length);
      expect(res.body.posts.map((p: { id: number }) => p.id)).toEqual(newest.slice(0, NESTED_LIMIT));
      expect(res.body.posts[0].comments).toEqual([expect.objectContaining({ body: 'on the newest' })]);
      expect(res.body.postsNext).toMatch(
        new RegExp(`^/users/${ada.id}/posts\\?limit=${NESTED_LIMIT}&cursor=[\\w.-]+$`),
      );
      const rest = await t.api.get(res.body.postsNext).expect(200);
      expect(rest.body.map((p: { id: number }) => p.id)).toEqual(newest.slice(NESTED_LIMIT));
      expect(rest.headers.link).toBeUndefined();

      const list = await t.api.get('/users').expect(200);
      const [adaInList, bobInList] = ['Ada', 'Bob'].map((name) => list.body.find((u: User) => u.name === name));
      expect(adaInList.posts).toEqual(res.body.posts);
      expect(adaInList.postsNext).toBe(res.body.postsNext);
      expect(bobInList.posts).toHaveLength(1);
      expect(bobInList).not.toHaveProperty('postsNext');
    });

    it('answers 404 problem+json for a user that does not exist', async () => {
      const res = await t.api.get('/users/4242').expect(404);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.body).toEqual(expect.objectContaining({ status: 404, detail: 'User 4242 not found' }));
    });

    it.each(['abc', '0', '-1', '1.5', '1e3', '99999999999', '%20'])('answers 400 for id %p', async (id) => {
      const res = await t.api.get(`/users/${id}`).expect(400);
      expect(res.body.errors).toEqual([expect.objectContaining({ field: 'id' })]);
    });

    it('loads only what ?include asks for, with fewer queries', async () => {
      const ada = await t.db.user('Ada');
      await t.db.profile(ada.id);
      const post = await t.db.post(ada.id);
      await t.db.comment(post.id, ada.id);

      const bare = await t.queriesDuring(async () => {
        const res = await t.api.get(`/users/${ada.id}?include=`).expect(200);
        expect(res.body).not.toHaveProperty('profile');
        expect(res.body).not.toHaveProperty('posts');
      });
      expect(bare).toHaveLength(1);

      const res = await t.api.get(`/users/${ada.id}?include=posts`).expect(200);
      expect(res.body).not.toHaveProperty('profile');
      expect(res.body.posts[0]).not.toHaveProperty('comments');

      const nested = await t.api.get(`/users/${ada.id}?include=profile,posts.comments`).expect(200);
      expect(nested.body.profile).toEqual({ bio: 'bio', avatarUrl: null });
      expect(nested.body.posts[0].comments).toHaveLength(1);

      await t.api.get(`/users/${ada.id}?include=secrets`).expect(400);
    });
  });

  describe('user rows', () => {
    // The user row is plain SQL with columns aliased to entity properties (for speed): it must return
    // exactly what the repository loads, so a column added to User or Profile but not to the SQL fails here.
    it('loads users with their profiles exactly as the repository does', async () => {
      const ada = await t.db.user('Ada');
      const bob = await t.db.user('Bob');
      await t.db.profile(ada.id, 'Analyst');
      await t.query(`UPDATE profiles SET avatar_url = 'https://example.com/a.png' WHERE user_id = $1`, [ada.id]);
      await t.query(`UPDATE users SET version = version + 1 WHERE id = $1`, [bob.id]);
      const repository = t.app.get(UsersRepository);
      const users = t.dataSource.getRepository(User);
      const expected = await users.find({ relations: { profile: true }, order: { name: 'ASC', id: 'ASC' } });
      for (const user of expected) user.profile ??= null;

      expect(await repository.findPage(10, { offset: 0 }, true)).toEqual(expected); // same keys and values, Dates included
      expect(await repository.findPage(10, { after: [expected[0].name, expected[0].id] }, true)).toEqual(
        expected.slice(1),
      );
      expect(await repository.findById(ada.id, true)).toEqual(expected[0]);
      expect(await repository.findById(bob.id, false)).toEqual(await users.findOneBy({ id: bob.id }));
      expect(await repository.findById(bob.id + 1, true)).toBeNull();
    });
  });

  describe('GET /users', () => {
    it('lists users ordered by name, ties broken by id, with a Link to the next page', async () => {
      const zed = await t.db.user('Zed');
      const amy1 = await t.db.user('Amy');
      const amy2 = await t.db.user('Amy');
      const bob = await t.db.user('Bob');

      const first = await t.api.get('/users?limit=3').expect(200);
      expect(first.body.map((u: { id: number }) => u.id)).toEqual([amy1.id, amy2.id, bob.id]);
      expect(first.headers.link).toMatch(/^<\/users\?limit=3&cursor=[\w.-]+>; rel="next"$/);

      const second = await t.api.get(/<([^>]+)>/.exec(first.headers.link)![1]).expect(200);
      expect(second.body.map((u: { id: number }) => u.id)).toEqual([zed.id]);
      expect(second.headers.link).toBeUndefined();
    });

    it('returns each user with profile and posts → comments, 20 by default', async () => {
      for (let i = 0; i < 25; i++) await t.db.user(`User ${String(i).padStart(2, '0')}`);
      const res = await t.api.get('/users').expect(200);
      expect(res.body).toHaveLength(20);
      expect(res.body[0]).toEqual(expect.objectContaining({ name: 'User 00', profile: null, posts: [] }));
      expect(res.headers.link).toMatch(/^<\/users\?limit=20&cursor=[\w.-]+>; rel="next"$/);
    });

    it('keeps the include filter in the next link', async () => {
      await t.db.user('A');
      await t.db.user('B');
      const res = await t.api.get('/users?limit=1&include=profile').expect(200);
      expect(res.headers.link).toMatch(/^<\/users\?limit=1&include=profile&cursor=[\w.-]+>; rel="next"$/);
      expect(res.body[0]).not.toHaveProperty('posts');
    });

    it('uses the same number of queries for 1 user as for 100, each with posts and comments', async () => {
      for (let i = 0; i < 100; i++) {
        const user = await t.db.user(`Member ${String(i).padStart(3, '0')}`);
        if (i % 2) await t.db.profile(user.id);
        const post = await t.db.post(user.id);
        await t.db.comment(post.id, user.id);
      }
      const one = await t.queriesDuring(() => t.api.get('/users?limit=1').expect(200));
      let hundred!: { body: { posts: { comments: unknown[] }[] }[] };
      const many = await t.queriesDuring(async () => (hundred = await t.api.get('/users?limit=100').expect(200)));

      expect(hundred.body).toHaveLength(100);
      expect(hundred.body.every((u) => u.posts.length === 1 && u.posts[0].comments.length === 1)).toBe(true);
      expect(many).toHaveLength(one.length);
      expect(many).toHaveLength(3);
    });

    it.each(['limit=0', 'limit=101', 'limit=abc', 'offset=-1', 'limit=1.5', 'sort=name'])(
      'answers 400 for ?%s',
      async (qs) => {
        const res = await t.api.get(`/users?${qs}`).expect(400);
        expect(res.headers['content-type']).toMatch(PROBLEM);
      },
    );
  });

  describe('PATCH /users/:id', () => {
    it('updates the given fields only and returns the stored user', async () => {
      const ada = await t.db.user('Ada', 'ada@example.com');
      const res = await t.api
        .patch(`/users/${ada.id}`)
        .set(await authAs(t.app, ada.id))
        .send({ name: 'Ada King' })
        .expect(200);
      expect(res.body).toEqual(expect.objectContaining({ id: ada.id, name: 'Ada King', email: 'ada@example.com' }));
      expect(new Date(res.body.updatedAt).getTime()).toBeGreaterThan(ada.updatedAt.getTime());
      const [row] = await t.query('SELECT name, email FROM users WHERE id = $1', [ada.id]);
      expect(row).toEqual({ name: 'Ada King', email: 'ada@example.com' });
    });

    it('merges profile fields, creates a missing profile and removes it with null', async () => {
      const ada = await t.db.user('Ada');
      await t.api
        .patch(`/users/${ada.id}`)
        .set(await authAs(t.app, ada.id))
        .send({ profile: { bio: 'first' } })
        .expect(200);
      const merged = await t.api
        .patch(`/users/${ada.id}`)
        .set(await authAs(t.app, ada.id))
        .send({ profile: { avatarUrl: 'https://example.com/a.png' } })
        .expect(200);
      expect(merged.body.profile).toEqual({ bio: 'first', avatarUrl: 'https://example.com/a.png' });

      const removed = await t.api
        .patch(`/users/${ada.id}`)
        .set(await authAs(t.app, ada.id))
        .send({ profile: null })
        .expect(200);
      expect(removed.body.profile).toBeNull();
      expect(await t.db.count('profiles')).toBe(0);
    });

    it('answers 409 naming email when it belongs to another user, changing nothing', async () => {
      await t.db.user('Ada', 'ada@example.com');
      const bob = await signUp(t.api, 'Bob', { email: 'bob@example.com' });
      const res = await t.api
        .patch(`/users/${bob.id}`)
        .set(bearer(bob))
        .send({ name: 'Robert', email: 'ADA@example.com', currentPassword: PASSWORD })
        .expect(409);
      expect(res.body.errors).toEqual([expect.objectContaining({ field: 'email' })]);
      const [row] = await t.query('SELECT name, email FROM users WHERE id = $1', [bob.id]);
      expect(row).toEqual({ name: 'Bob', email: 'bob@example.com' });
    });

    it('lets a user change the case of their own email', async () => {
      const ada = await t.db.user('Ada', 'ada@example.com');
      await t.api
        .patch(`/users/${ada.id}`)
        .set(await authAs(t.app, ada.id))
        .send({ email: 'ADA@example.com' })
        .expect(200);
    });

    it('answers 404 for a missing user and 400 for bad input', async () => {
      const ada = await t.db.user('Ada');
      await t.api
        .patch('/users/999')
        .set(await authAs(t.app, ada.id))
        .send({ name: 'Nobody' })
        .expect(404);
      const res = await t.api
        .patch(`/users/${ada.id}`)
        .set(await authAs(t.app, ada.id))
        .send({ name: '', id: 7 })
        .expect(400);
      expect(res.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(['id', 'name']);
    });
  });

  describe('DELETE /users/:id', () => {
    it('deletes the user with their profile, posts, comments on them and comments they wrote elsewhere', async () => {
      const ada = await t.db.user('Ada');
      const bob = await t.db.user('Bob');
      await t.db.profile(ada.id);
      const adaPost = await t.db.post(ada.id);
      const bobPost = await t.db.post(bob.id);
      await t.db.comment(adaPost.id, bob.id); // on Ada's post
      await t.db.comment(bobPost.id, ada.id); // Ada's comment elsewhere
      await t.db.comment(bobPost.id, bob.id); // unrelated, stays

      const res = await t.api
        .delete(`/users/${ada.id}`)
        .set(await authAs(t.app, ada.id))
        .expect(200);
      expect(res.body).toEqual({ message: 'User deleted' });

      expect(await t.db.count('users')).toBe(1);
      expect(await t.db.count('profiles')).toBe(0);
      expect(await t.db.count('posts')).toBe(1);
      expect(await t.db.count('comments')).toBe(1);
      await t.api.get(`/users/${ada.id}`).expect(404);
    });

    it('answers 404 for a user that does not exist', async () => {
      const someone = await t.db.user('Someone');
      const res = await t.api
        .delete('/users/31337')
        .set(await authAs(t.app, someone.id))
        .expect(404);
      expect(res.headers['content-type']).toMatch(PROBLEM);
    });
  });
});
