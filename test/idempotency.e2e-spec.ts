import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { ExpiredKeysPurger } from '../src/idempotency/idempotency.module';
import { registry } from '../src/metrics/metrics';
import { authAs, bearer, PASSWORD, signUp } from './setup/accounts';
import { testDialect, testSql } from './setup/dialect';
import { sqliteGate } from '../src/database/dialects/sqlite';
import { startFaultProxy } from './setup/fault-proxy';
import { openApiDocument } from './setup/openapi-document';
import { type TestApp, useTestApp } from './setup/test-app';

const PROBLEM = /application\/problem\+json/;
/** A fresh key as a client sends it: an RFC 8941 sf-string. */
const newKey = () => `"${randomUUID()}"`;
/** What the test reads of the OpenAPI document. */
interface OpenApiLike {
  info: { description: string };
  paths: Record<string, Record<string, { parameters?: object[]; responses: Record<string, { description: string }> }>>;
}
const DRAFT = 'draft-ietf-httpapi-idempotency-key-header-07';

/** The key rows as stored, oldest first. */
async function keyRows(t: Pick<TestApp, 'query'>) {
  return t.query<{ scope: string; response_status: number | null; response_body: string | null }[]>(
    'SELECT scope, response_status, response_body FROM idempotency_keys ORDER BY created_at',
  );
}

/** The value of one `idempotency_requests_total` series. */
async function outcomeCount(outcome: string): Promise<number> {
  const metric = await registry.getSingleMetric('idempotency_requests_total')!.get();
  return metric.values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
}

describe(`Idempotency-Key (${DRAFT})`, () => {
  const t = useTestApp();

  /** A user and their Authorization header. */
  const author = async (name = 'Ada') => {
    const user = await t.db.user(name);
    return { user, headers: await authAs(t.app, user.id) };
  };

  describe('§2.6 a retry after completion gets the stored response', () => {
    it('POST twice with one key: one row, the same status, headers and bytes, the second marked Idempotent-Replayed', async () => {
      const { user, headers } = await author();
      const key = newKey();
      const send = () =>
        t.api
          .post(`/users/${user.id}/posts`)
          .set(headers)
          .set('Idempotency-Key', key)
          .send({ title: 'Once', body: 'only once', comments: [{ body: 'first!' }] });
      const first = await send().expect(201);
      const second = await send().expect(201);

      expect(second.text).toBe(first.text);
      expect(second.headers.location).toBe(first.headers.location);
      expect(second.headers.etag).toBe(first.headers.etag);
      expect(second.headers['content-type']).toBe(first.headers['content-type']);
      expect(first.headers['idempotent-replayed']).toBeUndefined();
      expect(second.headers['idempotent-replayed']).toBe('true');
      expect(await t.db.count('posts')).toBe(1);
      expect(await t.db.count('comments')).toBe(1);
      const rows = await keyRows(t);
      expect(rows).toEqual([{ scope: `user:${user.id}`, response_status: 201, response_body: first.text }]);
    });

    it('a keyed write costs one statement more than the same write without a key on PostgreSQL (the store, counted in it; two elsewhere: the count apart), and a replay commits none of its write', async () => {
      const { user, headers } = await author();
      const post = (key?: string) => {
        const req = t.api.post(`/users/${user.id}/posts`).set(headers);
        if (key) void req.set('Idempotency-Key', key);
        return req.send({ title: 'Counted', body: 'b', comments: [{ body: 'c' }] });
      };
      // The request's own statements: not the mail worker's polls nor the purge of expired keys, which may fall in between.
      const statements = async (send: () => Promise<unknown>) =>
        (await t.queriesDuring(send)).filter((sql) => !/outbox|ORDER BY expires_at|window_start </i.test(sql));
      const plain = await statements(() => post().expect(201));
      const key = newKey();
      const keyed = await statements(() => post(key).expect(201));
      const extra = testDialect === 'postgres' ? 1 : 2;
      expect(keyed.length - plain.length).toBe(extra);
      expect(keyed.filter((sql) => /idempotency_key/.test(sql))).toHaveLength(extra);
      // Nothing is read before the write, and the per-caller cap reads two counter rows: nothing counts the caller's keys.
      expect(keyed.findIndex((sql) => /idempotency_key/.test(sql))).toBeGreaterThan(
        keyed.findIndex((sql) => /INSERT INTO\W+comments\b/i.test(sql)),
      );
      expect(keyed.filter((sql) => /count\(/i.test(sql))).toEqual([]);
      const replayed = await statements(() => post(key).expect(201).expect('Idempotent-Replayed', 'true'));
      // The replay's write ran again and was rolled back: it is the stored row that answers.
      expect(replayed.some((sql) => /^ROLLBACK/i.test(sql))).toBe(true);
      expect(await t.db.count('posts')).toBe(2);
    });

    it('the replay is the stored response, not a new read: a later change to the post does not show', async () => {
      const { user, headers } = await author();
      const key = newKey();
      const first = await t.api
        .post(`/users/${user.id}/posts`)
        .set(headers)
        .set('Idempotency-Key', key)
        .send({ title: 'Before', body: 'b' })
        .expect(201);
      await t.api.patch(`/posts/${first.body.id}`).set(headers).send({ title: 'After' }).expect(200);
      const retry = await t.api
        .post(`/users/${user.id}/posts`)
        .set(headers)
        .set('Idempotency-Key', key)
        .send({ title: 'Before', body: 'b' })
        .expect(201);
      expect(retry.body.title).toBe('Before');
      expect(retry.text).toBe(first.text);
    });

    it('the key matches however the client re-serializes the same JSON (member order, spacing)', async () => {
      const { user, headers } = await author();
      const key = newKey();
      await t.api
        .post(`/users/${user.id}/posts`)
        .set({ ...headers, 'Content-Type': 'application/json' })
        .set('Idempotency-Key', key)
        .send('{"title":"T","body":"B"}')
        .expect(201);
      const retry = await t.api
        .post(`/users/${user.id}/posts`)
        .set({ ...headers, 'Content-Type': 'application/json' })
        .set('Idempotency-Key', key)
        .send('{ "body": "B",  "title": "T" }')
        .expect(201);
      expect(retry.headers['idempotent-replayed']).toBe('true');
      expect(await t.db.count('posts')).toBe(1);
    });

    it('PATCH and DELETE replay too: a retried DELETE answers its 200 again, not 404', async () => {
      const { user, headers } = await author();
      const post = await t.db.post(user.id, 'Old');
      const patchKey = newKey();
      const patch = () =>
        t.api.patch(`/posts/${post.id}`).set(headers).set('Idempotency-Key', patchKey).send({ title: 'New' });
      const patched = await patch().expect(200);
      const repatched = await patch().expect(200);
      expect(repatched.text).toBe(patched.text);
      expect(repatched.headers.etag).toBe(patched.headers.etag);
      expect(repatched.headers['idempotent-replayed']).toBe('true');

      const deleteKey = newKey();
      const remove = () => t.api.delete(`/posts/${post.id}`).set(headers).set('Idempotency-Key', deleteKey);
      const deleted = await remove().expect(200);
      const redeleted = await remove().expect(200);
      expect(redeleted.text).toBe(deleted.text);
      expect(redeleted.headers['idempotent-replayed']).toBe('true');
      expect(await t.db.count('posts')).toBe(0);
    });

    it('a request without the header is not affected, and stores nothing', async () => {
      const { user, headers } = await author();
      await t.api.post(`/users/${user.id}/posts`).set(headers).send({ title: 'T', body: 'B' }).expect(201);
      await t.api.post(`/users/${user.id}/posts`).set(headers).send({ title: 'T', body: 'B' }).expect(201);
      expect(await t.db.count('posts')).toBe(2);
      expect(await keyRows(t)).toEqual([]);
    });
  });

  describe('§2.7 a key reused for a different request gets 422, and nothing is stored', () => {
    it('a different body with the same key: 422 problem+json, no second post, the stored response unchanged', async () => {
      const { user, headers } = await author();
      const key = newKey();
      const first = await t.api
        .post(`/users/${user.id}/posts`)
        .set(headers)
        .set('Idempotency-Key', key)
        .send({ title: 'One', body: 'b' })
        .expect(201);
      const mismatches = await outcomeCount('mismatch');
      const res = await t.api
        .post(`/users/${user.id}/posts`)
        .set(headers)
        .set('Idempotency-Key', key)
        .send({ title: 'Two', body: 'b' })
        .expect(422)
        .expect('Content-Type', PROBLEM);
      expect(res.body).toMatchObject({ status: 422, type: '/problems/idempotency-key-reused' });
      expect(await t.db.count('posts')).toBe(1);
      expect((await keyRows(t)).map((row) => row.response_body)).toEqual([first.text]);
      expect(await outcomeCount('mismatch')).toBe(mismatches + 1);
    });

    it('the same key on another route, or with other preconditions (If-Match), is another request: 422', async () => {
      const { user, headers } = await author();
      const post = await t.db.post(user.id);
      const key = newKey();
      const read = await t.api.get(`/posts/${post.id}`).expect(200);
      await t.api
        .patch(`/posts/${post.id}`)
        .set(headers)
        .set('Idempotency-Key', key)
        .set('If-Match', read.headers.etag)
        .send({ title: 'X' })
        .expect(200);
      await t.api
        .patch(`/posts/${post.id}`)
        .set(headers)
        .set('Idempotency-Key', key)
        .set('If-Match', '"1-other"')
        .send({ title: 'X' })
        .expect(422);
      await t.api.delete(`/posts/${post.id}`).set(headers).set('Idempotency-Key', key).expect(422);
      expect(await t.db.count('posts')).toBe(1);
    });

    it('the same key on the same route for another resource is another request: 422, and that one is not touched', async () => {
      const { user, headers } = await author();
      const [first, second] = [await t.db.post(user.id), await t.db.post(user.id)];
      const key = newKey();
      await t.api.delete(`/posts/${first.id}`).set(headers).set('Idempotency-Key', key).expect(200);
      const other = await t.api.delete(`/posts/${second.id}`).set(headers).set('Idempotency-Key', key).expect(422);
      expect(other.headers['content-type']).toMatch(PROBLEM);
      await t.api.get(`/posts/${second.id}`).expect(200);
      const bob = await author('Bob');
      await t.api
        .post(`/users/${bob.user.id}/posts`)
        .set(headers)
        .set('Idempotency-Key', key)
        .send({ title: 'T', body: 'B' })
        .expect(422);
    });
  });

  describe('§2.1 the key is a Structured Field String (RFC 8941 §3.3.3) of 1-255 characters', () => {
    it.each([
      ['a bare token', 'abc'],
      ['an empty string', '""'],
      ['256 characters', `"${'k'.repeat(256)}"`],
      ['a list of two', '"a", "b"'],
      ['an unterminated string', '"abc'],
      ['a bad escape', '"a\\bc"'],
    ])('%s: 400 problem naming Idempotency-Key, nothing written', async (_case, field) => {
      const { user, headers } = await author();
      const res = await t.api
        .post(`/users/${user.id}/posts`)
        .set(headers)
        .set('Idempotency-Key', field)
        .send({ title: 'T', body: 'B' })
        .expect(400)
        .expect('Content-Type', PROBLEM);
      expect(res.body.errors).toEqual([{ field: 'Idempotency-Key', messages: [expect.stringContaining('RFC 8941')] }]);
      expect(await t.db.count('posts')).toBe(0);
      expect(await keyRows(t)).toEqual([]);
    });

    it('accepts 255 characters, escapes and parameters', async () => {
      const { user, headers } = await author();
      for (const field of [`"${'k'.repeat(255)}"`, '"quote \\" and backslash \\\\"', '"with-param";a=1']) {
        await t.api
          .post(`/users/${user.id}/posts`)
          .set(headers)
          .set('Idempotency-Key', field)
          .send({ title: 'T', body: 'B' })
          .expect(201);
      }
      expect(await t.db.count('posts')).toBe(3);
    });
  });

  describe('§5 keys are scoped to the caller', () => {
    it("another user's request with the same key runs as their own: it never gets the first user's response", async () => {
      const ada = await author('Ada');
      const bob = await author('Bob');
      const key = newKey();
      const body = { title: 'Same', body: 'same' };
      const adas = await t.api
        .post(`/users/${ada.user.id}/posts`)
        .set(ada.headers)
        .set('Idempotency-Key', key)
        .send(body);
      const bobs = await t.api
        .post(`/users/${bob.user.id}/posts`)
        .set(bob.headers)
        .set('Idempotency-Key', key)
        .send(body);
      expect([adas.status, bobs.status]).toEqual([201, 201]);
      expect(bobs.headers['idempotent-replayed']).toBeUndefined();
      expect(bobs.body.authorId).toBe(bob.user.id);
      expect(await t.db.count('posts')).toBe(2);
    });

    it('anonymous sign-up: the same key and body replays (password included); any other body gets 422 and creates nobody', async () => {
      const key = newKey();
      const body = { name: 'Eve', email: `eve-${randomUUID()}@example.com`, password: PASSWORD };
      const first = await t.api.post('/users').set('Idempotency-Key', key).send(body).expect(201);
      const again = await t.api.post('/users').set('Idempotency-Key', key).send(body).expect(201);
      expect(again.text).toBe(first.text);
      expect(again.headers['idempotent-replayed']).toBe('true');
      // Someone who learnt the key but not the password gets nothing of the first response.
      const other = await t.api
        .post('/users')
        .set('Idempotency-Key', key)
        .send({ ...body, password: `${PASSWORD} guess` })
        .expect(422);
      expect(other.text).not.toContain(body.email);
      expect(await t.db.count('users')).toBe(1);
      const [row] = await keyRows(t);
      expect(row.scope).toBe('anonymous');
    });

    it('the table never holds the password: the fingerprint is a keyed hash', async () => {
      const key = newKey();
      const password = `${PASSWORD} unique-${randomUUID()}`;
      await t.api
        .post('/users')
        .set('Idempotency-Key', key)
        .send({ name: 'Pat', email: `pat-${randomUUID()}@example.com`, password })
        .expect(201);
      const rows = await t.query<Record<string, unknown>[]>('SELECT * FROM idempotency_keys');
      expect(JSON.stringify(rows)).not.toContain(password);
      expect(JSON.stringify(rows)).not.toContain(key.slice(1, -1)); // the key itself is stored as its SHA-256
    });
  });

  describe('4xx outcomes are stored and replayed; 5xx never stick', () => {
    it('a signed-in caller’s 409 (PATCH to a taken email) replays as the same 409 even once the email is free', async () => {
      // Signed up with a password: changing one's email needs it (re-authentication).
      const account = await signUp(t.api, 'Ada');
      const [user, headers] = [account, bearer(account)];
      const email = `taken-${randomUUID()}@example.com`;
      const holder = await t.db.user('Holder', email);
      const key = newKey();
      const send = () =>
        t.api
          .patch(`/users/${user.id}`)
          .set(headers)
          .set('Idempotency-Key', key)
          .send({ email, currentPassword: PASSWORD });
      const first = await send().expect(409);
      await t.query('DELETE FROM users WHERE id = $1', [holder.id]);
      // The retry's PATCH now succeeds, and is rolled back: the stored 409 answers, without the ETag the PATCH made.
      const retry = await send().expect(409);
      expect(retry.text).toBe(first.text);
      expect(retry.headers['content-type']).toBe(first.headers['content-type']);
      expect(retry.headers['idempotent-replayed']).toBe('true');
      expect(retry.headers.etag).toBeUndefined();
      expect(await t.db.count('users')).toBe(1);
      const [row] = await t.query<{ email: string }[]>('SELECT email FROM users WHERE id = $1', [user.id]);
      expect(row.email).not.toBe(email);
    });

    it('an anonymous caller’s 4xx is not kept (nothing would bound how many rows one client leaves): the retry runs', async () => {
      const email = `taken-${randomUUID()}@example.com`;
      const holder = await t.db.user('Holder', email);
      const key = newKey();
      const body = { name: 'Late', email, password: PASSWORD };
      await t.api.post('/users').set('Idempotency-Key', key).send(body).expect(409);
      await t.api.post('/users').set('Idempotency-Key', newKey()).send({}).expect(400);
      expect(await keyRows(t)).toEqual([]);
      await t.query('DELETE FROM users WHERE id = $1', [holder.id]);
      const retry = await t.api.post('/users').set('Idempotency-Key', key).send(body).expect(201);
      expect(retry.headers['idempotent-replayed']).toBeUndefined();
      expect(await t.db.count('users')).toBe(1);
    });

    it('a 404 (comment on a missing post) replays as the same 404', async () => {
      const { headers } = await author();
      const key = newKey();
      const first = await t.api
        .post('/posts/999999/comments')
        .set(headers)
        .set('Idempotency-Key', key)
        .send({ body: 'hi' });
      expect(first.status).toBe(404);
      const retry = await t.api
        .post('/posts/999999/comments')
        .set(headers)
        .set('Idempotency-Key', key)
        .send({ body: 'hi' });
      expect(retry.status).toBe(404);
      expect(retry.text).toBe(first.text);
      expect(retry.headers['idempotent-replayed']).toBe('true');
    });

    it('a 500 (the posts table gone for one request) stores nothing: the retry runs and creates the post', async () => {
      const { user, headers } = await author();
      const key = newKey();
      const rename = (from: string, to: string) => t.query(`ALTER TABLE ${from} RENAME TO ${to}`);
      await rename('posts', 'posts_away');
      try {
        const failed = await t.api
          .post(`/users/${user.id}/posts`)
          .set(headers)
          .set('Idempotency-Key', key)
          .send({ title: 'T', body: 'B' });
        expect(failed.status).toBeGreaterThanOrEqual(500);
      } finally {
        await rename('posts_away', 'posts');
      }
      expect(await keyRows(t)).toEqual([]);
      const retry = await t.api
        .post(`/users/${user.id}/posts`)
        .set(headers)
        .set('Idempotency-Key', key)
        .send({ title: 'T', body: 'B' })
        .expect(201);
      expect(retry.headers['idempotent-replayed']).toBeUndefined();
      expect(await t.db.count('posts')).toBe(1);
    });
  });

  describe('§2.6 concurrent requests with one key', () => {
    it('five at once: 201s with one body and 409s with Retry-After, never two rows', async () => {
      const key = newKey();
      const body = { name: 'Con', email: `con-${randomUUID()}@example.com`, password: PASSWORD };
      // Sign-up hashes the password inside the transaction: the first request holds the key for a while.
      const results = await Promise.all(
        Array.from({ length: 5 }, () => t.api.post('/users').set('Idempotency-Key', key).send(body)),
      );
      const statuses = results.map((res) => res.status);
      expect(statuses.every((status) => status === 201 || status === 409)).toBe(true);
      const created = results.filter((res) => res.status === 201);
      expect(created.length).toBeGreaterThanOrEqual(1);
      expect(new Set(created.map((res) => res.text)).size).toBe(1);
      for (const res of results.filter((r) => r.status === 409)) {
        expect(res.headers['retry-after']).toBe('1');
        expect(res.body.type).toBe('/problems/idempotency-key-in-use');
      }
      expect(await t.db.count('users')).toBe(1);
      expect(await keyRows(t)).toHaveLength(1);
    });
  });

  describe('§2.3 keys expire', () => {
    it('an expired key is forgotten: the request runs anew; the purge deletes expired keys only', async () => {
      const { user, headers } = await author();
      const key = newKey();
      const send = () =>
        t.api.post(`/users/${user.id}/posts`).set(headers).set('Idempotency-Key', key).send({ title: 'T', body: 'B' });
      await send().expect(201);
      await t.query('UPDATE idempotency_keys SET expires_at = $1', [new Date(Date.now() - 1000)]);
      const rerun = await send().expect(201);
      expect(rerun.headers['idempotent-replayed']).toBeUndefined();
      expect(await t.db.count('posts')).toBe(2);

      await t.api
        .post(`/users/${user.id}/posts`)
        .set(headers)
        .set('Idempotency-Key', newKey())
        .send({ title: 'U', body: 'B' });
      await t.query('UPDATE idempotency_keys SET expires_at = $1 WHERE response_body LIKE $2', [
        new Date(Date.now() - 1000),
        '%"title":"T"%',
      ]);
      expect(await t.app.get(ExpiredKeysPurger).purge()).toBe(1);
      expect(await keyRows(t)).toHaveLength(1);
    });

    it('the OpenAPI document gives the lifetime, the header on every write, and its 409/422 answers', () => {
      const document = openApiDocument<OpenApiLike>();
      expect(document.info.description).toContain('kept for 24 h');
      const writes = [
        ['post', '/users'],
        ['patch', '/users/{id}'],
        ['delete', '/users/{id}'],
        ['post', '/users/{userId}/posts'],
        ['patch', '/posts/{id}'],
        ['delete', '/posts/{id}'],
        ['post', '/posts/{postId}/comments'],
        ['delete', '/comments/{id}'],
      ];
      for (const [method, path] of writes) {
        const operation = document.paths[path][method];
        expect(operation.parameters).toContainEqual(
          expect.objectContaining({ name: 'Idempotency-Key', in: 'header', required: false }),
        );
        expect(operation.responses['409'].description).toContain('Idempotency-Key');
        expect(operation.responses['422'].description).toContain('Idempotency-Key');
      }
      expect(document.paths['/auth/login'].post.parameters ?? []).not.toContainEqual(
        expect.objectContaining({ name: 'Idempotency-Key' }),
      );
    });
  });

  describe('the lost response (§1): the write committed, the client never heard', () => {
    it('the response is cut on its way back; the retry with the key gets the original 201, and there is one row', async () => {
      const { user, headers } = await author();
      const port = await t.listen();
      const proxy = await startFaultProxy({ host: '127.0.0.1', port });
      const key = newKey();
      const body = { title: 'Lost', body: 'in transit' };
      try {
        // The write waits for a lock the test holds; meanwhile the proxy stops passing bytes, so the
        // response, written once the lock is released and the write has committed, never gets out.
        const release = await holdUserRow(t, user.id);
        const lost = fetch(`http://127.0.0.1:${proxy.port}/users/${user.id}/posts`, {
          method: 'POST',
          headers: { ...headers, 'Content-Type': 'application/json', 'Idempotency-Key': key },
          body: JSON.stringify(body),
        }).then(
          (res) => `answered ${res.status}`,
          (error: Error) => `failed: ${error.message}`,
        );
        await new Promise((resolve) => setTimeout(resolve, 500)); // the request has long passed the proxy
        proxy.mode('blackhole');
        await release();
        await waitFor(async () => (await t.db.count('posts')) === 1); // committed on the server
        proxy.cut();
        expect(await lost).toMatch(/^failed/);
        const retry = await request(`http://127.0.0.1:${port}`)
          .post(`/users/${user.id}/posts`)
          .set(headers)
          .set('Idempotency-Key', key)
          .send(body)
          .expect(201);
        expect(retry.headers['idempotent-replayed']).toBe('true');
        expect(retry.body).toMatchObject({ ...body, authorId: user.id });
        expect(retry.headers.location).toBe(`/posts/${retry.body.id}`);
        expect(await t.db.count('posts')).toBe(1);
      } finally {
        await proxy.close();
      }
    });
  });
});

describe(`Idempotency-Key on two instances of the app sharing one database (${DRAFT} §2.6)`, () => {
  // Two apps in this process, each with its own pool, like two processes behind a load balancer (the
  // process-level version is in test/instances.e2e-spec.ts). One JWT secret: tokens and fingerprints agree.
  const JWT_SECRET = 'one-jwt-secret-shared-by-both-instances-0123456789';
  const a = useTestApp({ JWT_SECRET });
  const b = useTestApp({ JWT_SECRET }, { resetEachTest: false });

  it('a retry that lands on the other instance gets the stored 201; both racing with one key make one row', async () => {
    const user = await a.db.user('Ada');
    const headers = await authAs(a.app, user.id);
    const post = (api: typeof a.api, key: string, title: string) =>
      api.post(`/users/${user.id}/posts`).set(headers).set('Idempotency-Key', key).send({ title, body: 'b' });
    const first = await post(a.api, '"elsewhere"', 'Once').expect(201);
    const retry = await post(b.api, '"elsewhere"', 'Once').expect(201);
    expect(retry.text).toBe(first.text);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.headers.location).toBe(first.headers.location);

    const racing = await Promise.all([a.api, b.api, a.api, b.api].map((api) => post(api, '"racing"', 'Raced')));
    expect(racing.every((res) => res.status === 201 || res.status === 409)).toBe(true);
    expect(new Set(racing.filter((res) => res.status === 201).map((res) => res.text)).size).toBe(1);
    const titles = await a.query<{ title: string }[]>('SELECT title FROM posts ORDER BY id');
    expect(titles.map((row) => row.title)).toEqual(['Once', 'Raced']);
  });
});

describe(`Idempotency-Key limits (${DRAFT} §5)`, () => {
  const t = useTestApp({ IDEMPOTENCY_MAX_KEYS_PER_CALLER: '2' });

  it('a caller holding the most live keys gets 429 with Retry-After for a new one, and nothing is written', async () => {
    const user = await t.db.user('Busy');
    const headers = await authAs(t.app, user.id);
    const send = (key: string) =>
      t.api.post(`/users/${user.id}/posts`).set(headers).set('Idempotency-Key', key).send({ title: 'T', body: 'B' });
    const [a, b] = [newKey(), newKey()];
    await send(a).expect(201);
    await send(b).expect(201);
    const refused = await send(newKey()).expect(429).expect('Content-Type', PROBLEM);
    expect(refused.headers['retry-after']).toBeDefined();
    expect(await t.db.count('posts')).toBe(2);
    await send(a).expect(201).expect('Idempotent-Replayed', 'true'); // stored keys still replay
    const other = await t.db.user('Other');
    await t.api
      .post(`/users/${other.id}/posts`)
      .set(await authAs(t.app, other.id))
      .set('Idempotency-Key', newKey())
      .send({ title: 'T', body: 'B' })
      .expect(201); // the cap is per caller
  });
});

describe(`Idempotency-Key limits: the cap reads two window counters (${DRAFT} §5)`, () => {
  const t = useTestApp({ IDEMPOTENCY_MAX_KEYS_PER_CALLER: '2' });
  const DAY_MS = 86_400_000; // IDEMPOTENCY_KEY_TTL_SECONDS's default: one window

  it('keys count in the window they were stored in and the next; older counters no longer count and are purged', async () => {
    const user = await t.db.user('Busy');
    const headers = await authAs(t.app, user.id);
    const send = (key: string) =>
      t.api.post(`/users/${user.id}/posts`).set(headers).set('Idempotency-Key', key).send({ title: 'T', body: 'B' });
    // The caller's count per window, over its counter rows (one per shard the keys fell in).
    const counters = async () =>
      (
        await t.query<{ key_count: number | string }[]>(
          'SELECT sum(key_count) AS key_count FROM idempotency_key_counts WHERE scope = $1 GROUP BY window_start ORDER BY window_start',
          [`user:${user.id}`],
        )
      ).map((row) => ({ key_count: Number(row.key_count) }));
    await send(newKey()).expect(201);
    await send(newKey()).expect(201);
    expect(await counters()).toEqual([{ key_count: 2 }]); // counted with the write, in its transaction
    await send(newKey()).expect(429);
    expect(await counters()).toEqual([{ key_count: 2 }]); // a refused key is not counted

    // The keys' window is now the previous one: they still count.
    await t.query('UPDATE idempotency_key_counts SET window_start = window_start - $1', [DAY_MS]);
    await send(newKey()).expect(429);
    // Two windows back: they no longer do (every key stored then has expired), and the purge deletes the counter.
    await t.query('UPDATE idempotency_key_counts SET window_start = window_start - $1', [DAY_MS]);
    await send(newKey()).expect(201);
    expect(await counters()).toHaveLength(2);
    await t.app.get(ExpiredKeysPurger).purge();
    expect(await counters()).toEqual([{ key_count: 1 }]);
  });
});

/**
 * Makes the next write on the user's rows wait: PostgreSQL and MariaDB lock the user row (a post's
 * foreign key check waits for it); on SQLite the test holds the app's connection (SqliteGate).
 * Returns the function that lets go.
 */
async function holdUserRow(t: TestApp, userId: number): Promise<() => Promise<void>> {
  if (testDialect === 'sqlite') {
    // The app's one connection, held as a transaction holds it (better-sqlite3's busy wait would block this process).
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const holding = sqliteGate.exclusive(() => held);
    return async () => {
      release();
      await holding;
    };
  }
  const runner = t.dataSource.createQueryRunner();
  await runner.startTransaction();
  await runner.query(...testSql('SELECT id FROM users WHERE id = $1 FOR UPDATE', [userId]));
  return async () => {
    await runner.commitTransaction();
    await runner.release();
  };
}

/** Polls `condition` every 50 ms until it holds (at most 10 s: generous, never the thing measured). */
async function waitFor(condition: () => Promise<boolean>): Promise<void> {
  for (let waited = 0; !(await condition()); waited += 50) {
    if (waited > 10_000) throw new Error('waitFor: the condition never held');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
