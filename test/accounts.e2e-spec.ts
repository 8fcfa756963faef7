import { once } from 'node:events';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Response } from 'supertest';
import { DataSource } from 'typeorm';
import { PasswordReset } from '../src/auth/password-reset';
import { loadConfig } from '../src/config/app.config';
import { dataSourceOptions } from '../src/database/data-source.options';
import { AccessTokens } from '../src/auth/tokens';
import { MailWorker } from '../src/mail/mail-worker';
import { bearer, login, PASSWORD, signUp } from './setup/accounts';
import { startMain } from './setup/main-process';
import { TestSmtpServer, tokenIn } from './setup/smtp';
import { startTestApp, type TestApp } from './setup/test-app';

const PROBLEM = /application\/problem\+json/;
const PUBLIC_URL = 'https://app.example.test';
const NEW_PASSWORD = 'a brand new passphrase, long enough';

/** The env of an app that delivers mail to `smtp` at once, retrying fast (so tests never wait long). */
const mailEnv = (smtp: TestSmtpServer, extra: Record<string, string> = {}) => ({
  SMTP_URL: smtp.url,
  MAIL_WORKER_ENABLED: 'true',
  MAIL_POLL_INTERVAL_MS: '100',
  MAIL_RETRY_BASE_MS: '100',
  PUBLIC_URL,
  PASSWORD_RESET_MAX_PER_CLIENT: '1000',
  ...extra,
});

/** A 400 problem whose field errors name `token` (RFC 9457 §3). */
function expectTokenProblem(res: Response): void {
  expect(res.status).toBe(400);
  expect(res.headers['content-type']).toMatch(PROBLEM);
  expect(res.body.errors.map((error: { field: string }) => error.field)).toEqual(['token']);
}

/** The token of an .eml file's `Token:` line (whole even in quoted-printable: short, no `=`). */
function tokenLine(eml: string): string {
  const match = /^Token: ([\w-]{43})$/m.exec(eml);
  if (!match) throw new Error(`no Token: line in:\n${eml}`);
  return match[1];
}

let counter = 0;
const address = (name: string) => `${name}-${process.pid}-${++counter}@example.com`;

/**
 * Deletes the mail earlier suites queued (their apps deliver none). Left there, this suite's worker
 * would be delivering them when a test's reset restarts the ids, and mark a new mail with an old id sent.
 */
async function clearOutbox(): Promise<void> {
  const options = dataSourceOptions({ ...loadConfig({}).database, url: process.env.DATABASE_URL });
  const db = await new DataSource({ ...options, logging: false, logger: undefined }).initialize();
  try {
    await db.query('DELETE FROM mail_outbox');
  } finally {
    await db.destroy();
  }
}

/** One app and one SMTP server for a describe block, tables emptied before each test. */
function useMailApp(extra: Record<string, string> = {}) {
  const context = {} as { t: TestApp; smtp: TestSmtpServer; app: () => TestApp['app'] };
  context.app = () => context.t.app;
  beforeAll(async () => {
    context.smtp = await TestSmtpServer.create();
    await clearOutbox();
    context.t = await startTestApp(mailEnv(context.smtp, extra));
  });
  beforeEach(async () => {
    await context.t.reset();
    context.smtp.received.length = 0;
  });
  afterAll(async () => {
    await context.t?.close();
    await context.smtp?.stop();
  });
  return context;
}

/** Waits (generously) until `check` holds; for state a background worker reaches. */
async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  for (const started = Date.now(); !(await check());) {
    if (Date.now() - started > timeoutMs) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('account lifecycle (issue #31)', () => {
  describe('sign-up → mail → verify', () => {
    const c = useMailApp();

    it('mails a single-use link built from PUBLIC_URL (never the Host header); the token is stored only hashed', async () => {
      const email = address('ada');
      const created = await c.t.api
        .post('/users')
        .set('Host', 'evil.example')
        .set('X-Forwarded-Host', 'evil.example')
        .send({ name: 'Ada', email, password: PASSWORD })
        .expect(201);
      expect(created.body.emailVerified).toBe(false);

      const [mail] = await c.smtp.waitFor(email);
      expect(mail.subject).toBe('Confirm your email address');
      expect(mail.text).toContain(`${PUBLIC_URL}/verify-email#token=`);
      expect(mail.raw).not.toContain('evil.example');
      const token = tokenIn(mail);
      const rows = await c.t.query(
        'SELECT token_hash, purpose, email, used_at FROM account_tokens WHERE user_id = $1',
        [created.body.id],
      );
      expect(rows).toHaveLength(1);
      expect(Buffer.from(rows[0].token_hash)).toEqual(createHash('sha256').update(token).digest());
      expect(rows[0]).toMatchObject({ purpose: 'verify_email', email, used_at: null });
      // Delivered: the row (and the token in its body) is gone from the outbox.
      await eventually(async () => (await c.t.query('SELECT id FROM mail_outbox')).length === 0, 'outbox emptied');

      await c.t.api.post('/auth/verify-email').send({ token }).expect(204);
      const [user] = await c.t.query('SELECT email_verified FROM users WHERE id = $1', [created.body.id]);
      expect(Boolean(user.email_verified)).toBe(true);
      const ada = await login(c.t.api, email, PASSWORD);
      const me = await c.t.api.get('/auth/me').set(bearer(ada)).expect(200);
      expect(me.body.emailVerified).toBe(true);
      // Private like email: others do not see it.
      const seen = await c.t.api.get(`/users/${created.body.id}`).expect(200);
      expect(seen.body).not.toHaveProperty('emailVerified');
      expect(seen.body).not.toHaveProperty('email');

      expectTokenProblem(await c.t.api.post('/auth/verify-email').send({ token })); // used
    });

    it('a refused sign-up (409) leaves neither a token nor a mail behind', async () => {
      const email = address('twice');
      await c.t.api.post('/users').send({ name: 'First', email, password: PASSWORD }).expect(201);
      await c.t.api.post('/users').send({ name: 'Second', email: email.toUpperCase(), password: PASSWORD }).expect(409);
      expect(await c.t.query('SELECT email FROM account_tokens')).toEqual([{ email }]);
      await c.smtp.waitFor(email);
      await c.app().get(MailWorker).deliverDue();
      expect(c.smtp.received).toHaveLength(1);
    });

    it('refuses expired, forged and malformed tokens with 400 naming token, and verifies nothing', async () => {
      const email = address('bob');
      const created = await c.t.api.post('/users').send({ name: 'Bob', email, password: PASSWORD }).expect(201);
      const token = tokenIn((await c.smtp.waitFor(email))[0]);
      await c.t.query('UPDATE account_tokens SET expires_at = created_at'); // in the past
      expectTokenProblem(await c.t.api.post('/auth/verify-email').send({ token }));
      expectTokenProblem(await c.t.api.post('/auth/verify-email').send({ token: 'A'.repeat(43) }));
      expectTokenProblem(await c.t.api.post('/auth/verify-email').send({ token: "' OR 1=1 --" }));
      expectTokenProblem(await c.t.api.post('/auth/verify-email').send({}));
      const [user] = await c.t.query('SELECT email_verified FROM users WHERE id = $1', [created.body.id]);
      expect(Boolean(user.email_verified)).toBe(false);
    });

    it('a new email is unverified: a link goes to the new address, a notice to the old one, old links stop working', async () => {
      const old = address('carol');
      const carol = await signUp(c.t.api, 'Carol', { email: old });
      const firstToken = tokenIn((await c.smtp.waitFor(old))[0]);
      await c.t.api.post('/auth/verify-email').send({ token: firstToken }).expect(204);

      const changed = address('carol-new');
      const patched = await c.t.api
        .patch(`/users/${carol.id}`)
        .set(bearer(carol))
        .send({ email: changed, currentPassword: PASSWORD })
        .expect(200);
      expect(patched.body).toMatchObject({ email: changed, emailVerified: false });

      const [link] = await c.smtp.waitFor(changed);
      const [, notice] = await c.smtp.waitFor(old, 2);
      expect(notice.subject).toBe('Your email address was changed');
      expect(notice.text).toContain('ca***@example.com');
      expect(notice.text).not.toContain('#token=');
      expect(notice.text).not.toContain(changed);

      const [row] = await c.t.query('SELECT email_verified FROM users WHERE id = $1', [carol.id]);
      expect(Boolean(row.email_verified)).toBe(false);
      await c.t.api
        .post('/auth/verify-email')
        .send({ token: tokenIn(link) })
        .expect(204);
      const me = await c.t.api.get('/auth/me').set(bearer(carol)).expect(200);
      expect(me.body.emailVerified).toBe(true);
    });

    it('a link mailed to an address the user no longer has does not verify the new one', async () => {
      const old = address('dan');
      const dan = await signUp(c.t.api, 'Dan', { email: old });
      const staleToken = tokenIn((await c.smtp.waitFor(old))[0]);
      await c.t.api
        .patch(`/users/${dan.id}`)
        .set(bearer(dan))
        .send({ email: address('dan-new'), currentPassword: PASSWORD })
        .expect(200);
      expectTokenProblem(await c.t.api.post('/auth/verify-email').send({ token: staleToken }));
    });

    it('resends a link to an unverified caller only', async () => {
      const email = address('erin');
      const erin = await signUp(c.t.api, 'Erin', { email });
      await c.smtp.waitFor(email);
      const res = await c.t.api.post('/auth/verify-email/resend').set(bearer(erin)).expect(202);
      expect(res.body.message).toEqual(expect.any(String));
      const [, second] = await c.smtp.waitFor(email, 2);
      await c.t.api
        .post('/auth/verify-email')
        .send({ token: tokenIn(second) })
        .expect(204);
      await c.t.api.post('/auth/verify-email/resend').set(bearer(erin)).expect(202);
      await c.app().get(MailWorker).deliverDue();
      expect(c.smtp.to(email)).toHaveLength(2);
      // The worker deletes a row once the server accepted it, a moment after the server has it.
      await eventually(async () => (await c.t.query('SELECT id FROM mail_outbox')).length === 0, 'outbox emptied');
    });
  });

  describe('password reset (OWASP Forgot Password Cheat Sheet)', () => {
    const c = useMailApp({ PASSWORD_RESET_MAX_PER_ADDRESS: '3' });

    it('reset → mail → confirm: old sessions 401, the old password fails, the new one logs in; the token works once', async () => {
      const email = address('ada');
      const phone = await signUp(c.t.api, 'Ada', { email });
      const laptop = await login(c.t.api, email, PASSWORD);
      await c.smtp.waitFor(email); // the sign-up's verification mail

      const requested = await c.t.api.post('/auth/password-reset').send({ email: email.toUpperCase() }).expect(202);
      expect(requested.headers['cache-control']).toBe('no-store');
      const [, mail] = await c.smtp.waitFor(email, 2);
      expect(mail.subject).toBe('Reset your password');
      expect(mail.text).toContain(`${PUBLIC_URL}/reset-password#token=`);
      const token = tokenIn(mail);

      // Same rules as sign-up; a refused password leaves the token usable.
      const weak = await c.t.api.post('/auth/password-reset/confirm').send({ token, password: 'short' }).expect(400);
      expect(weak.body.errors.map((error: { field: string }) => error.field)).toEqual(['password']);

      await c.t.api.post('/auth/password-reset/confirm').send({ token, password: NEW_PASSWORD }).expect(204);
      for (const session of [phone, laptop]) await c.t.api.get('/auth/me').set(bearer(session)).expect(401);
      await c.t.api.post('/auth/refresh').send({ refreshToken: laptop.refreshToken }).expect(401);
      await c.t.api.post('/auth/login').send({ email, password: PASSWORD }).expect(401);
      const fresh = await login(c.t.api, email, NEW_PASSWORD);
      const me = await c.t.api.get('/auth/me').set(bearer(fresh)).expect(200);
      expect(me.body.emailVerified).toBe(true); // the token was read at that address
      const live = await c.t.query('SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL', [phone.id]);
      expect(live).toHaveLength(1);

      expectTokenProblem(
        await c.t.api.post('/auth/password-reset/confirm').send({ token, password: 'yet another passphrase!!' }),
      );
      await login(c.t.api, email, NEW_PASSWORD); // unchanged by the refused reuse
    });

    it('an unknown email gets the same 202 and body, and nothing is written or sent', async () => {
      const email = address('known');
      await signUp(c.t.api, 'Known', { email });
      await c.smtp.waitFor(email);
      const known = await c.t.api.post('/auth/password-reset').send({ email }).expect(202);
      const unknown = await c.t.api
        .post('/auth/password-reset')
        .send({ email: address('nobody') })
        .expect(202);
      expect(unknown.body).toEqual(known.body);
      expect(unknown.headers['content-length']).toBe(known.headers['content-length']);
      await c.app().get(PasswordReset).settled();
      await c.smtp.waitFor(email, 2);
      const tokens = await c.t.query(`SELECT email FROM account_tokens WHERE purpose = 'password_reset'`);
      expect(tokens).toEqual([{ email }]);
      await c.app().get(MailWorker).deliverDue();
      expect(c.smtp.received.filter((mail) => mail.to.some((to) => to.startsWith('nobody')))).toEqual([]);
      // The worker deletes a row once the server accepted it, a moment after the server has it.
      await eventually(async () => (await c.t.query('SELECT id FROM mail_outbox')).length === 0, 'outbox emptied');
    });

    it('expired and forged reset tokens get 400 naming token; the password stays', async () => {
      const email = address('fay');
      await signUp(c.t.api, 'Fay', { email });
      await c.t.api.post('/auth/password-reset').send({ email }).expect(202);
      const [, mail] = await c.smtp.waitFor(email, 2);
      await c.t.query('UPDATE account_tokens SET expires_at = created_at'); // in the past
      const password = NEW_PASSWORD;
      expectTokenProblem(await c.t.api.post('/auth/password-reset/confirm').send({ token: tokenIn(mail), password }));
      expectTokenProblem(await c.t.api.post('/auth/password-reset/confirm').send({ token: 'x'.repeat(43), password }));
      await login(c.t.api, email, PASSWORD);
    });

    it('limits requests per address (429 + Retry-After), known or not; another address is not affected', async () => {
      for (const email of [address('limited'), address('unknown-limited')]) {
        for (let i = 0; i < 3; i++) await c.t.api.post('/auth/password-reset').send({ email }).expect(202);
        const limited = await c.t.api.post('/auth/password-reset').send({ email }).expect(429);
        expect(limited.headers['content-type']).toMatch(PROBLEM);
        expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      }
      await c.t.api
        .post('/auth/password-reset')
        .send({ email: address('other') })
        .expect(202);
      await c.app().get(PasswordReset).settled();
    });
  });

  describe('resend-verification and password reset are limited on separate counters', () => {
    const c = useMailApp({ PASSWORD_RESET_MAX_PER_ADDRESS: '2' });

    it('an address that used up its resets can still get a verification link, and the other way round', async () => {
      const email = address('gil');
      const gil = await signUp(c.t.api, 'Gil', { email });
      for (let i = 0; i < 2; i++) await c.t.api.post('/auth/password-reset').send({ email }).expect(202);
      await c.t.api.post('/auth/password-reset').send({ email }).expect(429);
      for (let i = 0; i < 2; i++) await c.t.api.post('/auth/verify-email/resend').set(bearer(gil)).expect(202);
      const limited = await c.t.api.post('/auth/verify-email/resend').set(bearer(gil)).expect(429);
      expect(limited.headers['content-type']).toMatch(PROBLEM);
      expect(limited.body.detail).toMatch(/verification/);

      const other = address('hal');
      const hal = await signUp(c.t.api, 'Hal', { email: other });
      for (let i = 0; i < 2; i++) await c.t.api.post('/auth/verify-email/resend').set(bearer(hal)).expect(202);
      await c.t.api.post('/auth/verify-email/resend').set(bearer(hal)).expect(429);
      await c.t.api.post('/auth/password-reset').send({ email: other }).expect(202);
      await c.app().get(PasswordReset).settled();
    });
  });

  describe('password reset, per client', () => {
    const c = useMailApp({ PASSWORD_RESET_MAX_PER_CLIENT: '2' });

    it('limits one client across addresses (429)', async () => {
      await c.t.api
        .post('/auth/password-reset')
        .send({ email: address('a') })
        .expect(202);
      await c.t.api
        .post('/auth/password-reset')
        .send({ email: address('b') })
        .expect(202);
      await c.t.api
        .post('/auth/password-reset')
        .send({ email: address('c') })
        .expect(429);
      await c.app().get(PasswordReset).settled();
    });
  });

  describe('sessions', () => {
    const c = useMailApp();

    it('lists the caller’s live sessions with user agent and the current one marked; ends one; others get 404', async () => {
      const email = address('ada');
      const phone = await signUp(c.t.api, 'Ada', { email });
      const laptopLogin = await c.t.api
        .post('/auth/login')
        .set('User-Agent', 'Laptop/1.0')
        .send({ email, password: PASSWORD })
        .expect(200);
      const laptop = { token: laptopLogin.body.accessToken as string };
      const bob = await signUp(c.t.api, 'Bob', { email: address('bob') });

      const listed = await c.t.api.get('/auth/sessions').set(bearer(laptop)).expect(200);
      expect(listed.headers['cache-control']).toBe('no-store');
      expect(listed.body).toHaveLength(2);
      const current = listed.body.find((session: { current: boolean }) => session.current);
      expect(current).toMatchObject({ userAgent: 'Laptop/1.0' });
      const other = listed.body.find((session: { current: boolean }) => !session.current);
      expect(other).toEqual(
        expect.objectContaining({
          id: expect.any(String),
          createdAt: expect.any(String),
          lastUsedAt: expect.any(String),
        }),
      );

      await c.t.api.delete(`/auth/sessions/${other.id}`).set(bearer(bob)).expect(404); // not Bob's
      await c.t.api.get('/auth/me').set(bearer(phone)).expect(200);
      await c.t.api.delete(`/auth/sessions/${other.id}`).set(bearer(laptop)).expect(204);
      await c.t.api.get('/auth/me').set(bearer(phone)).expect(401);
      await c.t.api.delete(`/auth/sessions/${other.id}`).set(bearer(laptop)).expect(404); // ended already
      await c.t.api.delete('/auth/sessions/not-a-uuid').set(bearer(laptop)).expect(400); // names id: no session has such an id
      const [row] = await c.t.query('SELECT revoked_at FROM sessions WHERE id = $1', [other.id]);
      expect(row.revoked_at).not.toBeNull();
      expect((await c.t.api.get('/auth/sessions').set(bearer(laptop)).expect(200)).body).toHaveLength(1);
      await c.t.api.get('/auth/me').set(bearer(bob)).expect(200);
    });

    it('logout-all ends the other sessions with keepCurrent, and all of them without', async () => {
      const email = address('ada');
      const first = await signUp(c.t.api, 'Ada', { email });
      const second = await login(c.t.api, email, PASSWORD);
      const third = await login(c.t.api, email, PASSWORD);
      await c.t.api.post('/auth/logout-all').set(bearer(third)).send({ keepCurrent: true }).expect(204);
      await c.t.api.get('/auth/me').set(bearer(first)).expect(401);
      await c.t.api.get('/auth/me').set(bearer(second)).expect(401);
      await c.t.api.get('/auth/me').set(bearer(third)).expect(200);
      await c.t.api.post('/auth/logout-all').set(bearer(third)).expect(204);
      await c.t.api.get('/auth/me').set(bearer(third)).expect(401);
      const live = await c.t.query('SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL', [first.id]);
      expect(live).toEqual([]);
    });

    it('records "last used" at most once per interval, not on every request', async () => {
      const user = await c.t.db.user('Gus');
      // A session this process did not create (another instance's, or from before a restart).
      const sessionId = randomUUID();
      await c.t.query(`INSERT INTO sessions (id, user_id, expires_at) VALUES ($1, $2, '2099-01-01 00:00:00.000')`, [
        sessionId,
        user.id,
      ]);
      const token = c.t.app.get(AccessTokens).sign({ userId: user.id, sessionId });
      const first = await c.t.queriesDuring(() => c.t.api.get('/auth/me').set(bearer({ token })).expect(200));
      expect(first.filter((sql) => /UPDATE sessions SET last_used_at/.test(sql))).toHaveLength(1);
      const [row] = await c.t.query('SELECT last_used_at FROM sessions WHERE user_id = $1', [user.id]);
      expect(row.last_used_at).not.toBeNull();
      const again = await c.t.queriesDuring(() => c.t.api.get('/auth/me').set(bearer({ token })).expect(200));
      expect(again.filter((sql) => /UPDATE sessions/.test(sql))).toEqual([]);
      // A session created here (login) counts as used at creation: its first requests write nothing.
      const fresh = await signUp(c.t.api, 'Hal', { email: address('hal') });
      const first2 = await c.t.queriesDuring(() => c.t.api.get('/auth/me').set(bearer(fresh)).expect(200));
      expect(first2.filter((sql) => /UPDATE sessions/.test(sql))).toEqual([]);
    });
  });

  describe('SMTP down while a user signs up', () => {
    const context = {} as { t: TestApp; smtp: TestSmtpServer };
    beforeAll(async () => {
      context.smtp = await TestSmtpServer.create({ listening: false });
      await clearOutbox();
      context.t = await startTestApp(mailEnv(context.smtp));
      await context.t.reset();
    });
    afterAll(async () => {
      await context.t?.close();
      await context.smtp?.stop();
    });

    it('still answers 201; the mail is retried with backoff and goes out once SMTP is back (metrics count it)', async () => {
      const { t, smtp } = context;
      const email = address('patient');
      await t.api.post('/users').send({ name: 'Patient', email, password: PASSWORD }).expect(201);
      await eventually(async () => {
        const [row] = await t.query('SELECT attempts, last_error FROM mail_outbox');
        return Boolean(row && row.attempts >= 1 && row.last_error);
      }, 'a failed attempt recorded');
      expect(smtp.received).toEqual([]);

      await smtp.start();
      const [mail] = await smtp.waitFor(email);
      tokenIn(mail);
      await eventually(async () => (await t.query('SELECT id FROM mail_outbox')).length === 0, 'outbox emptied');
      const metrics = (await t.api.get('/metrics').expect(200)).text;
      for (const name of ['mail_queued_total', 'mail_sent_total', 'mail_retried_total']) {
        expect(Number(new RegExp(`^${name} (\\d+)`, 'm').exec(metrics)?.[1])).toBeGreaterThan(0);
      }
      expect(metrics).toMatch(/^mail_failed_total \d+/m);
    });
  });

  describe('several instances on one database', () => {
    const context = {} as { apps: TestApp[]; smtp: TestSmtpServer };
    beforeAll(async () => {
      context.smtp = await TestSmtpServer.create();
      await clearOutbox();
      context.apps = [await startTestApp(mailEnv(context.smtp)), await startTestApp(mailEnv(context.smtp))];
      await context.apps[0].reset();
    });
    afterAll(async () => {
      for (const app of context.apps ?? []) await app.close();
      await context.smtp?.stop();
    });

    it('delivers every queued mail exactly once between two workers (claims with a lease, SKIP LOCKED)', async () => {
      const [a, b] = context.apps;
      const count = 30;
      for (let i = 0; i < count; i++) {
        await a.query(
          `INSERT INTO mail_outbox (recipient, subject, body, next_attempt_at) VALUES ($1, 'Hello', 'Hi', '2000-01-01 00:00:00.000')`,
          [`many-${i}@example.com`],
        );
      }
      a.app.get(MailWorker).wake();
      b.app.get(MailWorker).wake();
      await eventually(() => context.smtp.received.length >= count, `${count} mails received`);
      await eventually(async () => (await a.query('SELECT id FROM mail_outbox')).length === 0, 'outbox emptied');
      // A few more polls of both workers: still exactly one of each.
      await a.app.get(MailWorker).deliverDue();
      await b.app.get(MailWorker).deliverDue();
      const recipients = context.smtp.received.map((mail) => mail.to[0]).sort();
      expect(recipients).toEqual([...new Set(recipients)]);
      expect(recipients).toHaveLength(count);
    });
  });

  describe('UNVERIFIED_MAY_WRITE=false', () => {
    const c = useMailApp({ UNVERIFIED_MAY_WRITE: 'false' });

    it('refuses writes (403) until the email is verified, except on the own account; reads stay open', async () => {
      const email = address('ivy');
      const ivy = await signUp(c.t.api, 'Ivy', { email });
      const refused = await c.t.api
        .post(`/users/${ivy.id}/posts`)
        .set(bearer(ivy))
        .send({ title: 'Hi', body: 'Hello' })
        .expect(403);
      expect(refused.headers['content-type']).toMatch(PROBLEM);
      expect(await c.t.query('SELECT id FROM posts')).toEqual([]);
      await c.t.api.get('/auth/me').set(bearer(ivy)).expect(200);
      await c.t.api.patch(`/users/${ivy.id}`).set(bearer(ivy)).send({ name: 'Ivy L.' }).expect(200);
      const [link] = await c.smtp.waitFor(email);
      await c.t.api
        .post('/auth/verify-email')
        .send({ token: tokenIn(link) })
        .expect(204);
      await c.t.api.post(`/users/${ivy.id}/posts`).set(bearer(ivy)).send({ title: 'Hi', body: 'Hello' }).expect(201);
    });
  });

  describe('without SMTP_URL (the embedded default)', () => {
    it('writes each mail as an .eml file, says where at startup, and logs no token or password', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'accounts-eml-'));
      const { child, base, output } = await startMain({
        MAIL_DIR: dir,
        MAIL_WORKER_ENABLED: 'true',
        MAIL_POLL_INTERVAL_MS: '100',
        LOG_LEVEL: 'debug',
        SMTP_URL: '',
      });
      const tokens: string[] = [];
      try {
        const email = address('newcomer');
        const json = { 'Content-Type': 'application/json' };
        const created = await fetch(`${base}/users`, {
          method: 'POST',
          headers: json,
          body: JSON.stringify({ name: 'New', email, password: PASSWORD }),
        });
        expect(created.status).toBe(201);
        const emlFiles = async (count: number) => {
          const emls = () => readdirSync(dir).filter((file) => file.endsWith('.eml'));
          await eventually(() => emls().length >= count, `${count} .eml files in ${dir}`);
          return emls().sort();
        };
        const [first] = await emlFiles(1);
        const eml = readFileSync(join(dir, first), 'utf8');
        expect(eml).toMatch(new RegExp(`^To: ${email}$`, 'm'));
        const verify = tokenLine(eml); // as docs/accounts.md's walk-through greps it
        tokens.push(verify);
        expect(
          (
            await fetch(`${base}/auth/verify-email`, {
              method: 'POST',
              headers: json,
              body: JSON.stringify({ token: verify }),
            })
          ).status,
        ).toBe(204);

        const reset = await fetch(`${base}/auth/password-reset`, {
          method: 'POST',
          headers: json,
          body: JSON.stringify({ email }),
        });
        expect(reset.status).toBe(202);
        const files = await emlFiles(2);
        const resetToken = tokenLine(readFileSync(join(dir, files[1]), 'utf8'));
        tokens.push(resetToken);
        const confirmed = await fetch(`${base}/auth/password-reset/confirm`, {
          method: 'POST',
          headers: json,
          body: JSON.stringify({ token: resetToken, password: NEW_PASSWORD }),
        });
        expect(confirmed.status).toBe(204);
      } finally {
        child.kill('SIGTERM');
        await once(child, 'close');
      }
      const logs = output();
      expect(logs).toContain(`Mail is written as .eml files to ${dir}`);
      expect(logs).toMatch(/request completed/); // the request log was on
      for (const secret of [...tokens, PASSWORD, NEW_PASSWORD]) expect(logs).not.toContain(secret);
    });
  });
});
