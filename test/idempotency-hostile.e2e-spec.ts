import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type request from 'supertest';
import { DataSource } from 'typeorm';
import { loadConfig } from '../src/config/app.config';
import { dataSourceOptions } from '../src/database/data-source.options';
import { UnavailableError } from '../src/database/errors/persistence-errors';
import { hashKey } from '../src/idempotency/idempotency-key';
import { IdempotencyRepository } from '../src/idempotency/idempotency.repository';
import { adminAuth, authAs, bearer, PASSWORD, signUp } from './setup/accounts';
import { connectionKiller, killEvery } from './setup/connection-killer';
import { describeOn, testDialect, testSql } from './setup/dialect';
import { proxyFor } from './setup/fault-proxy';
import { startTestApp, type TestApp, useTestApp } from './setup/test-app';

/**
 * Hostile tests of the Idempotency-Key as redesigned in 0c73e0e (the key stored by the write's last
 * statement; a retry's handler runs again and is rolled back; the committed row decides). Each test
 * names the property it attacks; the ones that fail are findings (see the branch's report).
 */

/** A fresh key as a client sends it: an RFC 8941 sf-string; `raw` is the key itself. */
const newKey = () => {
  const raw = randomUUID();
  return { raw, field: `"${raw}"` };
};

type Res = request.Response;

/** The key rows as stored. */
async function keyRows(t: Pick<TestApp, 'query'>) {
  return t.query<{ scope: string; response_status: number; response_body: string }[]>(
    'SELECT scope, response_status, response_body FROM idempotency_keys',
  );
}

/** How many answers had each status, e.g. `{ 201: 3, 422: 1 }`. */
const statuses = (answers: Res[]) =>
  answers.reduce<Record<number, number>>((all, res) => ({ ...all, [res.status]: (all[res.status] ?? 0) + 1 }), {});

/**
 * A connection of the test's own (not the app's pool) that holds a transaction open: for a row the
 * app's statements must wait on, as a write stalled between its store and its COMMIT would hold it.
 */
async function holder(): Promise<{
  query(sql: string, parameters?: unknown[]): Promise<unknown>;
  end(): Promise<void>;
}> {
  const options = dataSourceOptions({
    ...loadConfig({}).database,
    url: process.env.DATABASE_URL!,
    migrationsRun: false,
    statementTimeoutMs: 0,
  });
  const quiet = { migrations: [], logger: undefined, logging: false, maxQueryExecutionTime: undefined };
  const db = await new DataSource({ ...options, ...quiet }).initialize();
  const runner = db.createQueryRunner();
  await runner.connect();
  await runner.startTransaction();
  // A stall the test ends itself: not the role's idle_in_transaction_session_timeout (DB_STATEMENT_TIMEOUT_MS).
  if (testDialect === 'postgres') await runner.query('SET LOCAL idle_in_transaction_session_timeout = 0');
  return {
    query: (sql, parameters) => runner.query(...testSql(sql, parameters)),
    async end() {
      await runner.rollbackTransaction().catch(() => undefined);
      await runner.release();
      await db.destroy();
    },
  };
}

/** Inserts a key row (and takes its lock) as a write's store would, for `scope` and the key `raw`, in `db`'s transaction. */
async function insertKeyRow(
  db: { query(sql: string, parameters?: unknown[]): Promise<unknown> },
  scope: string,
  raw: string,
) {
  const now = new Date();
  // PostgreSQL: the advisory lock a store takes (IdempotencyRepository), held to the end of the transaction.
  if (testDialect === 'postgres')
    await db.query("SELECT pg_advisory_xact_lock(hashtextextended($1::text || ':' || $2::text, 0))", [
      scope,
      hashKey(raw),
    ]);
  await db.query(
    'INSERT INTO idempotency_keys (scope, key_hash, fingerprint, created_at, expires_at, response_status, response_headers, response_body) ' +
      'VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
    [
      scope,
      hashKey(raw),
      'x'.repeat(43),
      now,
      new Date(now.getTime() + 3_600_000),
      201,
      '{"content-type":"application/json; charset=utf-8"}',
      '{}',
    ],
  );
}

/** One JWT secret for every app of this file: tokens and fingerprints agree across instances. */
const JWT_SECRET = 'one-jwt-secret-shared-by-the-hostile-instances-0123456789';

describe('Idempotency-Key under attack (the key stored at the end of the write, ADR 0014)', () => {
  const t = useTestApp({ JWT_SECRET });

  const author = async (name = 'Ada') => {
    const user = await t.db.user(name);
    return { user, headers: await authAs(t.app, user.id) };
  };

  describe('concurrent duplicates', () => {
    let other: TestApp | undefined;
    afterEach(async () => {
      await other?.close();
      other = undefined;
    });

    it('thirty requests with one key at once across two app instances, two bodies: one post, one key row, and every answer is the stored 201, a 409, or a 422 for the other body', async () => {
      other = await startTestApp({ JWT_SECRET });
      const { user, headers } = await author();
      const key = newKey();
      const bodies = [
        { title: 'Same', body: 'same body' },
        { title: 'Other', body: 'other body' },
      ];
      const answers = await Promise.all(
        Array.from({ length: 30 }, (_, i) => {
          const api = i % 2 === 0 ? t.api : other!.api;
          const body = bodies[i % 3 === 0 ? 1 : 0];
          return api
            .post(`/users/${user.id}/posts`)
            .set(headers)
            .set('Idempotency-Key', key.field)
            .send(body)
            .then((res) => ({ res, body }));
        }),
      );
      expect(await t.db.count('posts')).toBe(1);
      const rows = await keyRows(t);
      expect(rows).toHaveLength(1);
      const stored = rows[0];
      expect(stored.response_status).toBe(201);
      const winner = JSON.parse(stored.response_body) as { title: string };
      const fresh = answers.filter(({ res }) => res.status === 201 && res.headers['idempotent-replayed'] === undefined);
      expect(fresh).toHaveLength(1);
      for (const { res, body } of answers) {
        if (body.title === winner.title) {
          expect([201, 409]).toContain(res.status);
          if (res.status === 201) expect(res.text).toBe(stored.response_body);
          if (res.status === 409) expect(res.headers['retry-after']).toBeDefined();
        } else {
          expect([409, 422]).toContain(res.status);
        }
      }
    });

    it('ten requests race a key whose row has expired: one new post, and every answer is its 201 (or a 409 to retry)', async () => {
      const { user, headers } = await author();
      const key = newKey();
      const send = () =>
        t.api
          .post(`/users/${user.id}/posts`)
          .set(headers)
          .set('Idempotency-Key', key.field)
          .send({ title: 'Expiring', body: 'b' });
      await send().expect(201);
      await t.query('UPDATE idempotency_keys SET expires_at = $1', [new Date(Date.now() - 1000)]);
      const answers = await Promise.all(Array.from({ length: 10 }, send));
      expect(statuses(answers)[500]).toBeUndefined();
      expect(await t.db.count('posts')).toBe(2);
      const rows = await keyRows(t);
      expect(rows).toHaveLength(1);
      const created = answers.filter((res) => res.status === 201);
      expect(created.filter((res) => res.headers['idempotent-replayed'] === undefined)).toHaveLength(1);
      for (const res of created) expect(res.text).toBe(rows[0].response_body);
      for (const res of answers.filter((r) => r.status !== 201)) expect(res.status).toBe(409);
    });

    it('ten sign-ups at once with one key and one body (argon2 inside the transaction): one account, every answer the same 201 or a 409 to retry', async () => {
      const key = newKey();
      const body = { name: 'Racer', email: `racer-${randomUUID()}@example.com`, password: PASSWORD };
      const answers = await Promise.all(
        Array.from({ length: 10 }, () => t.api.post('/users').set('Idempotency-Key', key.field).send(body)),
      );
      expect(await t.db.count('users')).toBe(1);
      const created = answers.filter((res) => res.status === 201);
      expect(created.length).toBeGreaterThanOrEqual(1);
      for (const res of created) expect(res.text).toBe(created[0].text);
      for (const res of answers.filter((r) => r.status !== 201)) expect(res.status).toBe(409);
      // Another body with the key: 422, whatever its email.
      await t.api
        .post('/users')
        .set('Idempotency-Key', key.field)
        .send({ ...body, email: `other-${randomUUID()}@example.com` })
        .expect(422);
      expect(await t.db.count('users')).toBe(1);
    });

    it('fifty duplicates of one keyed sign-up at once (argon2 in each transaction) on the default pool: one account, and an unrelated read meanwhile still answers 200', async () => {
      const reader = await t.db.user('Reader');
      const key = newKey();
      const body = { name: 'Crowd', email: `crowd-${randomUUID()}@example.com`, password: PASSWORD };
      const started = Date.now();
      const crowd = Promise.all(
        Array.from({ length: 50 }, () =>
          t.api
            .post('/users')
            .set('Idempotency-Key', key.field)
            .send(body)
            .then((res) => res),
        ),
      );
      await sleep(100);
      const readStarted = Date.now();
      const read = await t.api.get(`/users/${reader.id}`);
      const readMs = Date.now() - readStarted;
      const answers = await crowd;
      process.stdout.write(
        `50 duplicate sign-ups on ${testDialect}: ${JSON.stringify(statuses(answers))} in ${Date.now() - started} ms; ` +
          `the read meanwhile ${read.status} in ${readMs} ms\n`,
      );
      // The control: fifty sign-ups without a key (each hashes before its transaction).
      const plain = Promise.all(
        Array.from({ length: 50 }, () =>
          t.api
            .post('/users')
            .send({ ...body, email: `plain-${randomUUID()}@example.com` })
            .then((res) => res),
        ),
      );
      await sleep(100);
      const controlStarted = Date.now();
      const control = await t.api.get(`/users/${reader.id}`);
      const controlMs = Date.now() - controlStarted;
      process.stdout.write(
        `50 sign-ups without a key: ${JSON.stringify(statuses(await plain))}; the read meanwhile ${control.status} in ${controlMs} ms\n`,
      );
      expect(read.status).toBe(200);
      expect(await t.db.count('users')).toBe(52);
      expect(statuses(answers)[503]).toBeUndefined();
    });

    it('ten DELETE /auth/sessions/{id} at once with one key: the session ends once, and every answer is 204 (none the 404 of a rerun)', async () => {
      const ada = await signUp(t.api, 'Ada');
      await t.api.post('/auth/login').send({ email: ada.email, password: PASSWORD }).expect(200); // a second session
      const sessions = await t.api.get('/auth/sessions').set(bearer(ada)).expect(200);
      const target = (sessions.body as { id: string; current: boolean }[]).find((s) => !s.current)!.id;
      const key = newKey();
      const answers = await Promise.all(
        Array.from({ length: 10 }, () =>
          t.api.delete(`/auth/sessions/${target}`).set(bearer(ada)).set('Idempotency-Key', key.field),
        ),
      );
      expect(statuses(answers)).toEqual({ 204: 10 });
    });
  });

  describe('account routes raced by duplicates', () => {
    const mails = (email: string) =>
      t.query<{ body: string }[]>('SELECT body FROM mail_outbox WHERE recipient = $1 ORDER BY id', [email]);

    it('ten keyed POST /auth/verify-email/resend at once: one mail more, every answer the 202 (or a 409/429 to retry)', async () => {
      const ada = await signUp(t.api, 'Ada');
      const before = (await mails(ada.email)).length;
      const key = newKey();
      const answers = await Promise.all(
        Array.from({ length: 10 }, () =>
          t.api.post('/auth/verify-email/resend').set(bearer(ada)).set('Idempotency-Key', key.field),
        ),
      );
      process.stdout.write(`10 duplicate resends on ${testDialect}: ${JSON.stringify(statuses(answers))}\n`);
      expect((await mails(ada.email)).length).toBe(before + 1);
      for (const res of answers) expect([202, 409, 429]).toContain(res.status);
      expect(answers.filter((res) => res.status === 202).length).toBeGreaterThanOrEqual(1);
    });

    it("replays of one resend do not use up the address's resend throttle (PASSWORD_RESET_MAX_PER_ADDRESS=5): a new resend still mails", async () => {
      const ada = await signUp(t.api, 'Ada');
      const key = newKey();
      const send = () => t.api.post('/auth/verify-email/resend').set(bearer(ada)).set('Idempotency-Key', key.field);
      await send().expect(202);
      // A client retrying a resend whose answer it did not hear; each replay reruns the handler, and
      // its throttle point is taken in the throttle's store (not rolled back).
      for (let i = 0; i < 5; i++) await send().expect(202).expect('Idempotent-Replayed', 'true');
      const before = (await mails(ada.email)).length;
      const fresh = await t.api
        .post('/auth/verify-email/resend')
        .set(bearer(ada))
        .set('Idempotency-Key', newKey().field);
      expect(fresh.status).toBe(202);
      expect((await mails(ada.email)).length).toBe(before + 1);
    });

    it('ten keyed POST /auth/verify-email with one token at once: verified once, every answer 204 (none the 400 "token used" of a rerun)', async () => {
      const ada = await signUp(t.api, 'Ada');
      const match = /#token=([\w-]{43})/.exec((await mails(ada.email)).at(-1)?.body ?? '');
      const token = match![1];
      const key = newKey();
      const answers = await Promise.all(
        Array.from({ length: 10 }, () =>
          t.api.post('/auth/verify-email').set('Idempotency-Key', key.field).send({ token }),
        ),
      );
      expect(statuses(answers)).toEqual({ 204: 10 });
    });
  });

  describe('a retry whose handler now fails, or now succeeds', () => {
    it('PATCH /posts/{id} replays its 200 after the post was deleted (the rerun answers 404) and after its If-Match went stale (412)', async () => {
      const { user, headers } = await author();
      const post = await t.db.post(user.id, 'Target');
      const current = await t.api.get(`/posts/${post.id}`).expect(200);
      const key = newKey();
      const patch = () =>
        t.api
          .patch(`/posts/${post.id}`)
          .set(headers)
          .set('If-Match', current.headers.etag)
          .set('Idempotency-Key', key.field)
          .send({ title: 'Changed' });
      const first = await patch().expect(200);
      const stale = await patch().expect(200); // the rerun's If-Match no longer holds: 412, rolled back
      expect(stale.text).toBe(first.text);
      expect(stale.headers.etag).toBe(first.headers.etag);
      await t.api.delete(`/posts/${post.id}`).set(headers).expect(200);
      const gone = await patch().expect(200); // the rerun's post is gone: 404, rolled back
      expect(gone.text).toBe(first.text);
      expect(gone.headers['idempotent-replayed']).toBe('true');
    });

    it("a stored 409 replays as the 409 when the retry's handler now succeeds, with none of the undone run's ETag, Location or Consistency-Token", async () => {
      const user = await t.db.user('Ada');
      const admin = await adminAuth(t.app, t.db, t.dataSource);
      const taken = await t.db.user('Taken');
      const key = newKey();
      const patch = () =>
        t.api
          .patch(`/users/${user.id}`)
          .set(admin.headers)
          .set('Idempotency-Key', key.field)
          .send({ email: taken.email });
      const first = await patch().expect(409);
      expect(first.headers['retry-after']).toBeUndefined();
      await t.query('UPDATE users SET email = $1 WHERE id = $2', [`freed-${randomUUID()}@example.com`, taken.id]);
      const retry = await patch().expect(409);
      expect(retry.text).toBe(first.text);
      expect(retry.headers['idempotent-replayed']).toBe('true');
      for (const name of ['etag', 'location', 'consistency-token', 'link', 'retry-after']) {
        expect(retry.headers[name]).toBeUndefined();
      }
      expect(retry.headers['cache-control']).toBe(first.headers['cache-control']);
      // The rerun's change was undone.
      const [row] = await t.query<{ email: string }[]>('SELECT email FROM users WHERE id = $1', [user.id]);
      expect(row.email).toBe(user.email);
    });

    it("a stored 404 replays as the 404 when the retry's handler now creates the comment: without the undone run's Location, and nothing written", async () => {
      const { user, headers } = await author();
      const existing = await t.db.post(user.id, 'Existing');
      const key = newKey();
      const comment = () =>
        t.api
          .post(`/posts/${existing.id + 1}/comments`)
          .set(headers)
          .set('Idempotency-Key', key.field)
          .send({ body: 'to a post not there yet' });
      const first = await comment().expect(404);
      const next = await t.db.post(user.id, 'Next');
      expect(next.id).toBe(existing.id + 1);
      const retry = await comment().expect(404);
      expect(retry.text).toBe(first.text);
      expect(retry.headers['idempotent-replayed']).toBe('true');
      for (const name of ['location', 'etag', 'consistency-token']) expect(retry.headers[name]).toBeUndefined();
      expect(await t.db.count('comments')).toBe(0);
    });

    it("a retry whose key's row cannot be read after its rerun failed answers 503 (unknown), never the rerun's own 4xx (here a 404 for a DELETE that did happen)", async () => {
      const { user, headers } = await author();
      const post = await t.db.post(user.id, 'Deleted once');
      const key = newKey();
      const del = () => t.api.delete(`/posts/${post.id}`).set(headers).set('Idempotency-Key', key.field);
      await del().expect(200);
      // The lookup on the pool fails once (a pool exhausted for DB_POOL_TIMEOUT_MS, a dropped connection).
      const keys = t.app.get(IdempotencyRepository);
      const find = jest
        .spyOn(keys, 'find')
        .mockRejectedValueOnce(
          new UnavailableError('No database connection became free in time', 'database_pool_exhausted', 1),
        );
      try {
        const retry = await del();
        // A 404 tells the client its DELETE did not happen; it did.
        expect(retry.status).toBe(503);
      } finally {
        find.mockRestore();
      }
      await del().expect(200).expect('Idempotent-Replayed', 'true');
    });
  });

  describeOn(['postgres', 'mysql'], 'the app has one connection on SQLite: no pool to kill connections of')(
    'database connections killed in the middle',
    () => {
      it('twenty keyed POSTs retried by their clients while the app loses its connections every 30 ms (for two seconds): exactly one post per key, every final answer its 201', async () => {
        const { user, headers } = await author();
        const killer = await connectionKiller(process.env.DATABASE_URL!);
        const kills = killEvery(killer, 30);
        // The kills end after two seconds (however slow the machine), then every client's retry can get through.
        const stopKilling = sleep(2_000).then(() => kills.stop());
        const keys = Array.from({ length: 20 }, (_, i) => ({ key: newKey(), title: `Killed ${i}` }));
        let finals: Res[];
        try {
          finals = await Promise.all(
            keys.map(async ({ key, title }) => {
              // A bound on a hang, not a timing: retries go on past the kills.
              for (const started = Date.now(); ;) {
                const res = await t.api
                  .post(`/users/${user.id}/posts`)
                  .set(headers)
                  .set('Idempotency-Key', key.field)
                  .send({ title, body: 'b' });
                if ((res.status < 500 && res.status !== 409) || Date.now() - started > 60_000) return res;
                await sleep(20);
              }
            }),
          );
        } finally {
          await stopKilling;
          await killer.close();
        }
        expect(statuses(finals)).toEqual({ 201: 20 });
        const rows = await t.query<{ title: string; n: number }[]>(
          'SELECT title, count(*)::int AS n FROM posts GROUP BY title',
        );
        expect(rows).toHaveLength(20);
        for (const row of rows) expect(Number(row.n)).toBe(1);
        for (const [i, res] of finals.entries()) expect(res.body.title).toBe(keys[i].title);
      });
    },
  );
});

describeOn(['postgres', 'mysql'], 'SQLite has one connection: no pool to exhaust')(
  'Idempotency-Key on a small pool (DB_POOL_SIZE=2, no overflow)',
  () => {
    const t = useTestApp({
      DB_POOL_SIZE: '2',
      DB_POOL_MAX_OVERFLOW: '0',
      DB_POOL_TIMEOUT_MS: '1500',
      DB_STATEMENT_TIMEOUT_MS: '4000',
    });

    it("four keyed PATCH /posts/{id} by their authors at once on a pool of two: all 200 (the write's transaction must not wait for a second connection)", async () => {
      const writers = await Promise.all(
        ['A', 'B', 'C', 'D'].map(async (name) => {
          const user = await t.db.user(name);
          return { post: await t.db.post(user.id, `Post of ${name}`), headers: await authAs(t.app, user.id) };
        }),
      );
      const answers = await Promise.all(
        writers.map(({ post, headers }) =>
          t.api
            .patch(`/posts/${post.id}`)
            .set(headers)
            .set('Idempotency-Key', newKey().field)
            .send({ title: 'Renamed' }),
        ),
      );
      expect(statuses(answers)).toEqual({ 200: 4 });
    });

    it('duplicates of a key whose write stalled before COMMIT do not take every connection: each gets 409 at once, and an unrelated read still answers', async () => {
      const user = await t.db.user('Ada');
      const headers = await authAs(t.app, user.id);
      const key = newKey();
      const held = await holder();
      try {
        await insertKeyRow(held, `user:${user.id}`, key.raw);
        // Clients retrying a write that timed out: each duplicate's store finds the key held and gives its connection back.
        const duplicates = Array.from(
          { length: 3 },
          () =>
            t.api
              .post(`/users/${user.id}/posts`)
              .set(headers)
              .set('Idempotency-Key', key.field)
              .send({ title: 'T', body: 'b' })
              .then((res) => res), // supertest sends on then()
        );
        await sleep(300);
        const started = Date.now();
        const read = await t.api.get(`/users/${user.id}`);
        const waited = Date.now() - started;
        await held.end();
        const answers = await Promise.all(duplicates);
        process.stdout.write(
          `stalled key: the read waited ${waited} ms, answered ${read.status}; duplicates ${JSON.stringify(statuses(answers))}\n`,
        );
        // A read that found no connection would answer 503 after DB_POOL_TIMEOUT_MS: the status says it all.
        expect(read.status).toBe(200);
        expect(statuses(answers)).toEqual({ 409: 3 });
      } finally {
        await held.end().catch(() => undefined);
      }
    });

    it('a duplicate of a stalled key answers 409 with Retry-After, once (its handler not re-run per transaction retry), and writes nothing', async () => {
      const user = await t.db.user('Ada');
      const headers = await authAs(t.app, user.id);
      const key = newKey();
      const held = await holder();
      try {
        await insertKeyRow(held, `user:${user.id}`, key.raw);
        let res!: Res;
        const sent = await t.queriesDuring(async () => {
          res = await t.api
            .post(`/users/${user.id}/posts`)
            .set(headers)
            .set('Idempotency-Key', key.field)
            .send({ title: 'T', body: 'b' });
        });
        expect(res.status).toBe(409);
        expect(res.headers['retry-after']).toBeDefined();
        expect(sent.filter((sql) => /INSERT INTO\W+posts\b/i.test(sql))).toHaveLength(1);
      } finally {
        await held.end();
      }
      expect(await t.db.count('posts')).toBe(0);
    });
  },
);

describe('Idempotency-Key: the per-caller cap raced (IDEMPOTENCY_MAX_KEYS_PER_CALLER=3)', () => {
  const t = useTestApp({ IDEMPOTENCY_MAX_KEYS_PER_CALLER: '3' });

  it('twelve new keys at once: at most cap + in-flight stored, every refused one 429 with nothing written; then new keys 429 and stored keys still replay', async () => {
    const user = await t.db.user('Ada');
    const headers = await authAs(t.app, user.id);
    const keys = Array.from({ length: 12 }, newKey);
    const send = (key: string, i: number) =>
      t.api
        .post(`/users/${user.id}/posts`)
        .set(headers)
        .set('Idempotency-Key', key)
        .send({ title: `Capped ${i}`, body: 'b' });
    const answers = await Promise.all(keys.map((key, i) => send(key.field, i)));
    const created = answers.filter((res) => res.status === 201).length;
    expect(created + (statuses(answers)[429] ?? 0)).toBe(12);
    expect(created).toBeGreaterThanOrEqual(3);
    expect(await t.db.count('posts')).toBe(created);
    expect(await keyRows(t)).toHaveLength(created);
    await send(newKey().field, 99).expect(429);
    const stored = answers.findIndex((res) => res.status === 201);
    await send(keys[stored].field, stored).expect(201).expect('Idempotent-Replayed', 'true');
    expect(await t.db.count('posts')).toBe(created);
    process.stdout.write(`cap 3, 12 at once on ${testDialect}: ${created} stored\n`);
  });
});

describe('Idempotency-Key: replays rerun the handler, and its effects outside the database stay (LOGIN_MAX_FAILURES_PER_ACCOUNT=3)', () => {
  const t = useTestApp({ LOGIN_MAX_FAILURES_PER_ACCOUNT: '3' });

  it("replaying a keyed password change does not spend the account's password guesses: its owner can still log in with the new password", async () => {
    const ada = await signUp(t.api, 'Ada');
    const key = newKey();
    const next = 'a brand new passphrase, long enough';
    const change = () =>
      t.api
        .patch(`/users/${ada.id}`)
        .set(bearer(ada))
        .set('Idempotency-Key', key.field)
        .send({ password: next, currentPassword: PASSWORD });
    await change().expect(200);
    // The client did not hear the answer and retried: each replay reruns the check of currentPassword,
    // against the new hash, which fails and is counted as a guess before the write is rolled back.
    for (let i = 0; i < 3; i++) await change().expect(200).expect('Idempotent-Replayed', 'true');
    const login = await t.api.post('/auth/login').send({ email: ada.email, password: next });
    expect(login.status).toBe(200);
  });
});

describeOn(['mysql'], 'innodb_lock_wait_timeout is MariaDB/MySQL-only')(
  'Idempotency-Key: a lock wait timeout on MariaDB while waiting on a stalled key (one connection, no statement timeout)',
  () => {
    const t = useTestApp({ DB_POOL_SIZE: '1', DB_POOL_MAX_OVERFLOW: '0', DB_STATEMENT_TIMEOUT_MS: '0' });

    it('the duplicate gives up after one innodb_lock_wait_timeout with a 409 to retry, not after one per transaction retry, and its handler runs once', async () => {
      // The pool's one connection (mysql2 keeps it): a lock wait of 1 s instead of 50.
      await t.query('SET SESSION innodb_lock_wait_timeout = 1');
      const user = await t.db.user('Ada');
      const headers = await authAs(t.app, user.id);
      const key = newKey();
      const held = await holder();
      let waited: number;
      let res: Res;
      const statements = await t
        .queriesDuring(async () => {
          await insertKeyRow(held, `user:${user.id}`, key.raw);
          const started = Date.now();
          res = await t.api
            .post(`/users/${user.id}/posts`)
            .set(headers)
            .set('Idempotency-Key', key.field)
            .send({ title: 'T', body: 'b' });
          waited = Date.now() - started;
        })
        .finally(() => held.end());
      const inserts = statements.filter((sql) => /INSERT INTO\W+posts\b/i.test(sql)).length;
      process.stdout.write(
        `lock wait: answered ${res!.status} after ${waited!} ms, the handler's INSERT sent ${inserts} times\n`,
      );
      expect(res!.status).toBe(409);
      expect(res!.headers['retry-after']).toBeDefined();
      expect(inserts).toBe(1); // one run of the handler: not re-run per lock wait, however long each took
    });
  },
);

describeOn(['postgres'], 'the partitioned session is held by PostgreSQL here; MariaDB would hold it the same way')(
  'Idempotency-Key: a write whose COMMIT is lost in a network partition (DB_STATEMENT_TIMEOUT_MS=1500)',
  () => {
    const t = useTestApp({ JWT_SECRET, DB_STATEMENT_TIMEOUT_MS: '1500' });

    it("the client's retries on another instance get an answer other than 503 once a few statement timeouts have passed (the dead session's key lock must end)", async () => {
      const user = await t.db.user('Ada');
      const headers = await authAs(t.app, user.id);
      const { proxy, url } = await proxyFor(process.env.DATABASE_URL!);
      const partitioned = await startTestApp({ JWT_SECRET, DATABASE_URL: url, DB_STATEMENT_TIMEOUT_MS: '1500' });
      const key = newKey();
      const body = { title: 'Partitioned', body: 'b' };
      let armed = true;
      const log = partitioned.dataSource.logger;
      const logQuery = log.logQuery.bind(log);
      // The instance sends its store, then loses the database: COMMIT never arrives, the session stays
      // idle in transaction, holding the key's index entry.
      jest.spyOn(log, 'logQuery').mockImplementation((sql, ...rest) => {
        if (armed && /^COMMIT/i.test(sql)) {
          armed = false;
          proxy.mode('blackhole');
        }
        return logQuery(sql, ...rest);
      });
      const lost = partitioned.api
        .post(`/users/${user.id}/posts`)
        .set(headers)
        .set('Idempotency-Key', key.field)
        .send(body)
        .then(
          (res) => res.status,
          () => 'failed',
        );
      const answers: { status: number; ms: number }[] = [];
      try {
        for (let i = 0; i < 100 && armed; i++) await sleep(50);
        expect(armed).toBe(false);
        const started = Date.now();
        // The client heard nothing and retries with its key, on the instance that can reach the database.
        while (Date.now() - started < 6_000) {
          const begun = Date.now();
          const res = await t.api
            .post(`/users/${user.id}/posts`)
            .set(headers)
            .set('Idempotency-Key', key.field)
            .send(body);
          answers.push({ status: res.status, ms: Date.now() - begun });
          if (res.status === 201) break;
          await sleep(Number(res.headers['retry-after'] ?? 1) * 1000);
        }
        const [session] = await t.query<{ state: string }[]>(
          "SELECT state FROM pg_stat_activity WHERE application_name = 'nest-typeorm-users' AND state LIKE 'idle in transaction%'",
        );
        process.stdout.write(
          `lost COMMIT: retries ${JSON.stringify(answers)}; the partitioned session is ${session?.state ?? 'gone'}\n`,
        );
        expect(answers.at(-1)?.status).toBe(201);
      } finally {
        proxy.cut();
        await lost;
        await proxy.close();
        await partitioned.close().catch(() => undefined);
      }
    });
  },
);
