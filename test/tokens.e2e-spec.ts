import { sign } from 'jsonwebtoken';
import type { Response } from 'supertest';
import { setTimeout as sleep } from 'node:timers/promises';
import { TOKEN_AUDIENCE, TOKEN_ISSUER } from '../src/auth/tokens';
import { bearer, signUp } from './setup/accounts';
import { startTestApp, useTestApp } from './setup/test-app';

const PROBLEM = /application\/problem\+json/;
const SECRET = 'test-secret-that-is-long-enough-for-hs256-0123456789';

/** RFC 6750 §3.1: a 401 for a bad token is problem+json with `WWW-Authenticate: Bearer …, error="invalid_token"`. */
function expectInvalidToken(res: Response): void {
  expect([res.status, res.headers['content-type'], res.headers['www-authenticate']]).toEqual([
    401,
    expect.stringMatching(PROBLEM),
    expect.stringMatching(/^Bearer realm="api", error="invalid_token"/),
  ]);
}

describe('Concurrent or retried refreshes keep the session (RFC 9700 §4.14.2 with a grace window; nocturne#326)', () => {
  const t = useTestApp({ JWT_SECRET: SECRET });
  const liveSessions = async (userId: number) =>
    (await t.query('SELECT count(*)::int AS n FROM sessions WHERE user_id = $1 AND revoked_at IS NULL', [userId]))[0].n;

  it('two tabs refreshing the same token at once both get the same successor, and all their tokens work', async () => {
    const ada = await signUp(t.api, 'Ada');
    const results = await Promise.all(
      Array.from({ length: 6 }, () => t.api.post('/auth/refresh').send({ refreshToken: ada.refreshToken })),
    );
    expect(results.map((res) => res.status)).toEqual(Array(6).fill(200));
    expect(new Set(results.map((res) => res.body.refreshToken)).size).toBe(1);
    for (const res of results)
      await t.api
        .get('/auth/me')
        .set(bearer({ token: res.body.accessToken }))
        .expect(200);
    expect(await liveSessions(ada.id)).toBe(1);
    const [{ n }] = await t.query('SELECT count(*)::int AS n FROM refresh_tokens WHERE rotated_at IS NULL');
    expect(n).toBe(1);
    // The successor rotates as usual.
    await t.api.post('/auth/refresh').send({ refreshToken: results[0].body.refreshToken }).expect(200);
  });

  it('a retry after a lost response gets the successor the first attempt was given', async () => {
    const ada = await signUp(t.api, 'Ada');
    const lost = await t.api.post('/auth/refresh').send({ refreshToken: ada.refreshToken }).expect(200);
    const retry = await t.api.post('/auth/refresh').send({ refreshToken: ada.refreshToken }).expect(200);
    expect(retry.body.refreshToken).toBe(lost.body.refreshToken);
    await t.api
      .get('/auth/me')
      .set(bearer({ token: lost.body.accessToken }))
      .expect(200);
    await t.api
      .get('/auth/me')
      .set(bearer({ token: retry.body.accessToken }))
      .expect(200);
    expect(await liveSessions(ada.id)).toBe(1);
  });

  it('theft detection holds inside the window: once the successor was used, the old token revokes the session', async () => {
    const ada = await signUp(t.api, 'Ada');
    const first = await t.api.post('/auth/refresh').send({ refreshToken: ada.refreshToken }).expect(200);
    const second = await t.api.post('/auth/refresh').send({ refreshToken: first.body.refreshToken }).expect(200);
    expectInvalidToken(await t.api.post('/auth/refresh').send({ refreshToken: ada.refreshToken }));
    expectInvalidToken(await t.api.get('/auth/me').set(bearer({ token: second.body.accessToken })));
    expect(await liveSessions(ada.id)).toBe(0);
  });

  it('theft detection holds after the window (REFRESH_GRACE_SECONDS=1): a reuse revokes the session', async () => {
    const short = await startTestApp({ JWT_SECRET: SECRET, REFRESH_GRACE_SECONDS: '1' });
    try {
      const ada = await signUp(short.api, 'Ada');
      const legit = await short.api.post('/auth/refresh').send({ refreshToken: ada.refreshToken }).expect(200);
      await sleep(2_500); // past the window by more than a second: the bound is the window, not this wait
      expectInvalidToken(await short.api.post('/auth/refresh').send({ refreshToken: ada.refreshToken }));
      expectInvalidToken(await short.api.get('/auth/me').set(bearer({ token: legit.body.accessToken })));
      expectInvalidToken(await short.api.post('/auth/refresh').send({ refreshToken: legit.body.refreshToken }));
      expect(await liveSessions(ada.id)).toBe(0);
    } finally {
      await short.close();
    }
  });

  it('REFRESH_GRACE_SECONDS=0: any reuse revokes at once', async () => {
    const strict = await startTestApp({ JWT_SECRET: SECRET, REFRESH_GRACE_SECONDS: '0' });
    try {
      const ada = await signUp(strict.api, 'Ada');
      const legit = await strict.api.post('/auth/refresh').send({ refreshToken: ada.refreshToken }).expect(200);
      expectInvalidToken(await strict.api.post('/auth/refresh').send({ refreshToken: ada.refreshToken }));
      expectInvalidToken(await strict.api.get('/auth/me').set(bearer({ token: legit.body.accessToken })));
    } finally {
      await strict.close();
    }
  });
});

describe('Access tokens carry only what the server understands (RFC 7515 §4.1.11 crit; node-jsonwebtoken#1032)', () => {
  const t = useTestApp({ JWT_SECRET: SECRET });
  const claims = (userId: number, sessionId: string) => ({ sid: sessionId, sub: String(userId) });
  const options = { algorithm: 'HS256', issuer: TOKEN_ISSUER, audience: TOKEN_AUDIENCE, expiresIn: 600 } as const;
  const withHeader = (userId: number, sessionId: string, header: Record<string, unknown>) =>
    sign(claims(userId, sessionId), SECRET, { ...options, header: { alg: 'HS256', ...header } });

  it('the control: a token with exactly the header we issue is accepted', async () => {
    const ada = await signUp(t.api, 'Ada');
    const [{ id: sid }] = await t.query('SELECT id FROM sessions WHERE user_id = $1', [ada.id]);
    const token = withHeader(ada.id, sid, { typ: 'JWT' });
    await t.api.get('/auth/me').set(bearer({ token })).expect(200);
  });

  it.each<[string, Record<string, unknown>]>([
    [
      'an extension in crit the server does not implement',
      { typ: 'JWT', crit: ['urn:example:ext'], 'urn:example:ext': 1 },
    ],
    ['b64 in crit (RFC 7797 unencoded payload)', { typ: 'JWT', crit: ['b64'], b64: true }],
    ['an empty crit list (RFC 7515 §4.1.11 forbids it)', { typ: 'JWT', crit: [] }],
    ['a key id we never issue (kid)', { typ: 'JWT', kid: 'some-other-key' }],
    ['a key URL (jku)', { typ: 'JWT', jku: 'https://attacker.example/keys.json' }],
    ['an embedded key (jwk)', { typ: 'JWT', jwk: { kty: 'oct', k: 'AAAA' } }],
    ['a certificate URL (x5u)', { typ: 'JWT', x5u: 'https://attacker.example/cert.pem' }],
    ['a content type (cty: nested JWT)', { typ: 'JWT', cty: 'JWT' }],
    ['another typ', { typ: 'at+jwt' }],
  ])(
    'refuses a correctly signed token whose header has %s: 401 invalid_token, nothing changes',
    async (_name, header) => {
      const ada = await signUp(t.api, 'Ada');
      const [{ id: sid }] = await t.query('SELECT id FROM sessions WHERE user_id = $1', [ada.id]);
      const token = withHeader(ada.id, sid, header);
      expectInvalidToken(await t.api.get('/auth/me').set(bearer({ token })));
      expectInvalidToken(await t.api.patch(`/users/${ada.id}`).set(bearer({ token })).send({ name: 'Changed' }));
      const [row] = await t.query('SELECT name, version FROM users WHERE id = $1', [ada.id]);
      expect(row).toEqual({ name: 'Ada', version: 1 });
    },
  );
});
