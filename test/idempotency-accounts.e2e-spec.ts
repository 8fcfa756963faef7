import { randomUUID } from 'node:crypto';
import type { Response } from 'supertest';
import { PasswordReset } from '../src/auth/password-reset';
import { bearer, login, PASSWORD, signUp, type Account } from './setup/accounts';
import { openApiDocument } from './setup/openapi-document';
import { useTestApp } from './setup/test-app';

const DRAFT = 'draft-ietf-httpapi-idempotency-key-header-07';
const PROBLEM = /application\/problem\+json/;
const NEW_PASSWORD = 'a brand new passphrase, long enough';
/** A fresh key as a client sends it: an RFC 8941 sf-string. */
const newKey = () => `"${randomUUID()}"`;

/** The second response is the first one replayed: same status and bytes, marked Idempotent-Replayed (§2.6). */
function expectReplay(first: Response, second: Response): void {
  expect(second.status).toBe(first.status);
  expect(second.text).toBe(first.text);
  expect(first.headers['idempotent-replayed']).toBeUndefined();
  expect(second.headers['idempotent-replayed']).toBe('true');
}

/** A 422 problem: the key was used for another request (§2.7). */
function expectReused(res: Response): void {
  expect(res.status).toBe(422);
  expect(res.headers['content-type']).toMatch(PROBLEM);
  expect(res.body.type).toBe('/problems/idempotency-key-reused');
  expect(res.body.errors).toEqual([{ field: 'Idempotency-Key', messages: [res.body.detail] }]); // RFC 9457 §3
}

describe(`Idempotency-Key on the account lifecycle routes (${DRAFT})`, () => {
  const t = useTestApp({ PASSWORD_RESET_MAX_PER_CLIENT: '1000', PASSWORD_RESET_MAX_PER_ADDRESS: '1000' });

  /** The mails queued to `email`, oldest first. */
  const mails = (email: string) =>
    t.query<{ body: string }[]>('SELECT body FROM mail_outbox WHERE recipient = $1 ORDER BY id', [email]);
  /** The token of the newest mail to `email`. */
  const newestToken = async (email: string) => {
    const queued = await mails(email);
    const match = /#token=([\w-]{43})/.exec(queued.at(-1)?.body ?? '');
    if (!match) throw new Error(`no token mailed to ${email}`);
    return match[1];
  };
  /** The user's sessions that have not ended. */
  const liveSessions = async (account: Account) =>
    (await t.query<unknown[]>('SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL', [account.id]))
      .length;

  describe('§2.6 the same key twice: one effect, the stored response again; §2.7 another body: 422', () => {
    it('POST /auth/verify-email/resend: one mail (committed with the key), the same 202 replayed', async () => {
      const ada = await signUp(t.api, 'Ada');
      const before = (await mails(ada.email)).length;
      const key = newKey();
      const send = () => t.api.post('/auth/verify-email/resend').set(bearer(ada)).set('Idempotency-Key', key);
      const first = await send().expect(202);
      const second = await send().expect(202);
      expectReplay(first, second);
      expect((await mails(ada.email)).length).toBe(before + 1);
      // Without the key, a resend mails again: the key is what made the retry safe.
      await t.api.post('/auth/verify-email/resend').set(bearer(ada)).expect(202);
      expect((await mails(ada.email)).length).toBe(before + 2);
    });

    it('POST /auth/verify-email: the retry replays 204 instead of 400 "token used"; another token with the key is 422', async () => {
      const ada = await signUp(t.api, 'Ada');
      const token = await newestToken(ada.email);
      const key = newKey();
      const first = await t.api.post('/auth/verify-email').set('Idempotency-Key', key).send({ token }).expect(204);
      const second = await t.api.post('/auth/verify-email').set('Idempotency-Key', key).send({ token }).expect(204);
      expectReplay(first, second);
      await t.api.post('/auth/verify-email').send({ token }).expect(400); // used: only the key replays
      const other = await t.api
        .post('/auth/verify-email')
        .set('Idempotency-Key', key)
        .send({ token: 'A'.repeat(43) });
      expectReused(other);
    });

    it('POST /auth/password-reset/confirm: one password change and one revocation; the retry replays 204; another body is 422', async () => {
      const ada = await signUp(t.api, 'Ada');
      await t.api.post('/auth/password-reset').send({ email: ada.email }).expect(202);
      await t.app.get(PasswordReset).settled();
      const token = await newestToken(ada.email);
      const key = newKey();
      const send = (password: string) =>
        t.api.post('/auth/password-reset/confirm').set('Idempotency-Key', key).send({ token, password });
      const first = await send(NEW_PASSWORD).expect(204);
      const fresh = await login(t.api, ada.email, NEW_PASSWORD); // a session opened after the reset…
      const second = await send(NEW_PASSWORD).expect(204);
      expectReplay(first, second);
      await t.api.get('/auth/me').set(bearer(fresh)).expect(200); // …is not ended by the retry
      expectReused(await send('yet another passphrase, long enough'));
      await login(t.api, ada.email, NEW_PASSWORD);
    });

    it('DELETE /auth/sessions/{id}: one revocation; the retry replays 204 instead of 404; another session with the key is 422', async () => {
      const ada = await signUp(t.api, 'Ada');
      const phone = await login(t.api, ada.email, PASSWORD);
      const laptop = await login(t.api, ada.email, PASSWORD);
      const sessions = await t.api.get('/auth/sessions').set(bearer(ada)).expect(200);
      const ids = (sessions.body as { id: string; current: boolean }[]).filter((s) => !s.current).map((s) => s.id);
      expect(ids).toHaveLength(2);
      const key = newKey();
      const end = (id: string) => t.api.delete(`/auth/sessions/${id}`).set(bearer(ada)).set('Idempotency-Key', key);
      const first = await end(ids[0]).expect(204);
      const second = await end(ids[0]).expect(204);
      expectReplay(first, second);
      await t.api.delete(`/auth/sessions/${ids[0]}`).set(bearer(ada)).expect(404); // without the key
      expectReused(await end(ids[1]));
      expect(await liveSessions(ada)).toBe(2); // this one and the one the 422 did not touch
      const still = [phone, laptop].map((s) => t.api.get('/auth/me').set(bearer(s)));
      expect((await Promise.all(still)).map((res) => res.status).sort()).toEqual([200, 401]);
    });

    it('POST /auth/logout-all with keepCurrent: one revocation of the others; a session opened later survives the retry; another body is 422', async () => {
      const ada = await signUp(t.api, 'Ada');
      await login(t.api, ada.email, PASSWORD);
      const key = newKey();
      const send = (body: object) =>
        t.api.post('/auth/logout-all').set(bearer(ada)).set('Idempotency-Key', key).send(body);
      const first = await send({ keepCurrent: true }).expect(204);
      expect(await liveSessions(ada)).toBe(1);
      const later = await login(t.api, ada.email, PASSWORD);
      const second = await send({ keepCurrent: true }).expect(204);
      expectReplay(first, second);
      expect(await liveSessions(ada)).toBe(2);
      await t.api.get('/auth/me').set(bearer(later)).expect(200);
      expectReused(await send({ keepCurrent: false }));
      expect(await liveSessions(ada)).toBe(2);
    });

    it('POST /auth/logout: the key is stored with the revocation; a retry gets 401 (its session has ended), like DELETE /users/{me}', async () => {
      const ada = await signUp(t.api, 'Ada');
      const key = newKey();
      await t.api.post('/auth/logout').set(bearer(ada)).set('Idempotency-Key', key).expect(204);
      await t.api.post('/auth/logout').set(bearer(ada)).set('Idempotency-Key', key).expect(401);
      const stored = await t.query<{ response_status: number }[]>(
        'SELECT response_status FROM idempotency_keys WHERE scope = $1',
        [`user:${ada.id}`],
      );
      expect(stored).toEqual([{ response_status: 204 }]);
    });
  });

  describe('§2 writes that do not support a key refuse it with 400 instead of ignoring it', () => {
    it.each([
      ['/auth/login', () => ({ email: 'nobody@example.com', password: PASSWORD })],
      ['/auth/refresh', () => ({ refreshToken: 'x'.repeat(43) })],
      ['/auth/password-reset', () => ({ email: 'nobody@example.com' })],
    ])('POST %s with Idempotency-Key: 400 problem+json naming the header, and nothing runs', async (path, body) => {
      const res = await t.api.post(path).set('Idempotency-Key', newKey()).send(body());
      expect(res.status).toBe(400);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.body.type).toBe('/problems/idempotency-key-unsupported');
      expect(res.body.detail).toContain('Idempotency-Key');
      expect(res.body.errors).toEqual([{ field: 'Idempotency-Key', messages: [res.body.detail] }]); // RFC 9457 §3
      expect(await t.query<unknown[]>('SELECT id FROM sessions')).toEqual([]);
    });

    it('login without the header is unaffected', async () => {
      const ada = await signUp(t.api, 'Ada');
      await login(t.api, ada.email, PASSWORD);
    });
  });

  it('the OpenAPI document lists the header on every account write that takes it, and the refusal on the others', () => {
    type Operation = { parameters?: { name: string }[]; responses: Record<string, { description: string }> };
    const document = openApiDocument<{ paths: Record<string, Record<string, Operation>> }>();
    const keyed = [
      ['post', '/auth/verify-email'],
      ['post', '/auth/verify-email/resend'],
      ['post', '/auth/password-reset/confirm'],
      ['delete', '/auth/sessions/{id}'],
      ['post', '/auth/logout-all'],
      ['post', '/auth/logout'],
    ];
    for (const [method, path] of keyed) {
      const operation = document.paths[path][method];
      expect(operation.parameters?.map((p) => p.name)).toContain('Idempotency-Key');
      expect(operation.responses['422'].description).toContain('Idempotency-Key');
    }
    for (const path of ['/auth/login', '/auth/refresh', '/auth/password-reset']) {
      const operation = document.paths[path].post;
      expect(operation.parameters?.map((p) => p.name) ?? []).not.toContain('Idempotency-Key');
      expect(operation.responses['400'].description).toContain('does not support');
    }
  });
});
