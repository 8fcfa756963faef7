import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { SessionsRepository } from '../../src/auth/sessions.repository';
import { AccessTokens, newRefreshToken } from '../../src/auth/tokens';
import { querySql } from './dialect';

/** A password that passes the rules (15+ characters). */
export const PASSWORD = 'correct horse battery staple';

/** A signed-up, logged-in user, as a client holds it. */
export interface Account {
  id: number;
  name: string;
  email: string;
  password: string;
  /** The access token: send it with `.set(bearer(account))`. */
  token: string;
  refreshToken: string;
}

let counter = 0;
const uniqueEmail = (name: string) =>
  `${name.toLowerCase().replace(/\W/g, '')}-${process.pid}-${++counter}-${Math.random().toString(36).slice(2, 8)}@example.com`;

/** Signs up through the API (POST /users) and logs in (POST /auth/login), as a client would. */
export async function signUp(
  api: ReturnType<typeof request>,
  name = 'Ada',
  { email = uniqueEmail(name), password = PASSWORD } = {},
): Promise<Account> {
  const created = await api.post('/users').send({ name, email, password }).expect(201);
  const tokens = await login(api, email, password);
  return { id: created.body.id as number, name, email, password, ...tokens };
}

/** A signed-up user made admin in the database (roles are read per request, so the token works at once). */
export async function signUpAdmin(
  api: ReturnType<typeof request>,
  dataSource: { query(sql: string, parameters?: unknown[]): Promise<unknown> },
  name = 'Root',
): Promise<Account> {
  const account = await signUp(api, name);
  await querySql(dataSource, `UPDATE users SET role = 'admin' WHERE id = $1`, [account.id]);
  return account;
}

/** POST /auth/login; fails the test unless it answers 200. */
export async function login(
  api: ReturnType<typeof request>,
  email: string,
  password: string,
): Promise<{ token: string; refreshToken: string }> {
  const res = await api.post('/auth/login').send({ email, password }).expect(200);
  return { token: res.body.accessToken as string, refreshToken: res.body.refreshToken as string };
}

/** `Authorization: Bearer …` for `.set()`. */
export const bearer = (account: { token: string }) => ({ Authorization: `Bearer ${account.token}` });

/**
 * An access token for a user arranged directly in the database (no password hashing): a real
 * session row and a token signed by the app's own key. For arranging state, like the db fixtures.
 */
export async function tokenFor(app: INestApplication, userId: number): Promise<string> {
  const sessionId = await app.get(SessionsRepository).create(userId, 3600, newRefreshToken().hash);
  return app.get(AccessTokens).sign({ userId, sessionId });
}

/** `Authorization` for a user arranged directly in the database (see tokenFor). */
export async function authAs(app: INestApplication, userId: number): Promise<{ Authorization: string }> {
  return { Authorization: `Bearer ${await tokenFor(app, userId)}` };
}

/** A user with the admin role, arranged in the database, and its `Authorization` header. */
export async function adminAuth(
  app: INestApplication,
  db: { user(name: string): Promise<{ id: number }> },
  dataSource: { query(sql: string, parameters?: unknown[]): Promise<unknown> },
): Promise<{ id: number; headers: { Authorization: string } }> {
  const admin = await db.user('Admin');
  await querySql(dataSource, `UPDATE users SET role = 'admin' WHERE id = $1`, [admin.id]);
  return { id: admin.id, headers: await authAs(app, admin.id) };
}

/**
 * A supertest agent that sends an admin's bearer token with every request: for specs about
 * something else (media types, body shapes, metrics) whose writes need a caller allowed to do them.
 */
export async function adminAgent(t: {
  app: INestApplication;
  db: { user(name: string): Promise<{ id: number }> };
  dataSource: { query(sql: string, parameters?: unknown[]): Promise<unknown> };
}): Promise<ReturnType<typeof request.agent>> {
  const admin = await adminAuth(t.app, t.db, t.dataSource);
  return request.agent(t.app.getHttpServer()).set(admin.headers);
}
