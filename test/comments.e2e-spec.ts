import { adminAuth, authAs } from './setup/accounts';
import { CommentsRepository } from '../src/comments/comments.repository';
import { Comment } from '../src/comments/entities/comment.entity';
import { useTestApp } from './setup/test-app';
import { itOn, testDialect } from './setup/dialect';

const PROBLEM = /application\/problem\+json/;
type CommentBody = { id: number; body: string };

describe('comments', () => {
  const t = useTestApp();

  describe('POST /posts/:id/comments', () => {
    it('creates a comment: 201, Location, stored', async () => {
      const ada = await t.db.user('Ada');
      const post = await t.db.post(ada.id);
      const res = await t.api
        .post(`/posts/${post.id}/comments`)
        .set(await authAs(t.app, ada.id))
        .send({ body: 'Hi' })
        .expect(201);
      expect(res.headers.location).toBe(`/comments/${res.body.id}`);
      expect(res.body).toEqual({
        id: expect.any(Number),
        postId: post.id,
        authorId: ada.id,
        body: 'Hi',
        createdAt: expect.any(String),
      });
      expect(await t.db.count('comments')).toBe(1);
      await t.api.get(res.headers.location).expect(200);
    });

    it('answers 404 for a missing post and 422 naming a missing author', async () => {
      const ada = await t.db.user('Ada');
      const post = await t.db.post(ada.id);
      const admin = await adminAuth(t.app, t.db, t.dataSource); // only admins name an authorId
      const missingPost = await t.api
        .post('/posts/777/comments')
        .set(await authAs(t.app, ada.id))
        .send({ body: 'x' })
        .expect(404);
      expect(missingPost.headers['content-type']).toMatch(PROBLEM);
      expect(missingPost.body.detail).toContain('777');
      const missingAuthor = await t.api
        .post(`/posts/${post.id}/comments`)
        .set(admin.headers)
        .send({ authorId: 555, body: 'x' })
        .expect(422);
      expect(missingAuthor.body.errors).toEqual([expect.objectContaining({ field: 'authorId' })]);
      expect(await t.db.count('comments')).toBe(0);
    });

    it('answers 422 naming authorId for a missing author, a foreign key mapped from the entity metadata (RFC 9457 §3)', async () => {
      // comments_author_id_fkey has no entry in comments.constraints.ts: the problem is derived.
      const ada = await t.db.user('Ada');
      const post = await t.db.post(ada.id);
      const admin = await adminAuth(t.app, t.db, t.dataSource);
      const res = await t.api
        .post(`/posts/${post.id}/comments`)
        .set(admin.headers)
        .send({ authorId: 555, body: 'x' })
        .expect(422);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.body).toMatchObject({ status: 422, detail: 'The referenced user does not exist (id 555)' });
      expect(res.body.errors).toEqual([{ field: 'authorId', messages: [res.body.detail] }]);
      expect(await t.db.count('comments')).toBe(0);
    });
  });

  describe('GET /posts/:id/comments (keyset pagination)', () => {
    const walk = async (postId: number, limit: number, between?: (page: number) => Promise<void>) => {
      const seen: number[] = [];
      let url: string | undefined = `/posts/${postId}/comments?limit=${limit}`;
      for (let page = 0; url; page++) {
        const res: { body: CommentBody[]; headers: Record<string, string> } = await t.api.get(url).expect(200);
        seen.push(...res.body.map((c: CommentBody) => c.id));
        url = /<([^>]+)>; rel="next"/.exec(res.headers.link ?? '')?.[1];
        if (between) await between(page);
      }
      return seen;
    };

    it('walks every comment exactly once, in (createdAt, id) order', async () => {
      const ada = await t.db.user('Ada');
      const post = await t.db.post(ada.id);
      const ids: number[] = [];
      for (let i = 0; i < 23; i++) ids.push((await t.db.comment(post.id, ada.id, `c${i}`)).id);
      expect(await walk(post.id, 5)).toEqual(ids);
    });

    it('stays correct when comments are inserted while the client is paging', async () => {
      const ada = await t.db.user('Ada');
      const post = await t.db.post(ada.id);
      const before: number[] = [];
      for (let i = 0; i < 12; i++) before.push((await t.db.comment(post.id, ada.id)).id);

      const added: number[] = [];
      const auth = await authAs(t.app, ada.id);
      const seen = await walk(post.id, 4, async () => {
        // Concurrent writers: two new comments through the API after each page.
        const created = await Promise.all(
          [1, 2].map(() => t.api.post(`/posts/${post.id}/comments`).set(auth).send({ body: 'late' }).expect(201)),
        );
        if (added.length < 6) added.push(...created.map((r) => r.body.id));
      });

      expect(new Set(seen).size).toBe(seen.length); // no duplicates
      expect(seen.slice(0, before.length)).toEqual(before); // no gaps among what existed
      for (const id of added) expect(seen).toContain(id); // later inserts show up at the end
    });

    itOn(
      ['postgres', 'mysql'],
      'SQLite has one writer and one connection: a held transaction blocks every other statement of the app (SqliteGate), so no reader can page past it; the keyset order under one writer is tested in test/sqlite.e2e-spec.ts',
    )('never loses a comment whose transaction began before others but committed after them (issue #13)', async () => {
      const ada = await t.db.user('Ada');
      const post = await t.db.post(ada.id);
      const c0 = (await t.db.comment(post.id, ada.id, 'c0')).id;
      const c1 = (await t.db.comment(post.id, ada.id, 'c1')).id;
      const auth = await authAs(t.app, ada.id);

      // A writer whose transaction inserts a comment and stays open (any client: plain SQL here).
      const held = t.dataSource.createQueryRunner();
      await held.connect();
      await held.startTransaction();
      const h =
        testDialect === 'postgres'
          ? (
              (await held.query(
                "INSERT INTO comments (post_id, author_id, body) VALUES ($1, $2, 'held') RETURNING id",
                [post.id, ada.id],
              )) as { id: number }[]
            )[0].id
          : (
              (await held.query("INSERT INTO comments (post_id, author_id, body) VALUES (?, ?, 'held')", [
                post.id,
                ada.id,
              ])) as {
                insertId: number;
              }
            ).insertId;
      // Meanwhile two comments through the API: each either commits or waits for the held one.
      let settled = 0;
      const added = [1, 2].map(() =>
        t.api
          .post(`/posts/${post.id}/comments`)
          .set(auth)
          .send({ body: 'api' })
          .then((res) => (settled++, res)),
      );
      const waiting = async () =>
        Number(
          (
            await t.query(
              testDialect === 'postgres'
                ? "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
                : // The inserts blocked in the keyset trigger's `FOR UPDATE` (INNODB_TRX does not always list them).
                  'SELECT count(*) AS n FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND ID <> CONNECTION_ID() ' +
                    "AND COMMAND = 'Query' AND (INFO LIKE '%FOR UPDATE%' OR INFO LIKE 'INSERT INTO%')",
            )
          )[0].n,
        );
      for (let tries = 0; settled + (await waiting()) < 2; tries++) {
        if (tries > 250) throw new Error('the API inserts neither committed nor waited');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }

      // A reader walks the pages one comment at a time, keeping the last `next` link it got.
      const seen: number[] = [];
      const follow = async (start: string) => {
        let url: string | undefined = start;
        let last = start;
        while (url) {
          const res: { body: CommentBody[]; headers: Record<string, string> } = await t.api.get(url).expect(200);
          seen.push(...res.body.map((c) => c.id));
          last = url;
          url = /<([^>]+)>; rel="next"/.exec(res.headers.link ?? '')?.[1];
        }
        return last;
      };
      const lastUrl = await follow(`/posts/${post.id}/comments?limit=1`);

      await held.commitTransaction();
      await held.release();
      const apiIds = (await Promise.all(added)).map((res) => (res.status === 201 ? (res.body as CommentBody).id : -1));
      expect(apiIds).not.toContain(-1);

      // Later, it polls from its last cursor and follows the links to the end.
      await follow(lastUrl);
      expect(new Set(seen)).toEqual(new Set([c0, c1, h, ...apiIds]));
      // Each comment first appears after all that sort before it: (createdAt, id) order is commit order.
      const firstSeen = [...new Set(seen)];
      const listed = (await t.api.get(`/posts/${post.id}/comments?limit=100`).expect(200)).body as CommentBody[];
      expect(firstSeen).toEqual(listed.map((c) => c.id));
    });

    it.each(['garbage', 'eyJ4IjoxfQ.c2lnbmF0dXJl', '%00', 'a.b.c'])(
      'rejects the cursor %p with 400',
      async (cursor) => {
        const ada = await t.db.user('Ada');
        const post = await t.db.post(ada.id);
        const res = await t.api.get(`/posts/${post.id}/comments?cursor=${cursor}`).expect(400);
        expect(res.headers['content-type']).toMatch(PROBLEM);
        expect(res.body.errors[0].field).toBe('cursor');
      },
    );

    it('rejects a cursor whose position was edited', async () => {
      const ada = await t.db.user('Ada');
      const post = await t.db.post(ada.id);
      for (let i = 0; i < 3; i++) await t.db.comment(post.id, ada.id);
      const first = await t.api.get(`/posts/${post.id}/comments?limit=1`).expect(200);
      const cursor = new URLSearchParams(/<[^?]+\?([^>]+)>/.exec(first.headers.link)![1]).get('cursor')!;
      const [payload, signature] = cursor.split('.');
      const [list, createdAt, id] = JSON.parse(Buffer.from(payload, 'base64url').toString()) as [
        string,
        string,
        number,
      ];
      const forged = `${Buffer.from(JSON.stringify([list, createdAt, id + 1])).toString('base64url')}.${signature}`;
      await t.api.get(`/posts/${post.id}/comments?cursor=${forged}`).expect(400);
      await t.api.get(`/posts/${post.id}/comments?cursor=${cursor}`).expect(200);
    });

    it('answers 404 for a missing post, and uses 2 queries whatever the page size', async () => {
      await t.api.get('/posts/999/comments').expect(404);
      const ada = await t.db.user('Ada');
      const post = await t.db.post(ada.id);
      for (let i = 0; i < 60; i++) await t.db.comment(post.id, ada.id);
      const small = await t.queriesDuring(() => t.api.get(`/posts/${post.id}/comments?limit=1`).expect(200));
      const large = await t.queriesDuring(() => t.api.get(`/posts/${post.id}/comments?limit=100`).expect(200));
      expect(small).toHaveLength(2);
      expect(large).toHaveLength(2);
    });
  });

  describe('keyset page rows', () => {
    // The keyset page is plain SQL with columns aliased to entity properties (for speed): it must return
    // exactly what the repository loads, so a column added to Comment but not to the SQL fails here.
    it('loads a page, and the page after a position, exactly as the repository does', async () => {
      const ada = await t.db.user('Ada');
      const post = await t.db.post(ada.id);
      const other = await t.db.post(ada.id);
      for (const body of ['one', 'two', 'three']) await t.db.comment(post.id, ada.id, body);
      await t.db.comment(other.id, ada.id, 'elsewhere');
      const repository = t.app.get(CommentsRepository);
      const expected = await t.dataSource
        .getRepository(Comment)
        .find({ where: { postId: post.id }, order: { createdAt: 'ASC', id: 'ASC' } });

      expect(await repository.findPageAfter(post.id, undefined, 2)).toEqual(expected.slice(0, 2));
      expect(await repository.findPageAfter(post.id, [expected[0].createdAt, expected[0].id], 5)).toEqual(
        expected.slice(1),
      );
      expect(await repository.postExists(post.id)).toBe(true);
      expect(await repository.postExists(other.id + 1)).toBe(false);
    });
  });

  describe('DELETE /comments/:id', () => {
    it('deletes the comment, then 404s', async () => {
      const ada = await t.db.user('Ada');
      const post = await t.db.post(ada.id);
      const comment = await t.db.comment(post.id, ada.id);
      const auth = await authAs(t.app, ada.id);
      const res = await t.api.delete(`/comments/${comment.id}`).set(auth).expect(200);
      expect(res.body).toEqual({ message: 'Comment deleted' });
      expect(await t.db.count('comments')).toBe(0);
      await t.api.delete(`/comments/${comment.id}`).set(auth).expect(404);
    });
  });
});
