import { MAX_OFFSET } from '../src/http/pagination.query';
import { POST_SORTS } from '../src/posts/dto/list-posts.query';
import { OFFSET_WITH_Q } from '../src/posts/posts.service';
import { openApiDocument } from './setup/openapi-document';
import { useTestApp, type TestApp } from './setup/test-app';

const PROBLEM = /application\/problem\+json/;
type Row = { id: number };
type Response = { status: number; body: unknown; headers: Record<string, string | undefined> };

/** The data every list below pages through: 3 users, 8 posts (some titles tied), comments on two posts. */
interface World {
  ada: number;
  bob: number;
  busyPost: number;
  quietPost: number;
}

/**
 * Lists that are not paged, each bounded by design and documented as such: the caller's live sessions
 * (at most 100, most recently used first: docs/accounts.md).
 */
const UNPAGED_LISTS = ['GET /auth/sessions'];

/**
 * Every list of the API, each with a path template (`{ada}`, `{busyPost}` … filled from World). A
 * test below checks this table against the OpenAPI document: a new list fails it until it is here.
 */
const LISTS: { name: string; operation: string; path: string }[] = [
  { name: 'users', operation: 'GET /users', path: '/users' },
  { name: 'users?include=profile', operation: 'GET /users', path: '/users?include=profile' },
  ...POST_SORTS.flatMap((sort) => [
    { name: `posts?sort=${sort}`, operation: 'GET /posts', path: `/posts?sort=${sort}` },
    { name: `posts?sort=${sort}&authorId`, operation: 'GET /posts', path: `/posts?sort=${sort}&authorId={ada}` },
    { name: `posts?sort=${sort}&q`, operation: 'GET /posts', path: `/posts?sort=${sort}&q=tie` },
  ]),
  { name: 'posts?authorId&q', operation: 'GET /posts', path: '/posts?authorId={ada}&q=TIE' },
  { name: "a user's posts", operation: 'GET /users/{userId}/posts', path: '/users/{ada}/posts' },
  { name: "another user's posts", operation: 'GET /users/{userId}/posts', path: '/users/{bob}/posts' },
  { name: "a post's comments", operation: 'GET /posts/{postId}/comments', path: '/posts/{busyPost}/comments' },
  {
    name: "another post's comments",
    operation: 'GET /posts/{postId}/comments',
    path: '/posts/{quietPost}/comments',
  },
];

describe('cursors on every list (RFC 8288 §3 Link rel="next")', () => {
  const t = useTestApp();

  async function world(): Promise<World> {
    const ada = (await t.db.user('Ada')).id;
    const bob = (await t.db.user('Bob')).id;
    await t.db.user('Cy');
    const titles = ['Tie', 'Tie', 'tie-break', 'Alpha', 'Zulu'];
    let busyPost = 0;
    for (const title of titles) busyPost = (await t.db.post(ada, title)).id;
    const quietPost = (await t.db.post(bob, 'Tie')).id;
    await t.db.post(bob, 'Omega');
    await t.db.post(bob, 'Beta');
    for (let i = 0; i < 5; i++) await t.db.comment(busyPost, i % 2 ? ada : bob, `c${i}`);
    for (let i = 0; i < 3; i++) await t.db.comment(quietPost, ada, `q${i}`);
    return { ada, bob, busyPost, quietPost };
  }

  const fill = (path: string, w: World) => path.replace(/\{(\w+)\}/g, (_, key: keyof World) => String(w[key]));
  const withQuery = (path: string, query: string) => `${path}${path.includes('?') ? '&' : '?'}${query}`;
  const nextOf = (res: Response) => /<([^>]+)>; rel="next"/.exec(res.headers.link ?? '')?.[1];
  const cursorOf = (res: Response) => new URL(nextOf(res)!, 'http://x').searchParams.get('cursor')!;
  const ids = (res: Response) => (res.body as Row[]).map((row) => row.id);

  /** Follows rel="next" from `first` to the end; every next link must carry a cursor and no offset. */
  async function walk(api: TestApp['api'], first: string): Promise<number[]> {
    const seen: number[] = [];
    let url: string | undefined = first;
    while (url) {
      const res: Response = await api.get(url).expect(200);
      seen.push(...ids(res));
      url = nextOf(res);
      if (url) {
        const params = new URL(url, 'http://x').searchParams;
        expect(params.get('cursor')).toBeTruthy();
        expect(params.has('offset')).toBe(false);
      }
    }
    return seen;
  }

  it('covers every list operation of the OpenAPI document', () => {
    const document = openApiDocument<{
      paths: Record<
        string,
        Record<string, { responses: Record<string, { content?: Record<string, { schema?: { type?: string } }> }> }>
      >;
    }>();
    const lists = Object.entries(document.paths).flatMap(([path, operations]) =>
      Object.entries(operations)
        .filter(
          ([method, op]) =>
            method === 'get' && op.responses['200']?.content?.['application/json']?.schema?.type === 'array',
        )
        .map(() => `GET ${path}`),
    );
    expect(lists.length).toBeGreaterThan(0);
    const paged = lists.filter((operation) => !UNPAGED_LISTS.includes(operation));
    expect([...new Set(LISTS.map((list) => list.operation))].sort()).toEqual([...new Set(paged)].sort());
  });

  it('walks every list by its cursors: each row once, in the order of one big page, from the first page or an offset', async () => {
    const w = await world();
    for (const list of LISTS) {
      const path = fill(list.path, w);
      const all = ids(await t.api.get(withQuery(path, 'limit=100')).expect(200));
      expect({ list: list.name, rows: all.length > 2 }).toEqual({ list: list.name, rows: true });
      expect({ list: list.name, walked: await walk(t.api, withQuery(path, 'limit=2')) }).toEqual({
        list: list.name,
        walked: all,
      });
      // An offset page's next link continues by cursor: the client never pays for a larger offset.
      // (Comments are keyset-only: they never took an offset. A search refuses one: see the offset bound below.)
      if (list.operation.endsWith('comments') || path.includes('q=')) continue;
      expect({ list: list.name, walked: await walk(t.api, withQuery(path, 'limit=1&offset=1')) }).toEqual({
        list: list.name,
        walked: all.slice(1),
      });
    }
  });

  it('answers 400 naming cursor for a cursor of any other list, sort or filter — never an empty 200 (e2a#782)', async () => {
    const w = await world();
    const cursors = new Map<string, string>();
    for (const list of LISTS) {
      cursors.set(list.name, cursorOf(await t.api.get(withQuery(fill(list.path, w), 'limit=1')).expect(200)));
    }
    for (const list of LISTS) {
      for (const [issuer, cursor] of cursors) {
        const res = await t.api.get(withQuery(fill(list.path, w), `limit=1&cursor=${encodeURIComponent(cursor)}`));
        // include= only shapes the users: /users?include=profile shares /users' cursors.
        const same = issuer === list.name || [issuer, list.name].every((name) => name.startsWith('users'));
        expect({ list: list.name, issuer, status: res.status }).toEqual({
          list: list.name,
          issuer,
          status: same ? 200 : 400,
        });
        if (same) continue;
        expect(res.headers['content-type']).toMatch(PROBLEM);
        expect(res.body.errors).toEqual([
          { field: 'cursor', messages: [expect.stringContaining('another list, sort or filter')] },
        ]);
      }
    }
  });

  it('answers 400 naming cursor for a forged or edited cursor on every list', async () => {
    const w = await world();
    for (const list of LISTS) {
      const path = fill(list.path, w);
      const cursor = cursorOf(await t.api.get(withQuery(path, 'limit=1')).expect(200));
      const [payload, signature] = cursor.split('.');
      const [tag, ...position] = JSON.parse(Buffer.from(payload, 'base64url').toString()) as unknown[];
      const edited = [tag, ...position.slice(0, -1), (position.at(-1) as number) + 1];
      const forged = `${Buffer.from(JSON.stringify(edited)).toString('base64url')}.${signature}`;
      for (const bad of [forged, 'garbage', `${payload}.`, `${cursor}.x`]) {
        const res = await t.api.get(withQuery(path, `cursor=${encodeURIComponent(bad)}`)).expect(400);
        expect(res.headers['content-type']).toMatch(PROBLEM);
        expect(res.body.errors[0].field).toBe('cursor');
      }
    }
  });

  it(`bounds offset at ${MAX_OFFSET}: beyond it a 400 that points to cursor; with a cursor, a 400 naming cursor`, async () => {
    const w = await world();
    for (const list of LISTS.filter(({ operation }) => !operation.endsWith('comments'))) {
      const path = fill(list.path, w);
      if (path.includes('q=')) {
        // A search page reads boundedly and so cannot skip a number of matches (ADR 0017): any offset is a 400.
        for (const offset of [1, MAX_OFFSET]) {
          const refused = await t.api.get(withQuery(path, `offset=${offset}`)).expect(400);
          expect(refused.headers['content-type']).toMatch(PROBLEM);
          expect(refused.body.errors).toEqual([{ field: 'offset', messages: [OFFSET_WITH_Q] }]);
        }
        await t.api.get(withQuery(path, 'offset=0')).expect(200);
      } else {
        await t.api.get(withQuery(path, `offset=${MAX_OFFSET}`)).expect(200);
      }
      const beyond = await t.api.get(withQuery(path, `offset=${MAX_OFFSET + 1}`)).expect(400);
      expect(beyond.headers['content-type']).toMatch(PROBLEM);
      expect(beyond.body.errors).toEqual([{ field: 'offset', messages: [expect.stringContaining('cursor')] }]);

      const cursor = cursorOf(await t.api.get(withQuery(path, 'limit=1')).expect(200));
      const both = await t.api.get(withQuery(path, `offset=1&cursor=${encodeURIComponent(cursor)}`)).expect(400);
      expect(both.body.errors).toEqual([{ field: 'cursor', messages: ['cursor and offset cannot be used together'] }]);
    }
  });

  it('sends no COUNT over a table for any list page', async () => {
    const w = await world();
    for (const list of LISTS) {
      const path = fill(list.path, w);
      const cursor = cursorOf(await t.api.get(withQuery(path, 'limit=1')).expect(200));
      const statements = await t.queriesDuring(async () => {
        await t.api.get(withQuery(path, 'limit=1')).expect(200);
        await t.api.get(withQuery(path, `limit=1&cursor=${encodeURIComponent(cursor)}`)).expect(200);
      });
      expect({ list: list.name, counts: statements.filter((sql) => /count\s*\(/i.test(sql)) }).toEqual({
        list: list.name,
        counts: [],
      });
    }
  });

  it('keeps a cursor page stable when rows are added before it (no duplicates, unlike an offset)', async () => {
    const w = await world();
    const first = await t.api.get('/posts?sort=title&limit=2').expect(200);
    const next = nextOf(first)!;
    await t.db.post(w.ada, 'Aardvark'); // sorts before every page so far
    const second = await t.api.get(next).expect(200);
    expect(ids(second).some((id) => ids(first).includes(id))).toBe(false);
    const shifted = await t.api.get('/posts?sort=title&limit=2&offset=2').expect(200);
    expect(ids(shifted)).toContain(ids(first)[1]); // what an offset does: the last row again
  });
});
