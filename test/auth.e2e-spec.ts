import Redis from 'ioredis';
import { sign } from 'jsonwebtoken';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Response } from 'supertest';
import { TOKEN_AUDIENCE, TOKEN_ISSUER } from '../src/auth/tokens';
import { bearer, login, PASSWORD, signUp, signUpAdmin } from './setup/accounts';
import { startTestApp, type TestApp, useTestApp } from './setup/test-app';
import { testDialect } from './setup/dialect';
import { deleteRedisKeys, type Instance, redisAnswers, roundRobin, stopInstances } from './setup/instances';
import { startMain } from './setup/main-process';

const PROBLEM = /application\/problem\+json/;
const SECRET = 'test-secret-that-is-long-enough-for-hs256-0123456789';

/** RFC 6750 §3.1: a 401 for a bad token is problem+json with `WWW-Authenticate: Bearer …, error="invalid_token"`. */
function expectInvalidToken(res: Response): void {
  expect(res.status).toBe(401);
  expect(res.headers['content-type']).toMatch(PROBLEM);
  expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="api", error="invalid_token"/);
}

describe('identity', () => {
  const t = useTestApp({ JWT_SECRET: SECRET });

  describe('sign-up and login', () => {
    it('signs up with a password stored only as an argon2id hash, never echoed', async () => {
      const res = await t.api
        .post('/users')
        .send({ name: 'Ada', email: 'ada@example.com', password: PASSWORD })
        .expect(201);
      expect(JSON.stringify(res.body)).not.toContain(PASSWORD);
      expect(res.body).not.toHaveProperty('passwordHash');
      expect(res.body).toEqual(expect.objectContaining({ email: 'ada@example.com', role: 'user' }));
      const [row] = await t.query('SELECT password_hash, role FROM users WHERE id = $1', [res.body.id]);
      expect(row.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,p=1,t=2\$/);
      expect(row.role).toBe('user');
    });

    it.each([
      [{ name: 'Eve', email: 'eve@example.com' }, 'password'],
      [{ name: 'Eve', email: 'eve@example.com', password: 'short' }, 'password'],
      [{ name: 'Eve', email: 'eve@example.com', password: 'x'.repeat(129) }, 'password'],
      [{ name: 'Eve', email: 'eve@example.com', password: PASSWORD, role: 'admin' }, 'role'],
    ])('refuses sign-up %j naming %s (NIST SP 800-63B lengths, no self-made admins)', async (body, field) => {
      const res = await t.api.post('/users').send(body).expect(400);
      expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
      expect(JSON.stringify(res.body)).not.toContain('x'.repeat(129));
      expect(await t.db.count('users')).toBe(0);
    });

    it('logs in with a bearer pair; /auth/me shows the caller with email and role', async () => {
      const ada = await signUp(t.api, 'Ada');
      const res = await t.api.post('/auth/login').send({ email: ada.email.toUpperCase(), password: PASSWORD });
      expect(res.status).toBe(200);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.body).toEqual({
        accessToken: expect.stringMatching(/^[\w-]+\.[\w-]+\.[\w-]+$/),
        tokenType: 'Bearer',
        expiresIn: 900,
        refreshToken: expect.stringMatching(/^[\w-]{43}$/),
      });
      const me = await t.api
        .get('/auth/me')
        .set(bearer({ token: res.body.accessToken }))
        .expect(200);
      expect(me.body).toEqual(expect.objectContaining({ id: ada.id, email: ada.email, role: 'user', posts: [] }));
      const [{ n }] = await t.query(
        'SELECT count(*)::int AS n FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE s.user_id = $1',
        [ada.id],
      );
      expect(n).toBe(2); // one per login; stored as hashes only
      const stored = await t.query<{ h: Buffer }[]>('SELECT token_hash AS h FROM refresh_tokens');
      for (const { h } of stored) expect(h.toString('latin1')).not.toContain(res.body.refreshToken);
    });

    it('answers a wrong password and an unknown email alike: 401, same body, same challenge, similar time', async () => {
      const ada = await signUp(t.api, 'Ada');
      const timed = async (email: string) => {
        const started = performance.now();
        const res = await t.api.post('/auth/login').send({ email, password: 'not the password at all' });
        return { res, ms: performance.now() - started };
      };
      const wrong: number[] = [];
      const unknown: number[] = [];
      let last: Response[] = [];
      for (let i = 0; i < 5; i++) {
        const a = await timed(ada.email);
        const b = await timed(`nobody-${i}@example.com`);
        wrong.push(a.ms);
        unknown.push(b.ms);
        last = [a.res, b.res];
      }
      for (const res of last) {
        expect(res.status).toBe(401);
        expect(res.headers['www-authenticate']).toBe('Bearer realm="api"');
      }
      const strip = (res: Response) => ({ ...res.body, instance: undefined });
      expect(strip(last[1])).toEqual(strip(last[0]));
      const median = (values: number[]) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)];
      // Both verify an argon2id hash (a dummy one for unknown emails): neither is a fast path. The bound
      // is loose because the machine is shared; without the dummy hash the ratio is about 0.05.
      const ratio = median(unknown) / median(wrong);
      expect({ wrong: median(wrong), unknown: median(unknown), fastPath: ratio < 0.33 }).toEqual(
        expect.objectContaining({ fastPath: false }),
      );
    });

    it('answers 401 with a bare Bearer challenge when a protected route gets no token (RFC 6750 §3.1)', async () => {
      const res = await t.api.post('/auth/logout').expect(401);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="api"');
      const basic = await t.api.get('/auth/me').set('Authorization', 'Basic YWRhOnB3').expect(401);
      expect(basic.headers['www-authenticate']).toBe('Bearer realm="api"');
    });
  });

  describe('refresh rotation (theft detection)', () => {
    it('rotates: a new pair, and the old refresh token stops working', async () => {
      const ada = await signUp(t.api, 'Ada');
      const first = await t.api.post('/auth/refresh').send({ refreshToken: ada.refreshToken }).expect(200);
      expect(first.body.refreshToken).not.toBe(ada.refreshToken);
      await t.api
        .get('/auth/me')
        .set(bearer({ token: first.body.accessToken }))
        .expect(200);
      const second = await t.api.post('/auth/refresh').send({ refreshToken: first.body.refreshToken }).expect(200);
      expect(second.body.tokenType).toBe('Bearer');
    });

    it('revokes the whole session when a rotated token is presented again after its successor was used', async () => {
      const ada = await signUp(t.api, 'Ada');
      const stolen = ada.refreshToken;
      const first = await t.api.post('/auth/refresh').send({ refreshToken: stolen }).expect(200);
      // Within REFRESH_GRACE_SECONDS a duplicate gets the same successor (test/tokens.e2e-spec.ts);
      // once that successor has been used, the old token is proof of a leak.
      const legit = await t.api.post('/auth/refresh').send({ refreshToken: first.body.refreshToken }).expect(200);

      expectInvalidToken(await t.api.post('/auth/refresh').send({ refreshToken: stolen })); // the thief
      // Every token of that session is dead now, the legitimate holder's newest ones included.
      expectInvalidToken(await t.api.post('/auth/refresh').send({ refreshToken: legit.body.refreshToken }));
      expectInvalidToken(await t.api.get('/auth/me').set(bearer({ token: legit.body.accessToken })));
      const [session] = await t.query('SELECT revoked_at FROM sessions WHERE user_id = $1', [ada.id]);
      expect(session.revoked_at).not.toBeNull();
      // Other sessions of the user are not affected.
      const other = await login(t.api, ada.email, PASSWORD);
      await t.api.get('/auth/me').set(bearer(other)).expect(200);
    });

    it('rotates once for several concurrent refreshes with the same token: one successor for all', async () => {
      const ada = await signUp(t.api, 'Ada');
      const results = await Promise.all(
        Array.from({ length: 8 }, () => t.api.post('/auth/refresh').send({ refreshToken: ada.refreshToken })),
      );
      expect(results.filter((r) => r.status === 200)).toHaveLength(8);
      expect(new Set(results.map((r) => r.body.refreshToken)).size).toBe(1);
      const [{ n }] = await t.query('SELECT count(*)::int AS n FROM refresh_tokens WHERE rotated_at IS NULL');
      expect(n).toBe(1);
    });

    it('refuses unknown, malformed and forged refresh tokens without touching any session', async () => {
      const ada = await signUp(t.api, 'Ada');
      // One character changed (the first: base64url's last character can hold unused bits).
      const forged = `${ada.refreshToken.startsWith('A') ? 'B' : 'A'}${ada.refreshToken.slice(1)}`;
      for (const refreshToken of ['x'.repeat(43), 'short', forged]) {
        expectInvalidToken(await t.api.post('/auth/refresh').send({ refreshToken }));
      }
      await t.api.post('/auth/refresh').send({ refreshToken: 42 }).expect(400);
      await t.api.post('/auth/refresh').send({ refreshToken: ada.refreshToken }).expect(200);
    });
  });

  describe('logout and password change take effect on the next request', () => {
    it('logout: 204, then that session’s access and refresh tokens are refused at once', async () => {
      const ada = await signUp(t.api, 'Ada');
      const phone = await login(t.api, ada.email, PASSWORD);
      await t.api.post('/auth/logout').set(bearer(ada)).expect(204);
      expectInvalidToken(await t.api.get('/auth/me').set(bearer(ada)));
      expectInvalidToken(await t.api.patch(`/users/${ada.id}`).set(bearer(ada)).send({ name: 'Gone' }));
      expectInvalidToken(await t.api.post('/auth/refresh').send({ refreshToken: ada.refreshToken }));
      await t.api.get('/auth/me').set(bearer(phone)).expect(200); // another session of the same user
      const [row] = await t.query('SELECT name FROM users WHERE id = $1', [ada.id]);
      expect(row.name).toBe('Ada');
    });

    it('a password change needs the current password and ends every other session at once', async () => {
      const ada = await signUp(t.api, 'Ada');
      const laptop = await login(t.api, ada.email, PASSWORD);
      const newPassword = 'a completely different passphrase';

      const missing = await t.api.patch(`/users/${ada.id}`).set(bearer(ada)).send({ password: newPassword });
      expect(missing.status).toBe(400);
      expect(missing.body.errors[0].field).toBe('currentPassword');
      await t.api
        .patch(`/users/${ada.id}`)
        .set(bearer(ada))
        .send({ password: newPassword, currentPassword: 'wrong wrong wrong' })
        .expect(403);
      await t.api.get('/auth/me').set(bearer(laptop)).expect(200); // nothing changed yet

      await t.api
        .patch(`/users/${ada.id}`)
        .set(bearer(ada))
        .send({ password: newPassword, currentPassword: PASSWORD })
        .expect(200);
      expectInvalidToken(await t.api.get('/auth/me').set(bearer(laptop)));
      expectInvalidToken(await t.api.post('/auth/refresh').send({ refreshToken: laptop.refreshToken }));
      await t.api.get('/auth/me').set(bearer(ada)).expect(200); // the session that changed it stays
      await t.api.post('/auth/login').send({ email: ada.email, password: PASSWORD }).expect(401);
      await login(t.api, ada.email, newPassword);
    });

    it('an admin sets a password without the current one and ends all of that user’s sessions', async () => {
      const root = await signUpAdmin(t.api, t.dataSource);
      const ada = await signUp(t.api, 'Ada');
      await t.api
        .patch(`/users/${ada.id}`)
        .set(bearer(root))
        .send({ password: 'reset by the admin, long enough' })
        .expect(200);
      expectInvalidToken(await t.api.get('/auth/me').set(bearer(ada)));
      await login(t.api, ada.email, 'reset by the admin, long enough');
      await t.api.get('/auth/me').set(bearer(root)).expect(200);
    });

    it('costs one primary-key lookup per authenticated request, and nothing for anonymous ones', async () => {
      const ada = await signUp(t.api, 'Ada');
      const anonymous = await t.queriesDuring(() => t.api.get(`/users/${ada.id}`).expect(200));
      const signedIn = await t.queriesDuring(() => t.api.get(`/users/${ada.id}`).set(bearer(ada)).expect(200));
      expect(signedIn).toHaveLength(anonymous.length + 1);
      const [lookup] = signedIn.filter((sql) => !anonymous.includes(sql));
      expect(lookup).toMatch(/FROM sessions s JOIN users u ON u\.id = s\.user_id WHERE s\.id = (\$1|\?)/);
      if (testDialect === 'postgres') {
        const plan = (
          await t.query<{ 'QUERY PLAN': string }[]>(`EXPLAIN ${lookup}`, ['00000000-0000-4000-8000-000000000000'])
        )
          .map((row) => row['QUERY PLAN'])
          .join('\n');
        expect(plan).toMatch(/Index Scan using "PK_\w+" on sessions s\s.*\n\s+Index Cond: \(id = /);
        expect(plan).toMatch(/Index Scan using "PK_\w+" on users u\s/);
      } else if (testDialect === 'sqlite') {
        // SQLite's plan: sessions by its primary key's index, users by its rowid (INTEGER PRIMARY KEY).
        const plan = await t.dataSource.query<{ detail: string }[]>(`EXPLAIN QUERY PLAN ${lookup}`, ['x']); // `?` already
        expect(plan.map(({ detail }) => detail)).toEqual([
          expect.stringMatching(/^SEARCH s USING INDEX sqlite_autoindex_sessions_1 \(id=\?\)/),
          expect.stringMatching(/^SEARCH u USING INTEGER PRIMARY KEY \(rowid=\?\)/),
        ]);
      } else {
        // MySQL's plan: both tables read by primary key (`const`: one row each).
        const [{ id }] = await t.query<{ id: string }[]>('SELECT id FROM sessions WHERE user_id = $1', [ada.id]);
        const plan = await t.query<{ table: string; key: string | null }[]>(`EXPLAIN ${lookup}`, [id]);
        expect(plan.map(({ table, key }) => [table, key])).toEqual([
          ['s', 'PRIMARY'],
          ['u', 'PRIMARY'],
        ]);
      }
    });

    it('a deleted user’s token stops working', async () => {
      const ada = await signUp(t.api, 'Ada');
      await t.api.delete(`/users/${ada.id}`).set(bearer(ada)).expect(200);
      expectInvalidToken(await t.api.get('/auth/me').set(bearer(ada)));
      expect(await t.query('SELECT 1 FROM sessions WHERE user_id = $1', [ada.id])).toEqual([]);
    });
  });

  describe('access tokens are checked strictly (tampering)', () => {
    const claims = (sub: number, sid: string) => ({ sub: String(sub), sid });
    const options = { issuer: TOKEN_ISSUER, audience: TOKEN_AUDIENCE, expiresIn: 60 } as const;

    it.each([
      ['signed with another secret', (s: number, sid: string) => sign(claims(s, sid), 'x'.repeat(40), options)],
      [
        'expired',
        (s: number, sid: string) =>
          sign({ ...claims(s, sid), exp: 1_000 }, SECRET, { issuer: TOKEN_ISSUER, audience: TOKEN_AUDIENCE }),
      ],
      [
        'without exp',
        (s: number, sid: string) => sign(claims(s, sid), SECRET, { issuer: TOKEN_ISSUER, audience: TOKEN_AUDIENCE }),
      ],
      [
        'for another audience',
        (s: number, sid: string) => sign(claims(s, sid), SECRET, { ...options, audience: 'other' }),
      ],
      [
        'from another issuer',
        (s: number, sid: string) => sign(claims(s, sid), SECRET, { ...options, issuer: 'other' }),
      ],
      [
        'with another HMAC algorithm',
        (s: number, sid: string) => sign(claims(s, sid), SECRET, { ...options, algorithm: 'HS512' }),
      ],
      [
        'with alg none',
        (s: number, sid: string) =>
          `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(
            JSON.stringify({ ...claims(s, sid), iss: TOKEN_ISSUER, aud: TOKEN_AUDIENCE, exp: 9_999_999_999 }),
          ).toString('base64url')}.`,
      ],
      ['naming another user', (s: number, sid: string) => sign(claims(s + 1, sid), SECRET, options)],
      [
        'naming another session',
        (s: number) => sign(claims(s, '00000000-0000-4000-8000-000000000000'), SECRET, options),
      ],
      ['naming a session that is not a uuid', (s: number) => sign(claims(s, "1' OR '1'='1"), SECRET, options)],
      [
        'with its payload edited',
        (s: number, _sid: string, real: string) => {
          const [header, payload, signature] = real.split('.');
          const edited = { ...JSON.parse(Buffer.from(payload, 'base64url').toString()), sub: String(s) };
          return `${header}.${Buffer.from(JSON.stringify(edited)).toString('base64url')}.${signature}`;
        },
      ],
      ['malformed', () => 'not.a.jwt'],
      ['with characters no token has', () => 'abc def'],
    ])('refuses a token %s: 401 invalid_token, nothing changes', async (_case, forge) => {
      const ada = await signUp(t.api, 'Ada');
      const other = await signUp(t.api, 'Bob');
      const [{ id: sid }] = await t.query('SELECT id FROM sessions WHERE user_id = $1', [other.id]);
      const token = forge(other.id, sid, ada.token);
      const res = await t.api
        .patch(`/users/${other.id}`)
        .set('Authorization', `Bearer ${token}`)
        .send({ name: 'Pwned' });
      expectInvalidToken(res);
      const [row] = await t.query('SELECT name FROM users WHERE id = $1', [other.id]);
      expect(row.name).toBe('Bob');
      // A public read with the same token is refused too, rather than silently served anonymously.
      expectInvalidToken(await t.api.get(`/users/${other.id}`).set('Authorization', `Bearer ${token}`));
    });
  });

  describe('private fields', () => {
    it('shows email and role only to the user themself and to admins, and says the answer varies', async () => {
      const ada = await signUp(t.api, 'Ada');
      const bob = await signUp(t.api, 'Bob');
      const root = await signUpAdmin(t.api, t.dataSource);
      const emailSeenBy = async (headers: Record<string, string>) => {
        const res = await t.api.get(`/users/${ada.id}`).set(headers).expect(200);
        expect(res.headers.vary).toMatch(/Authorization/);
        return res.body.email as string | undefined;
      };
      expect(await emailSeenBy({})).toBeUndefined();
      expect(await emailSeenBy(bearer(bob))).toBeUndefined();
      expect(await emailSeenBy(bearer(ada))).toBe(ada.email);
      expect(await emailSeenBy(bearer(root))).toBe(ada.email);

      const list = await t.api.get('/users?include=').set(bearer(ada)).expect(200);
      const byId = new Map(list.body.map((u: { id: number }) => [u.id, u]));
      expect(byId.get(ada.id)).toEqual(expect.objectContaining({ email: ada.email, role: 'user' }));
      expect(byId.get(bob.id)).not.toHaveProperty('email');
      expect(byId.get(root.id)).not.toHaveProperty('role');
      const anonymous = await t.api.get('/users').expect(200);
      expect(JSON.stringify(anonymous.body)).not.toMatch(/@example\.com|"role"/);
    });
  });

  describe('re-authentication for identity changes (a stolen access token is not the account)', () => {
    const newEmail = () => `new-${Math.random().toString(36).slice(2)}@example.com`;
    const emailOf = async (id: number) =>
      (await t.query<{ email: string }[]>('SELECT email FROM users WHERE id = $1', [id]))[0].email;

    it('a new email without currentPassword is 400 naming it (RFC 9110 §15.5.1), and nothing changes', async () => {
      const ada = await signUp(t.api, 'Ada');
      const res = await t.api.patch(`/users/${ada.id}`).set(bearer(ada)).send({ email: newEmail(), name: 'Eve' });
      expect(res.status).toBe(400);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.body.errors).toEqual([
        { field: 'currentPassword', messages: ['currentPassword is needed to change email'] },
      ]);
      expect(await emailOf(ada.id)).toBe(ada.email);
      const [row] = await t.query('SELECT name FROM users WHERE id = $1', [ada.id]);
      expect(row.name).toBe('Ada');
    });

    it('a wrong currentPassword is 403 (RFC 9110 §15.5.4), not 401: the bearer token itself is valid (RFC 6750 §3.1)', async () => {
      const ada = await signUp(t.api, 'Ada');
      const res = await t.api
        .patch(`/users/${ada.id}`)
        .set(bearer(ada))
        .send({ email: newEmail(), currentPassword: 'wrong wrong wrong' });
      expect(res.status).toBe(403);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.headers['www-authenticate']).toBeUndefined();
      expect(res.body.detail).toMatch(/currentPassword/);
      expect(await emailOf(ada.id)).toBe(ada.email);
      await t.api.get('/auth/me').set(bearer(ada)).expect(200); // the session is not ended by a wrong guess
    });

    it('the right currentPassword changes the email; the account is then reset only through the new address', async () => {
      const ada = await signUp(t.api, 'Ada');
      const email = newEmail();
      await t.api.patch(`/users/${ada.id}`).set(bearer(ada)).send({ email, currentPassword: PASSWORD }).expect(200);
      expect(await emailOf(ada.id)).toBe(email);
    });

    it('re-authentication comes before the uniqueness check: a taken address is not confirmed without the password', async () => {
      const bob = await signUp(t.api, 'Bob');
      const ada = await signUp(t.api, 'Ada');
      const res = await t.api.patch(`/users/${ada.id}`).set(bearer(ada)).send({ email: bob.email });
      expect(res.status).toBe(400);
      expect(res.body.errors.map((error: { field: string }) => error.field)).toEqual(['currentPassword']);
    });

    it('the address unchanged, or in another letter case only, needs no currentPassword (a form sending every field)', async () => {
      const ada = await signUp(t.api, 'Ada');
      await t.api.patch(`/users/${ada.id}`).set(bearer(ada)).send({ name: 'Ada K', email: ada.email }).expect(200);
      await t.api.patch(`/users/${ada.id}`).set(bearer(ada)).send({ email: ada.email.toUpperCase() }).expect(200);
      expect(await emailOf(ada.id)).toBe(ada.email.toUpperCase());
    });

    it('a letter-case change outside ASCII needs currentPassword: the dialects fold such letters differently, so it may name another account (RFC 9110 §15.5.1)', async () => {
      const tag = randomUUID().slice(0, 8);
      const ada = await signUp(t.api, 'Ada', { email: `ΩΜΕΓΑΣ-${tag}@example.com` });
      const res = await t.api
        .patch(`/users/${ada.id}`)
        .set(bearer(ada))
        .send({ email: `ωμεγας-${tag}@example.com` });
      expect(res.status).toBe(400);
      expect(res.body.errors.map((error: { field: string }) => error.field)).toEqual(['currentPassword']);
      expect(await emailOf(ada.id)).toBe(ada.email);
    });

    it('an admin re-authenticates for their own email and password too; another user’s needs no password of theirs', async () => {
      const root = await signUpAdmin(t.api, t.dataSource);
      const ada = await signUp(t.api, 'Ada');
      for (const change of [{ email: newEmail() }, { password: 'a new admin passphrase, long enough' }]) {
        const res = await t.api.patch(`/users/${root.id}`).set(bearer(root)).send(change).expect(400);
        expect(res.body.errors.map((error: { field: string }) => error.field)).toEqual(['currentPassword']);
      }
      const email = newEmail();
      await t.api.patch(`/users/${ada.id}`).set(bearer(root)).send({ email }).expect(200);
      expect(await emailOf(ada.id)).toBe(email);
    });
  });

  describe('routes that read no body refuse one that is not a JSON object (400 problem+json)', () => {
    const BODIES = ['[]', '"x"', '1', 'null', '[{"keepCurrent":true}]'];

    it('POST /auth/verify-email/resend, POST /auth/logout, DELETE /auth/sessions/{id}, DELETE /users/{id}', async () => {
      const ada = await signUp(t.api, 'Ada');
      const [session] = (await t.api.get('/auth/sessions').set(bearer(ada)).expect(200)).body as { id: string }[];
      const routes: [method: 'post' | 'delete', path: string][] = [
        ['post', '/auth/verify-email/resend'],
        ['post', '/auth/logout'],
        ['delete', `/auth/sessions/${session.id}`],
        ['delete', `/users/${ada.id}`],
      ];
      for (const [method, path] of routes) {
        for (const body of BODIES) {
          const res = await t.api[method](path).set(bearer(ada)).set('Content-Type', 'application/json').send(body);
          expect({ path, body, status: res.status, type: res.headers['content-type'] }).toEqual({
            path,
            body,
            status: 400,
            type: expect.stringMatching(PROBLEM),
          });
          expect(res.body.detail).toMatch(/must be a JSON object/);
        }
        const fields = await t.api[method](path).set(bearer(ada)).send({ surprise: 1 }).expect(400);
        expect(fields.body.errors).toEqual([{ field: 'surprise', messages: ['property surprise should not exist'] }]);
      }
      // Nothing happened: the session and the user are still there; `{}` and no body still work.
      await t.api.get('/auth/me').set(bearer(ada)).expect(200);
      await t.api.post('/auth/verify-email/resend').set(bearer(ada)).send({}).expect(202);
      await t.api.delete(`/users/${ada.id}`).set(bearer(ada)).expect(200);
    });
  });

  describe('roles', () => {
    it('only admins change roles; the last admin cannot demote or delete themself', async () => {
      const root = await signUpAdmin(t.api, t.dataSource);
      const ada = await signUp(t.api, 'Ada');
      await t.api.patch(`/users/${ada.id}`).set(bearer(ada)).send({ role: 'admin' }).expect(403);
      const alone = await t.api.patch(`/users/${root.id}`).set(bearer(root)).send({ role: 'user' }).expect(409);
      expect(alone.headers['content-type']).toMatch(PROBLEM);
      await t.api.delete(`/users/${root.id}`).set(bearer(root)).expect(409);

      await t.api.patch(`/users/${ada.id}`).set(bearer(root)).send({ role: 'admin' }).expect(200);
      // Roles are read per request: Ada's existing token is an admin's now.
      await t.api.patch(`/users/${root.id}`).set(bearer(ada)).send({ name: 'Renamed by Ada' }).expect(200);
      await t.api.patch(`/users/${root.id}`).set(bearer(root)).send({ role: 'user' }).expect(200);
      await t.api.patch(`/users/${ada.id}`).set(bearer(ada)).send({ role: 'user' }).expect(409);
      const roles = await t.query('SELECT id, role FROM users ORDER BY id');
      expect(roles).toEqual([
        { id: root.id, role: 'user' },
        { id: ada.id, role: 'admin' },
      ]);
    });

    it('of two admins demoting themselves at once, exactly one succeeds', async () => {
      const a = await signUpAdmin(t.api, t.dataSource, 'A');
      const b = await signUpAdmin(t.api, t.dataSource, 'B');
      const results = await Promise.all(
        [a, b].map((admin) => t.api.patch(`/users/${admin.id}`).set(bearer(admin)).send({ role: 'user' })),
      );
      expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
      const [{ n }] = await t.query(`SELECT count(*)::int AS n FROM users WHERE role = 'admin'`);
      expect(n).toBe(1);
    });
  });
});

describe('failed-login limits', () => {
  it('per account: 429 + Retry-After after the limit, even with the right password, until the window ends', async () => {
    // A window long enough for four argon2 logins on a loaded machine (5 s was not): the test waits it out once.
    const t = await startTestApp({ LOGIN_MAX_FAILURES_PER_ACCOUNT: '3', LOGIN_FAILURE_WINDOW_MS: '20000' });
    try {
      const ada = await signUp(t.api, 'Ada');
      const bob = await signUp(t.api, 'Bob');
      for (let i = 0; i < 3; i++) {
        await t.api.post('/auth/login').send({ email: ada.email, password: 'guess number one!' }).expect(401);
      }
      const blocked = await t.api.post('/auth/login').send({ email: ada.email, password: PASSWORD }).expect(429);
      expect(blocked.headers['content-type']).toMatch(PROBLEM);
      expect(Number(blocked.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      await t.api.post('/auth/login').send({ email: ada.email.toUpperCase(), password: PASSWORD }).expect(429);
      await login(t.api, bob.email, PASSWORD); // other accounts are not affected
      await new Promise((resolve) => setTimeout(resolve, Number(blocked.headers['retry-after']) * 1_000 + 100));
      await login(t.api, ada.email, PASSWORD); // not a permanent lockout
    } finally {
      await t.close();
    }
  });

  it('per account under parallel guesses: no more passwords are checked than the limit allows', async () => {
    const t = await startTestApp({ LOGIN_MAX_FAILURES_PER_ACCOUNT: '3' });
    try {
      const ada = await signUp(t.api, 'Ada');
      const guesses = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          t.api.post('/auth/login').send({ email: ada.email, password: `parallel guess ${i}!` }),
        ),
      );
      const statuses = guesses.map((res) => res.status).sort();
      expect(statuses.filter((status) => status === 401)).toHaveLength(3);
      expect(statuses.filter((status) => status === 429)).toHaveLength(27);
    } finally {
      await t.close();
    }
  });

  it('per account, however the email is spelled: case, NFC and the database lower() find one counter', async () => {
    const t = await startTestApp({ LOGIN_MAX_FAILURES_PER_ACCOUNT: '2' });
    try {
      const kim = await signUp(t.api, 'Kim', { email: `kim-${Date.now()}@example.com` });
      for (let i = 0; i < 2; i++) {
        await t.api.post('/auth/login').send({ email: kim.email, password: 'guess number one!' }).expect(401);
      }
      for (const spelling of [kim.email.toUpperCase(), kim.email.replace('i', '\u0130')]) {
        const res = await t.api.post('/auth/login').send({ email: spelling, password: PASSWORD });
        // 429 when the spelling finds the account; 401 when the database does not fold it (then no
        // guess through it can reach the account either). Never a fresh set of guesses.
        expect([401, 429]).toContain(res.status);
      }
    } finally {
      await t.close();
    }
  });

  it('a decomposed email logs in to the account signed up with the composed one (NFC, as sign-up stores it)', async () => {
    const t = await startTestApp();
    try {
      const composed = `jos\u00e9-${Date.now()}@example.com`;
      await signUp(t.api, 'José', { email: composed });
      await login(t.api, composed.normalize('NFD'), PASSWORD);
    } finally {
      await t.close();
    }
  });

  it('wrong currentPassword guesses count against the account: 429 after the limit (a stolen token is no password oracle)', async () => {
    const t = await startTestApp({ LOGIN_MAX_FAILURES_PER_ACCOUNT: '3' });
    try {
      const ada = await signUp(t.api, 'Ada');
      const change = (currentPassword: string) =>
        t.api.patch(`/users/${ada.id}`).set(bearer(ada)).send({ password: 'a brand new password', currentPassword });
      for (let i = 0; i < 3; i++) await change(`wrong current ${i}!`).expect(403);
      const blocked = await change(PASSWORD).expect(429);
      expect(Number(blocked.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      await t.api.post('/auth/login').send({ email: ada.email, password: PASSWORD }).expect(429);
    } finally {
      await t.close();
    }
  });

  it('per client: 429 after too many failures across accounts, unknown ones included', async () => {
    const t = await startTestApp({ LOGIN_MAX_FAILURES_PER_CLIENT: '4' });
    try {
      const ada = await signUp(t.api, 'Ada');
      for (let i = 0; i < 4; i++) {
        await t.api
          .post('/auth/login')
          .send({ email: `nobody-${i}@example.com`, password: PASSWORD })
          .expect(401);
      }
      const res = await t.api.post('/auth/login').send({ email: ada.email, password: PASSWORD }).expect(429);
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    } finally {
      await t.close();
    }
  });
});

describe('admin bootstrap', () => {
  const email = 'root@example.com';

  it('ADMIN_EMAIL + ADMIN_PASSWORD create the admin once; later starts change nothing but the role', async () => {
    const first = await startTestApp({ ADMIN_EMAIL: email, ADMIN_PASSWORD: 'the first admin password' });
    try {
      await first.reset();
      await first.close();
      const again = await startTestApp({ ADMIN_EMAIL: email, ADMIN_PASSWORD: 'the first admin password' });
      await again.close();
      const t = await startTestApp({ ADMIN_EMAIL: email, ADMIN_PASSWORD: 'the first admin password' });
      const rows = await t.query('SELECT id, role, password_hash FROM users');
      expect(rows).toEqual([expect.objectContaining({ role: 'admin' })]);
      await t.close();

      const changed = await startTestApp({ ADMIN_EMAIL: email, ADMIN_PASSWORD: 'another password entirely' });
      try {
        const [row] = await changed.query('SELECT id, role, password_hash FROM users');
        expect(row).toEqual(rows[0]); // same account, same hash: the password is only set on creation
        await login(changed.api, email, 'the first admin password');
        await changed.api.post('/auth/login').send({ email, password: 'another password entirely' }).expect(401);
      } finally {
        await changed.close();
      }
    } finally {
      await first.close().catch(() => undefined);
    }
  });

  it('does not promote an account someone else signed up with the admin email: ADMIN_PASSWORD must be its password', async () => {
    const t = await startTestApp();
    let started: TestApp | undefined;
    try {
      await t.reset();
      const mallory = await signUp(t.api, 'Mallory', { email });
      started = await startTestApp({ ADMIN_EMAIL: email, ADMIN_PASSWORD: 'the operator admin password' });
      const [row] = await started.query('SELECT role FROM users WHERE id = $1', [mallory.id]);
      expect(row.role).toBe('user');
      await started.api.post('/auth/login').send({ email, password: 'the operator admin password' }).expect(401);
      await started.close();
      // The owner of the account proves it with its password: then it is promoted, the password kept.
      started = await startTestApp({ ADMIN_EMAIL: email, ADMIN_PASSWORD: PASSWORD });
      const [promoted] = await started.query('SELECT role FROM users WHERE id = $1', [mallory.id]);
      expect(promoted.role).toBe('admin');
    } finally {
      await started?.close().catch(() => undefined);
      await t.close();
    }
  });

  it('npm run user:admin promotes an existing user, keeping their password, and is idempotent', async () => {
    const t = await startTestApp();
    try {
      await t.reset();
      const ada = await signUp(t.api, 'Ada');
      const run = () =>
        spawnSync(
          process.execPath,
          [
            '-r',
            'ts-node/register/transpile-only',
            join(__dirname, '..', 'src', 'auth', 'user-admin.command.ts'),
            '--email',
            ada.email.toUpperCase(),
          ],
          {
            env: { ...process.env, NODE_OPTIONS: '', ADMIN_PASSWORD: 'ignored for an existing account' },
            encoding: 'utf8',
          },
        );
      const promoted = run();
      expect(promoted.stdout).toContain('promoted');
      expect(run().stdout).toContain('already an admin');
      const [row] = await t.query('SELECT role FROM users WHERE id = $1', [ada.id]);
      expect(row.role).toBe('admin');
      await login(t.api, ada.email, PASSWORD);
    } finally {
      await t.close();
    }
  }, 120_000); // two ts-node processes, one after the other: slow on a loaded machine, never the thing measured
});

describe('failed-login limits shared by two instances (REDIS_URL)', () => {
  const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const JWT_SECRET = 'one-jwt-secret-shared-by-every-instance-0123456789';
  const keyPrefix = `nest-typeorm-users-e2e-${randomUUID()}:`;
  useTestApp({ JWT_SECRET }); // empties the tables for this block
  const env = {
    JWT_SECRET,
    TRUST_PROXY_HOPS: '1', // X-Forwarded-For names the client: each request a new one (roundRobin)
    LOGIN_MAX_FAILURES_PER_ACCOUNT: '4',
    LOG_LEVEL: 'warn',
    REDIS_URL,
    REDIS_KEY_PREFIX: keyPrefix,
  };
  const instances: Instance[] = [];

  beforeAll(async () => {
    const answers = await redisAnswers(REDIS_URL);
    if (answers !== true) throw new Error(`these tests need Redis at ${REDIS_URL} (TEST_REDIS_URL): ${answers}`);
    // One at a time, each with a generous bound: two compiling at once on a loaded machine took longer
    // than startInstances' default allows.
    for (let i = 0; i < 2; i++) instances.push(await startMain(env, { readyWithinMs: 240_000 }));
  }, 600_000);

  afterAll(async () => {
    await stopInstances(instances);
    await deleteRedisKeys(REDIS_URL, keyPrefix);
  });

  it('4 wrong passwords spread over both instances block the account on both (429), the right one included', async () => {
    const lb = roundRobin(instances);
    const email = `shared-${randomUUID()}@example.com`;
    const json = (body: unknown) => ({ method: 'POST', body: JSON.stringify(body) });
    expect((await lb.request('/users', json({ name: 'Shared', email, password: PASSWORD }))).status).toBe(201);
    const guesses = [];
    for (let i = 0; i < 4; i++)
      guesses.push(await lb.request('/auth/login', json({ email, password: `guess ${i} wrong!` })));
    expect(guesses.map((res) => res.status)).toEqual([401, 401, 401, 401]);
    expect(new Set(guesses.map((res) => res.instance)).size).toBe(2); // each instance saw two of them
    for (let i = 0; i < 2; i++) {
      const blocked = await lb.request('/auth/login', json({ email, password: PASSWORD }));
      expect({ status: blocked.status, type: blocked.headers.get('content-type') }).toEqual({
        status: 429,
        type: expect.stringMatching(PROBLEM),
      });
      expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    const client = new Redis(REDIS_URL);
    const keys = await client.keys(`${keyPrefix}throttle:login-account*`).finally(() => client.disconnect());
    expect(keys.length).toBeGreaterThan(0); // the counters are in Redis, under the configured prefix
  });
});
