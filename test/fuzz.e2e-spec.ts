import fc from 'fast-check';
import { sign } from 'jsonwebtoken';
import type { Response } from 'supertest';
import { TOKEN_AUDIENCE, TOKEN_ISSUER } from '../src/auth/tokens';
import { MAX_JSON_DEPTH } from '../src/http/json-body';
import { PASSWORD, tokenFor } from './setup/accounts';
import { openApiDocument } from './setup/openapi-document';
import { useTestApp } from './setup/test-app';

/**
 * Property-based fuzzing of every endpoint through HTTP: whatever the body, path, query or headers,
 * the answer is never a 5xx, every error is problem+json that leaks nothing, and a rejected write
 * changes nothing in the database.
 */
const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
// FUZZ_SEED replays a failing run: fast-check prints the seed with every counterexample.
if (process.env.FUZZ_SEED) fc.configureGlobal({ seed: Number(process.env.FUZZ_SEED) });
// A property runs RUNS requests one after another: scale the per-test timeout with it, not with luck.
jest.setTimeout(Math.max(30_000, RUNS * 400));
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

/** Arrays and objects nested around a value, up to a few levels past the parser's depth limit. */
const nested = <T>(arb: fc.Arbitrary<T>) =>
  fc
    .tuple(arb, fc.array(fc.boolean(), { minLength: 1, maxLength: MAX_JSON_DEPTH + 3 }))
    .map(([value, levels]) => levels.reduce<unknown>((inner, asArray) => (asArray ? [inner] : { x: inner }), value));

type Schema = { type?: string | string[]; $ref?: string; items?: Schema; properties?: Record<string, Schema> };
/** The OpenAPI document of the code under test (what `npm run openapi` would write now). */
const document = openApiDocument<{
  paths: Record<string, Record<string, { parameters?: { name: string; in: string }[]; requestBody?: unknown }>>;
  components: { schemas: Record<string, Schema> };
}>();

/**
 * A body generator derived from an OpenAPI schema: each field gets values of its type, anything at
 * all, and its type wrapped in nested arrays/objects; objects also get extra fields. So every field
 * the document lists is fuzzed, including fields added later.
 */
function fromSchema(schema: Schema, depth = 0): fc.Arbitrary<unknown> {
  if (schema.$ref) return fromSchema(document.components.schemas[schema.$ref.split('/').pop()!], depth);
  const type = [schema.type].flat()[0];
  let typed: fc.Arbitrary<unknown>;
  if (type === 'object' || schema.properties) {
    const fields = Object.fromEntries(
      Object.entries(schema.properties ?? {}).map(([name, field]) => [name, fromSchema(field, depth + 1)]),
    );
    typed = fc.record({ ...fields, ...(depth === 0 && { extra: anything }) }, { requiredKeys: [] });
  } else if (type === 'array') {
    typed = fc.array(schema.items ? fromSchema(schema.items, depth + 1) : anything, { maxLength: 3 });
  } else if (type === 'integer' || type === 'number') typed = fc.oneof(fc.nat(60), numberish);
  else typed = fc.oneof(text, fc.emailAddress(), fc.webUrl());
  return fc.oneof({ weight: 4, arbitrary: typed }, anything, nested(typed));
}

/** Every path × method the OpenAPI document lists, with its path and query parameters and body schema. */
const operations = Object.entries(document.paths).flatMap(([path, methods]) =>
  Object.entries(methods)
    .filter(([method]) => ['get', 'post', 'patch', 'put', 'delete'].includes(method))
    .map(([method, operation]) => {
      const bodySchema = (operation.requestBody as { content?: Record<string, { schema: Schema }> } | undefined)
        ?.content?.['application/json']?.schema;
      return {
        method,
        path,
        query: (operation.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name),
        body: bodySchema ? fromSchema(bodySchema) : undefined,
      };
    }),
);
const pathId = fc.oneof(fc.nat(60).map(String), numberish.map(String), text);
const queryFor = (names: string[]) =>
  fc.dictionary(fc.constantFrom(...names, 'junk'), fc.oneof(text, numberish.map(String)), { maxKeys: 4 });
/** What may travel in a header: visible ASCII and spaces (clients refuse to send anything else). */
const headerText = fc.oneof(
  fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)), maxLength: 200 }),
  fc.constantFrom("'; DROP TABLE users; --", 'x'.repeat(4_000)),
);
/** Entity tags as RFC 9110 §8.8.3 writes them, and as they are mangled: weak, strong, `*`, lists, garbage. */
const entityTag = fc.oneof(
  fc.tuple(fc.nat(3), fc.string({ maxLength: 12 })).map(([version, hash]) => `"${version}-${hash}"`),
  fc.constantFrom('"1-abc"', '"99999999999-x"', '"2147483648-x"', '"-1-x"', '""', '"', 'W/"', 'W/""'),
  headerText,
);
const preconditionField = fc.oneof(
  fc.constant('*'),
  entityTag,
  entityTag.map((tag) => `W/${tag}`),
  fc
    .tuple(
      fc.array(
        fc.oneof(
          entityTag,
          entityTag.map((tag) => `W/${tag}`),
          fc.constant('*'),
        ),
        { minLength: 2, maxLength: 4 },
      ),
      fc.constantFrom(',', ', ', ' ,'),
    )
    .map(([tags, separator]) => tags.join(separator)),
);
/** Content types with parameters (RFC 9110 §8.3.1): charsets in any case, quoted, unknown parameters. */
const jsonContentType = fc.oneof(
  { weight: 3, arbitrary: fc.constant('application/json') },
  fc.constantFrom(
    'application/json; charset=utf-8',
    'application/json;charset=UTF-8',
    'application/json; charset="utf-8"',
    'application/merge-patch+json; charset=utf-8',
    'application/problem+json',
    'application/json; charset=latin1',
    'application/json; charset=',
    'application/json; foo=bar; charset=utf-8',
    'application/json;;',
    'APPLICATION/JSON',
  ),
);
const SECRET = 'fuzz-secret-that-is-long-enough-for-hs256-0123456789';
/** Real credentials, filled in before each property: an admin's token, and tokens that must fail. */
const credentials = { admin: '', deletedUser: '', loggedOut: '' };
const forged = (claims: object, secret = SECRET, extra: object = {}) =>
  sign(claims, secret, { issuer: TOKEN_ISSUER, audience: TOKEN_AUDIENCE, ...extra });
const NO_SESSION = '00000000-0000-4000-8000-000000000000';
/**
 * Authorization headers (RFC 6750 §2.1): a valid admin token, so writes get past the guard, and every
 * way a token can be wrong — malformed, alg none, wrong signature, expired, wrong claims, a deleted
 * user's, a logged-out session's — each of which must be a 401 problem, never a 5xx.
 */
const authorization = fc.oneof(
  { weight: 4, arbitrary: fc.constant(null).map(() => `Bearer ${credentials.admin}`) },
  fc.constant(null).map(() => `Bearer ${credentials.deletedUser}`),
  fc.constant(null).map(() => `Bearer ${credentials.loggedOut}`),
  fc.constant(null).map(() => `Bearer ${credentials.admin.slice(0, -2)}xx`),
  fc.constantFrom(
    'Bearer',
    'Bearer ',
    'Basic YWRhOnB3',
    'Bearer a.b.c',
    'Bearer ..',
    `Bearer ${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: '1', sid: NO_SESSION, exp: 9_999_999_999 })).toString('base64url')}.`,
    `Bearer ${forged({ sub: '1', sid: NO_SESSION }, 'another secret, just as long as the real one', { expiresIn: 60 })}`,
    `Bearer ${forged({ sub: '1', sid: NO_SESSION, exp: 1_000 })}`,
    `Bearer ${forged({ sub: 'x', sid: 5 }, SECRET, { expiresIn: 60 })}`,
    `Bearer ${forged({ sub: '99999999999', sid: "' OR 1=1 --" }, SECRET, { expiresIn: 60 })}`,
  ),
  headerText.map((value) => `Bearer ${value}`),
  headerText,
);
const headers = fc.record(
  {
    Authorization: authorization,
    'If-Match': preconditionField,
    'If-None-Match': preconditionField,
    'If-Modified-Since': fc.oneof(
      fc.date({ noInvalidDate: true }).map((d) => d.toUTCString()),
      headerText,
    ),
    'X-Request-Id': headerText,
  },
  { requiredKeys: [] },
);

describe('fuzzing every endpoint', () => {
  // Login limits high enough that fuzzed logins keep reaching the password check.
  const t = useTestApp(
    { JWT_SECRET: SECRET, LOGIN_MAX_FAILURES_PER_CLIENT: '1000000', LOGIN_MAX_FAILURES_PER_ACCOUNT: '1000000' },
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
    const doomed = await t.db.user('Doomed');
    credentials.deletedUser = await tokenFor(t.app, doomed.id);
    await t.query('DELETE FROM users WHERE id = $1', [doomed.id]);
    const gone = await t.db.user('Logged out');
    credentials.loggedOut = await tokenFor(t.app, gone.id);
    await t.api.post('/auth/logout').set('Authorization', `Bearer ${credentials.loggedOut}`).expect(204);
  });

  /** A fresh admin for each property: a fuzzed DELETE, demotion or logout may have ended the last one. */
  async function freshAdmin(): Promise<void> {
    const admin = await t.db.user('Fuzz admin');
    await t.query(`UPDATE users SET role = 'admin' WHERE id = $1`, [admin.id]);
    credentials.admin = await tokenFor(t.app, admin.id);
  }
  beforeEach(freshAdmin);
  afterAll(() => console.info(`fuzz: ${cases} requests, no 5xx`));

  const rowCounts = () =>
    t.query<unknown[]>(
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

  it('derives its targets from the OpenAPI document: every path and method', () => {
    expect(operations.map((o) => `${o.method.toUpperCase()} ${o.path}`)).toEqual(
      expect.arrayContaining([
        'POST /users',
        'PATCH /users/{id}',
        'DELETE /comments/{id}',
        'GET /posts/{postId}/comments',
        'POST /auth/login',
        'POST /auth/refresh',
        'POST /auth/logout',
        'GET /auth/me',
      ]),
    );
  });

  it.each(operations.map((operation) => [operation.method.toUpperCase(), operation.path, operation] as const))(
    '%s %s with hostile ids, queries, bodies, media types and preconditions: never a 5xx; a rejected write changes nothing',
    async (_method, _path, { method, path, query, body }) => {
      const send = body && fc.oneof({ weight: 3, arbitrary: body }, anything, deep);
      await fc.assert(
        fc.asyncProperty(
          pathId,
          queryFor(query.length > 0 ? query : ['limit']),
          send ?? fc.constant(undefined),
          jsonContentType,
          headers,
          async (id, params, payload, type, hdrs) => {
            const url = path.replace(/\{\w+\}/g, segment(id));
            const before = method === 'get' ? undefined : await rowCounts();
            let req = t.api[method as 'get'](url).query(params).set(hdrs);
            if (send) req = req.set('Content-Type', type).send(JSON.stringify(payload) ?? 'null');
            const res = await req;
            assertWellFormed(
              res,
              `${method.toUpperCase()} ${url.slice(0, 80)} [${type}] ${JSON.stringify(hdrs).slice(0, 300)} ${JSON.stringify(payload)?.slice(0, 200)} -> ${res.status} ${res.text.slice(0, 200)}`,
            );
            if (before && res.status >= 400) expect(await rowCounts()).toEqual(before);
          },
        ),
        { numRuns: Math.ceil(RUNS / 2) },
      );
    },
  );

  it('HEAD and GET of every readable path (and /health/ready) with hostile preconditions', async () => {
    const reads = operations.filter((o) => o.method === 'get').map((o) => o.path);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...reads, '/health/ready'), pathId, headers, async (route, id, hdrs) => {
        const url = route.replace(/\{\w+\}/g, segment(id));
        const res = await t.api.head(url).set(hdrs);
        cases++;
        expect(res.status).toBeLessThan(500);
        const got = await t.api.get(url).set(hdrs);
        assertWellFormed(got, `GET ${url} ${JSON.stringify(hdrs).slice(0, 300)}`);
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
