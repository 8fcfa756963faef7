import fc from 'fast-check';
import { sign } from 'jsonwebtoken';
import type { Response } from 'supertest';
import { TOKEN_AUDIENCE, TOKEN_ISSUER } from '../src/auth/tokens';
import { PASSWORD, tokenFor } from './setup/accounts';
import { useTestApp } from './setup/test-app';

/**
 * Property-based fuzzing of every endpoint through HTTP: whatever the body, path, query or headers,
 * the answer is never a 5xx, every error is problem+json that leaks nothing, and a rejected write
 * changes nothing in the database.
 */
const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
// FUZZ_SEED replays a failing run: fast-check prints the seed with every counterexample.
if (process.env.FUZZ_SEED) fc.configureGlobal({ seed: Number(process.env.FUZZ_SEED) });
const hostileStrings = fc.constantFrom(
  "'; DROP TABLE users; --",
  '1 OR 1=1',
  '" OR ""="',
  '$1',
  '%',
  '_',
  '\\',
  '\u0000',
  '\uD800',
  '𝕌𝕟𝕚𝕔𝕠𝕕𝕖 🚀 مرحبا',
  '<script>alert(1)</script>',
  '../../etc/passwd',
  '9'.repeat(40),
  '-1',
  '0',
  '1e309',
  'NaN',
  'null',
  'x'.repeat(5_000),
);
const text = fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'grapheme', maxLength: 50 }), hostileStrings);
const numberish = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.bigInt().map(String),
  fc.constantFrom(2 ** 31, -(2 ** 31) - 1, Number.MAX_SAFE_INTEGER),
);
const anything = fc.oneof(
  text,
  numberish,
  fc.boolean(),
  fc.constant(null),
  fc.jsonValue({ maxDepth: 4 }),
  fc.array(text, { maxLength: 3 }),
);
/** Deeply nested JSON: must be rejected or ignored, never crash the parser or validator. */
const deep = fc
  .integer({ min: 10, max: 2_000 })
  .map((depth) => JSON.parse('{"a":'.repeat(depth) + '1' + '}'.repeat(depth)) as unknown);
/** Path segments as a client would send them (a lone surrogate cannot be percent-encoded). */
const segment = (id: string) => encodeURIComponent(id.toWellFormed());
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

const userBody = fc.record(
  {
    name: fc.oneof(text, anything),
    email: fc.oneof(fc.emailAddress(), text, anything),
    password: fc.oneof(fc.constant(PASSWORD), text, anything),
    currentPassword: fc.oneof(fc.constant(PASSWORD), text, anything),
    role: fc.oneof(fc.constantFrom('user', 'admin', 'root'), anything),
    profile: fc.oneof(
      fc.record({ bio: maybe(fc.oneof(text, anything)), avatarUrl: maybe(fc.oneof(fc.webUrl(), text, anything)) }),
      anything,
    ),
    posts: fc.oneof(
      fc.array(fc.record({ title: fc.oneof(text, anything), body: fc.oneof(text, anything) }), { maxLength: 3 }),
      anything,
    ),
    extra: anything,
  },
  { requiredKeys: [] },
);
const postBody = fc.record(
  {
    title: fc.oneof(text, anything),
    body: fc.oneof(text, anything),
    comments: fc.oneof(
      fc.array(fc.record({ authorId: fc.oneof(fc.nat(50), numberish, anything), body: fc.oneof(text, anything) }), {
        maxLength: 3,
      }),
      anything,
    ),
  },
  { requiredKeys: [] },
);
const commentBody = fc.record(
  { authorId: fc.oneof(fc.nat(50), numberish, anything), body: fc.oneof(text, anything) },
  { requiredKeys: [] },
);
const authBody = fc.record(
  {
    email: fc.oneof(fc.emailAddress(), fc.constantFrom('seed-0@example.com', 'fuzz-admin@example.com'), text, anything),
    password: fc.oneof(fc.constant(PASSWORD), text, anything),
    refreshToken: fc.oneof(
      fc
        .base64String({ minLength: 44, maxLength: 44 })
        .map((b64) => b64.slice(0, 43).replace(/\+/g, '-').replace(/\//g, '_')),
      text,
      anything,
    ),
  },
  { requiredKeys: [] },
);
const anyBody = fc.oneof(userBody, postBody, commentBody, authBody, anything, deep);
const pathId = fc.oneof(fc.nat(60).map(String), numberish.map(String), text);
const query = fc.dictionary(
  fc.constantFrom('limit', 'offset', 'include', 'sort', 'q', 'authorId', 'cursor', 'junk'),
  fc.oneof(text, numberish.map(String)),
  {
    maxKeys: 4,
  },
);
/** What may travel in a header: visible ASCII and spaces (clients refuse to send anything else). */
const headerText = fc.oneof(
  fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)), maxLength: 200 }),
  fc.constantFrom('*', '"1-abc"', 'W/"1-abc"', '"99999999999-x"', "'; DROP TABLE users; --", 'x'.repeat(4_000)),
);
const SECRET = 'fuzz-secret-that-is-long-enough-for-hs256-0123456789';
/** Real credentials, filled in beforeAll: an admin's token, and tokens that must fail. */
const credentials = { admin: '', deletedUser: '', loggedOut: '' };
const forged = (claims: object, secret = SECRET, extra: object = {}) =>
  sign(claims, secret, { issuer: TOKEN_ISSUER, audience: TOKEN_AUDIENCE, ...extra });
/** Authorization headers: valid, malformed, alg none, wrong signature, expired, a deleted user's, logged out. */
const authorization = fc.oneof(
  fc.constant(null).map(() => `Bearer ${credentials.admin}`),
  fc.constant(null).map(() => `Bearer ${credentials.deletedUser}`),
  fc.constant(null).map(() => `Bearer ${credentials.loggedOut}`),
  fc.constant(null).map(() => `bearer   ${credentials.admin}`),
  fc.constant(null).map(() => `Bearer ${credentials.admin.slice(0, -2)}xx`),
  fc.constantFrom(
    'Bearer',
    'Bearer ',
    'Basic YWRhOnB3',
    'Bearer a.b.c',
    'Bearer ..',
    `Bearer ${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"1","sid":"00000000-0000-4000-8000-000000000000","exp":9999999999}').toString('base64url')}.`,
    `Bearer ${forged({ sub: '1', sid: '00000000-0000-4000-8000-000000000000' }, 'another secret, just as long as the real one', { expiresIn: 60 })}`,
    `Bearer ${forged({ sub: '1', sid: '00000000-0000-4000-8000-000000000000', exp: 1_000 })}`,
    `Bearer ${forged({ sub: 'x', sid: 5 }, SECRET, { expiresIn: 60 })}`,
    `Bearer ${forged({ sub: '99999999999', sid: "' OR 1=1 --" }, SECRET, { expiresIn: 60 })}`,
  ),
  headerText.map((value) => `Bearer ${value}`),
  headerText,
);
const headers = fc.record(
  {
    'If-Match': headerText,
    'If-None-Match': headerText,
    'X-Request-Id': headerText,
    Authorization: authorization,
  },
  { requiredKeys: [] },
);

describe('fuzzing every endpoint', () => {
  // Login limits high enough that fuzzed logins keep reaching the password check.
  const t = useTestApp(
    { JWT_SECRET: SECRET, LOGIN_MAX_FAILURES_PER_CLIENT: '100000', LOGIN_MAX_FAILURES_PER_ACCOUNT: '100000' },
    { resetEachTest: false },
  );
  let cases = 0;

  beforeAll(async () => {
    await t.reset();
    // Some real rows, so ids hit existing resources too.
    for (let i = 0; i < 5; i++) {
      const user = await t.db.user(`Seed ${i}`);
      const post = await t.db.post(user.id);
      await t.db.comment(post.id, user.id);
    }
    await t.api
      .post('/users')
      .send({ name: 'Fuzz admin', email: 'fuzz-admin@example.com', password: PASSWORD })
      .expect(201);
    const [admin] = await t.dataSource.query<{ id: number }[]>(
      `SELECT id FROM users WHERE email = 'fuzz-admin@example.com'`,
    );
    await t.dataSource.query(`UPDATE users SET role = 'admin' WHERE id = $1`, [admin.id]);
    // A second admin, so that fuzzed demotions and deletions of the first cannot be refused as "the last admin" forever.
    const spare = await t.db.user('Spare admin');
    await t.dataSource.query(`UPDATE users SET role = 'admin' WHERE id = $1`, [spare.id]);
    credentials.admin = await tokenFor(t.app, admin.id);
    const doomed = await t.db.user('Doomed');
    credentials.deletedUser = await tokenFor(t.app, doomed.id);
    await t.dataSource.query('DELETE FROM users WHERE id = $1', [doomed.id]);
    credentials.loggedOut = await tokenFor(t.app, spare.id);
    await t.api.post('/auth/logout').set('Authorization', `Bearer ${credentials.loggedOut}`).expect(204);
  });
  afterAll(() => console.info(`fuzz: ${cases} requests, no 5xx`));

  const rowCounts = () =>
    t.dataSource.query<unknown[]>(
      'SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM profiles) AS profiles, (SELECT count(*) FROM posts) AS posts, (SELECT count(*) FROM comments) AS comments, (SELECT count(*) FROM sessions WHERE revoked_at IS NULL) AS sessions',
    );

  function assertWellFormed(res: Response, label: string): void {
    cases++;
    if (res.status >= 500) throw new Error(`${label} -> ${res.status}: ${res.text}`);
    if (res.status >= 400) {
      if (!/application\/problem\+json/.test(String(res.headers['content-type']))) {
        throw new Error(`not problem+json: ${label} [${String(res.headers['content-type'])}]`);
      }
      expect(res.body.status).toBe(res.status);
      expect(typeof res.body.detail).toBe('string');
      expect(res.text).not.toMatch(
        /QueryFailedError|node_modules|\.ts:\d+|\bat \w+ \(|SELECT |INSERT |UPDATE |DELETE FROM/,
      );
    }
  }

  const writes: [string, (id: string) => string, fc.Arbitrary<unknown>][] = [
    ['post', () => '/users', userBody],
    ['patch', (id) => `/users/${id}`, userBody],
    ['post', (id) => `/users/${id}/posts`, postBody],
    ['patch', (id) => `/posts/${id}`, postBody],
    ['post', (id) => `/posts/${id}/comments`, commentBody],
  ];
  it.each(writes)(
    '%s %s with hostile bodies: 2xx or a 4xx problem, and a rejected write changes nothing',
    async (method, path, body) => {
      await fc.assert(
        fc.asyncProperty(pathId, fc.oneof(body, anyBody), headers, async (id, payload, hdrs) => {
          const url = path(segment(id));
          const before = await rowCounts();
          const res = await (method === 'post' ? t.api.post(url) : t.api.patch(url))
            .set(hdrs)
            .set('Content-Type', 'application/json')
            .send(JSON.stringify(payload) ?? 'null');
          assertWellFormed(
            res,
            `${method.toUpperCase()} ${url.slice(0, 80)} ${JSON.stringify(hdrs).slice(0, 300)} ${JSON.stringify(payload)?.slice(0, 200)} -> ${res.status} ${res.text.slice(0, 200)}`,
          );
          if (res.status >= 400) expect(await rowCounts()).toEqual(before);
        }),
        { numRuns: RUNS },
      );
    },
  );

  it('POST /auth/login and /auth/refresh with hostile bodies: 200 or a 4xx problem, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/auth/login', '/auth/refresh'),
        fc.oneof(authBody, anyBody),
        headers,
        async (path, payload, hdrs) => {
          const res = await t.api
            .post(path)
            .set(hdrs)
            .set('Content-Type', 'application/json')
            .send(JSON.stringify(payload) ?? 'null');
          assertWellFormed(
            res,
            `POST ${path} ${JSON.stringify(payload)?.slice(0, 200)} -> ${res.status} ${res.text.slice(0, 200)}`,
          );
          if (res.status === 401) expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="api"/);
        },
      ),
      { numRuns: Math.ceil(RUNS / 3) }, // each login verifies an argon2id hash: ~40 ms of CPU
    );
  });

  it('GET /auth/me and POST /auth/logout with hostile Authorization headers: 2xx, 401 or another 4xx problem', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('get', 'post'), authorization, async (method, value) => {
        const request = method === 'get' ? t.api.get('/auth/me') : t.api.post('/auth/logout');
        const path = method === 'get' ? '/auth/me' : '/auth/logout';
        // Logging the admin's own session out would end the rest of the run's valid case: only /auth/me for it.
        if (method === 'post' && value.includes(credentials.admin)) return;
        const res = await request.set('Authorization', value);
        assertWellFormed(res, `${method.toUpperCase()} ${path} [${value.slice(0, 120)}] -> ${res.status}`);
        if (res.status === 401) expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="api"/);
      }),
      { numRuns: RUNS },
    );
  });

  it('GET every collection and item with hostile paths, queries and headers', async () => {
    const reads = [
      '/users',
      '/posts',
      '/users/:id',
      '/users/:id/posts',
      '/posts/:id',
      '/posts/:id/comments',
      '/comments/:id',
      '/health/ready',
    ];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...reads), pathId, query, headers, async (route, id, params, hdrs) => {
        const url = route.replace(':id', segment(id));
        const res = await t.api.get(url).query(params).set(hdrs);
        assertWellFormed(res, `GET ${url}?${new URLSearchParams(params).toString()}`);
      }),
      { numRuns: RUNS * 3 },
    );
  });

  it('DELETE with hostile ids and If-Match headers', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('users', 'posts', 'comments'), pathId, headers, async (resource, id, hdrs) => {
        const res = await t.api.delete(`/${resource}/${segment(id)}`).set(hdrs);
        assertWellFormed(res, `DELETE /${resource}/${id}`);
      }),
      { numRuns: RUNS },
    );
  });

  it('raw bodies of any content type and bytes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          'application/json',
          'text/plain',
          'application/x-www-form-urlencoded',
          'application/json; charset=latin1',
          'application/merge-patch+json',
          '',
        ),
        fc.oneof(
          fc.string(),
          fc.uint8Array({ maxLength: 512 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
        ),
        async (type, raw) => {
          const res = await t.api.post('/users').set('Content-Type', type).send(raw);
          assertWellFormed(res, `POST /users [${type}] ${JSON.stringify(raw).slice(0, 100)}`);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('stores SQL-looking and unicode text verbatim, never executing it', async () => {
    const name = "Robert'); DROP TABLE users;--";
    const bio = "𝕌𝕟𝕚𝕔𝕠𝕕𝕖 🚀 ' OR 1=1 -- %_\\";
    const created = await t.api
      .post('/users')
      .send({ name, email: `bobby-${Date.now()}@example.com`, password: PASSWORD, profile: { bio } })
      .expect(201);
    const fetched = await t.api.get(`/users/${created.body.id}`).expect(200);
    expect(fetched.body.name).toBe(name);
    expect(fetched.body.profile.bio).toBe(bio);
    const found = await t.api.get('/posts').query({ q: "' OR 1=1 --" }).expect(200);
    expect(found.body).toEqual([]);
    // The table is still there, with Bobby in it (the fuzzed DELETEs may have removed everyone else).
    expect(await t.db.count('users')).toBeGreaterThanOrEqual(1);
  });
});
