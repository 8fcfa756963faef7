/**
 * The floor: what the API costs with no framework at all. Plain node:http + pg, the same pool size,
 * the same SQL statements as the app, character for character (the statements the app's
 * repositories and TypeORM send, copied from its query log; bench/run.ts checks they still agree),
 * and the same response bytes, built by hand. No validation, no error handling beyond 401/403/404/500: it is
 * a yardstick. The keyset cursors are checked as the app checks them (src/http/cursor.ts). Identity
 * is the app's work too: argon2id with the app's parameters on sign-up, and for a bearer token the
 * JWT checks (same secret, algorithm, issuer, audience), the app's session lookup and access policy,
 * and its "last used" write (once a minute per session). A sign-up also queues its verification mail
 * (the token and the outbox row) in its transaction, as the app does (docs/accounts.md).
 */
import * as argon2 from 'argon2';
import { verify } from 'jsonwebtoken';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createHash, createSecretKey, randomBytes } from 'node:crypto';
import { Pool, type PoolClient } from 'pg';
import { verificationMail } from '../src/auth/account-mails';
import { ARGON2_OPTIONS } from '../src/auth/passwords';
import { pgTypeParsers } from '../src/database/dialects/pg-type-parsers';
import { TOKEN_ALGORITHM, TOKEN_AUDIENCE, TOKEN_ISSUER } from '../src/auth/tokens';
import { CursorCodec, type CursorScope } from '../src/http/cursor';
import { NESTED_LIMIT } from '../src/http/pagination.query';
import { commentsList } from '../src/comments/comments.service';
import { userPostsList } from '../src/posts/posts.service';

// The app's type parsers (timestamps by postgres-date 2): the same rows cost the same to read.
const pool = new Pool({
  connectionString: process.env.DATABASE_URL,
  min: 10,
  max: Number(process.env.POOL_MAX ?? 30),
  types: pgTypeParsers,
});
const cursors = new CursorCodec(process.env.CURSOR_SECRET);
/** As the app's AuthModule: one KeyObject, not a string that jsonwebtoken would turn into one per verify. */
const JWT_SECRET = createSecretKey(Buffer.from(process.env.JWT_SECRET ?? ''));

// What bench/run.ts reads at /__stats: the number of statements, and their texts since its last look.
let queries = 0;
let statements: string[] = [];
type Row = Record<string, any>;
const run = async (client: Pool | PoolClient, sql: string, params: unknown[] = []): Promise<Row[]> => {
  queries++;
  statements.push(sql);
  return (await client.query(sql, params)).rows as Row[];
};
const query = (sql: string, params: unknown[] = []) => run(pool, sql, params);

// UsersRepository
const USER_COLUMNS =
  'u.id, u.name, u.email, u.email_verified AS "emailVerified", u.role, u.created_at AS "createdAt", u.updated_at AS "updatedAt", u.version';
const USER_WITH_PROFILE =
  `SELECT ${USER_COLUMNS}, CASE WHEN p.user_id IS NULL THEN NULL ELSE ` +
  `json_build_object('userId', p.user_id, 'bio', p.bio, 'avatarUrl', p.avatar_url) END AS profile ` +
  'FROM users u LEFT JOIN profiles p ON p.user_id = u.id';
const INSERT_USER =
  'INSERT INTO users (name, email, password_hash) VALUES ($1, $2, $3) RETURNING id, name, email, email_verified AS "emailVerified", role, created_at AS "createdAt", updated_at AS "updatedAt", version';
// AccountTokensRepository.issue, MailOutboxRepository.insert: sign-up queues its verification mail
const INSERT_ACCOUNT_TOKEN =
  'INSERT INTO account_tokens (token_hash, user_id, purpose, email, expires_at) VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))';
const INSERT_MAIL = 'INSERT INTO mail_outbox (recipient, subject, body, next_attempt_at) VALUES ($1, $2, $3, now())';
// SessionActivity: "last used", written at most once a minute per session and process
const TOUCH_SESSION =
  'UPDATE sessions SET last_used_at = now() WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => $2))';
const touched = new Map<string, number>();
const LOCK_COMMENTS_OF_USER =
  'SELECT 1 FROM comments WHERE author_id = $1 OR post_id = ANY(ARRAY(SELECT id FROM posts WHERE author_id = $1)) ORDER BY id FOR UPDATE';
// SessionsRepository.findActive, AccountsRepository.assertAnotherAdminRemains
const ACTIVE_SESSION =
  'SELECT u.id AS "userId", u.role FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > now()';
const LOCK_ADMINS =
  "SELECT id FROM users WHERE role = 'admin' AND EXISTS (SELECT 1 FROM users WHERE id = $1 AND role = 'admin') ORDER BY id FOR UPDATE";
// PostsRepository, CommentsRepository (the batch loaders)
// (first-rows.ts: each parent's first NESTED_LIMIT + 1 rows, one LATERAL statement per level; a plain
// one for a single parent)
const POSTS_OF_AUTHOR =
  'SELECT p.id, p.author_id AS "authorId", p.title, p.body, p.created_at AS "createdAt", p.updated_at AS "updatedAt", ' +
  'p.version FROM posts p WHERE p.author_id = $1 ORDER BY p.created_at DESC, p.id DESC LIMIT $2';
const COMMENTS_OF_POST =
  'SELECT id, post_id AS "postId", author_id AS "authorId", body, created_at AS "createdAt" FROM comments ' +
  'WHERE post_id = $1 ORDER BY created_at, id LIMIT $2';
const POSTS_OF_AUTHORS =
  'SELECT f.* FROM unnest($1::int[]) AS k(v) CROSS JOIN LATERAL (SELECT p.id, p.author_id AS "authorId", p.title, p.body, ' +
  'p.created_at AS "createdAt", p.updated_at AS "updatedAt", p.version FROM posts p WHERE p.author_id >= k.v AND p.author_id <= k.v ' +
  'ORDER BY p.author_id DESC, p.created_at DESC, p.id DESC LIMIT $2) AS f ORDER BY 2, 5 DESC, 1 DESC';
const COMMENTS_OF_POSTS =
  'SELECT f.* FROM unnest($1::int[]) AS k(v) CROSS JOIN LATERAL (SELECT id, post_id AS "postId", author_id AS "authorId", ' +
  'body, created_at AS "createdAt" FROM comments WHERE post_id >= k.v AND post_id <= k.v ORDER BY post_id, created_at, id LIMIT $2) ' +
  'AS f ORDER BY 2, 5, 1';
// TypeORM's (Repository.delete, updateIfMatch's query builder, transactions)
const UPDATE_USER = 'UPDATE "users" SET "name" = $1, "updated_at" = now(), "version" = "version" + 1 WHERE "id" = $2';
const DELETE_USER = 'DELETE FROM "users" WHERE "id" = $1';
// PostsRepository, CommentsRepository (single rows and the keyset page)
const POST_WITH_AUTHOR =
  'SELECT p.id, p.author_id AS "authorId", p.title, p.body, p.created_at AS "createdAt", p.updated_at AS "updatedAt", ' +
  "p.version, json_build_object('id', a.id, 'name', a.name) AS author " +
  'FROM posts p JOIN users a ON a.id = p.author_id WHERE p.id = $1';
const POST_EXISTS = 'SELECT EXISTS (SELECT 1 FROM posts WHERE id = $1) AS "exists"';
const COMMENTS_PAGE_AFTER =
  'SELECT id, post_id AS "postId", author_id AS "authorId", body, created_at AS "createdAt" FROM comments WHERE post_id = $1 ' +
  'AND (created_at, id) > ($3, $4) ORDER BY created_at, id LIMIT $2';

const commentJson = (c: Row) => ({
  id: c.id,
  postId: c.postId,
  authorId: c.authorId,
  body: c.body,
  createdAt: c.createdAt,
});

/**
 * Rows of the first-rows loaders grouped by `key`, each group cut to NESTED_LIMIT; `next` is the path
 * of the rest (as the app's nextPagePath) for a group that had one row more.
 */
function firstPages(rows: Row[], key: string, listPath: (k: number) => string, scope: (k: number) => CursorScope) {
  const groups = Map.groupBy(rows, (row) => row[key] as number);
  const pages = new Map<number, { items: Row[]; next?: string }>();
  for (const [k, group] of groups) {
    const items = group.slice(0, NESTED_LIMIT);
    const last = items.at(-1)!;
    const cursor = group.length > NESTED_LIMIT ? cursors.encode(scope(k), [last.createdAt, last.id]) : undefined;
    pages.set(k, {
      items,
      next: cursor && `${listPath(k)}?${new URLSearchParams({ limit: String(NESTED_LIMIT), cursor }).toString()}`,
    });
  }
  return pages;
}

/** Each key's first NESTED_LIMIT + 1 rows, as ReadRouter.firstRows reads them on PostgreSQL. */
const firstRows = async (oneKey: string, manyKeys: string, keys: number[]) =>
  keys.length === 0
    ? []
    : keys.length === 1
      ? await query(oneKey, [keys[0], NESTED_LIMIT + 1])
      : await query(manyKeys, [keys, NESTED_LIMIT + 1]);

const commentPages = async (postIds: number[]) =>
  firstPages(
    await firstRows(COMMENTS_OF_POST, COMMENTS_OF_POSTS, postIds),
    'postId',
    (id) => `/posts/${id}/comments`,
    commentsList,
  );

async function usersWithGraph(users: Row[], caller: Caller | undefined) {
  const postPages = firstPages(
    await firstRows(
      POSTS_OF_AUTHOR,
      POSTS_OF_AUTHORS,
      users.map((u) => u.id as number),
    ),
    'authorId',
    (id) => `/users/${id}/posts`,
    userPostsList,
  );
  const comments = await commentPages([...postPages.values()].flatMap(({ items }) => items.map((p) => p.id as number)));
  const postWithComments = (p: Row) => {
    const page = comments.get(p.id as number);
    return { ...postJson(p), comments: (page?.items ?? []).map(commentJson), commentsNext: page?.next };
  };
  return users.map((u) => {
    const page = postPages.get(u.id as number);
    return { ...userJson(u, caller), posts: (page?.items ?? []).map(postWithComments), postsNext: page?.next };
  });
}

/** As src/auth/access-policy.ts mayReadPrivateFields: email and role for the user themself and admins. */
const userJson = (u: Row, caller: Caller | undefined) => ({
  id: u.id,
  name: u.name,
  createdAt: u.createdAt,
  updatedAt: u.updatedAt,
  // After the timestamps, where the app's serializer puts them.
  ...((caller?.role === 'admin' || caller?.id === u.id) && {
    email: u.email,
    emailVerified: u.emailVerified,
    role: u.role,
  }),
  profile: u.profile && { bio: u.profile.bio, avatarUrl: u.profile.avatarUrl },
});
const postJson = (p: Row) => ({
  id: p.id,
  authorId: p.authorId,
  title: p.title,
  body: p.body,
  createdAt: p.createdAt,
  updatedAt: p.updatedAt,
});

async function userById(id: number, caller: Caller | undefined) {
  const rows = await query(`${USER_WITH_PROFILE} WHERE u.id = $1`, [id]);
  return rows.length ? (await usersWithGraph(rows, caller))[0] : undefined;
}

interface Caller {
  id: number;
  role: string;
}

/**
 * As the app's AuthGuard + AuthService.authenticate: no Authorization header, anonymous; else the JWT
 * checks, then the session lookup. Undefined for anonymous, 'invalid' for a token that does not pass.
 */
async function authenticate(req: IncomingMessage): Promise<Caller | undefined | 'invalid'> {
  const token = /^Bearer +(.+)$/i.exec(req.headers.authorization ?? '')?.[1];
  if (!token) return undefined;
  let claims: { sub?: string; sid?: string };
  try {
    claims = verify(token, JWT_SECRET, {
      algorithms: [TOKEN_ALGORITHM],
      issuer: TOKEN_ISSUER,
      audience: TOKEN_AUDIENCE,
    }) as typeof claims;
  } catch {
    return 'invalid';
  }
  const [session] = await query(ACTIVE_SESSION, [claims.sid]);
  if (!session || String(session.userId) !== claims.sub) return 'invalid';
  const last = touched.get(claims.sid!);
  if (last === undefined || Date.now() - last >= 60_000) {
    touched.set(claims.sid!, Date.now());
    await query(TOUCH_SESSION, [claims.sid, 60]);
  }
  return { id: session.userId, role: session.role };
}

async function inTransaction<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await run(client, 'START TRANSACTION');
    const result = await work(client);
    await run(client, 'COMMIT');
    return result;
  } catch (error) {
    await run(client, 'ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const json = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(json),
    ...headers,
  });
  res.end(json);
}

async function readJson(req: IncomingMessage): Promise<Row> {
  let data = '';
  for await (const chunk of req) data += chunk;
  return JSON.parse(data) as Row;
}

async function handle(req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url ?? '/', 'http://floor');
  const [, resource, rawId, sub] = url.pathname.split('/');
  const id = Number(rawId);
  if (url.pathname === '/__stats') {
    send(res, 200, { queries, statements });
    statements = [];
    return;
  }
  const caller = await authenticate(req);
  if (caller === 'invalid') return send(res, 401, { status: 401 });
  const writes = req.method !== 'GET' && !(resource === 'users' && !rawId); // sign-up is public
  if (writes && !caller) return send(res, 401, { status: 401 });
  // The access policy: admins act as anyone; a user only as themself (the bench writes as an admin).
  if (writes && resource === 'users' && caller?.role !== 'admin' && caller?.id !== id) {
    return send(res, 403, { status: 403 });
  }
  const vary = { Vary: 'Authorization' };
  if (resource === 'users' && !rawId && req.method === 'GET') {
    const limit = Number(url.searchParams.get('limit') ?? 20);
    const offset = Number(url.searchParams.get('offset') ?? 0);
    const rows = await query(`${USER_WITH_PROFILE} ORDER BY u.name, u.id LIMIT $1 OFFSET $2`, [limit + 1, offset]);
    const headers: Record<string, string> =
      rows.length > limit ? { Link: `</users?limit=${limit}&offset=${offset + limit}>; rel="next"`, ...vary } : vary;
    return send(res, 200, await usersWithGraph(rows.slice(0, limit), caller), headers);
  }
  if (resource === 'users' && rawId && req.method === 'GET') {
    const user = await userById(id, caller);
    return user ? send(res, 200, user, vary) : send(res, 404, { status: 404 });
  }
  if (resource === 'users' && !rawId && req.method === 'POST') {
    // As the app: the password hashed before the transaction, the response what the INSERT returned,
    // sent after COMMIT (no read-back), private fields included (it is the new user's own).
    const body = await readJson(req);
    const hash = await argon2.hash(String(body.password).normalize('NFKC'), ARGON2_OPTIONS);
    const [user] = await inTransaction(async (tx) => {
      const [inserted] = await run(tx, INSERT_USER, [body.name, body.email, hash]);
      const token = randomBytes(32).toString('base64url');
      const tokenHash = createHash('sha256').update(token).digest();
      await run(tx, INSERT_ACCOUNT_TOKEN, [tokenHash, inserted.id, 'verify_email', inserted.email, 172_800]);
      const mail = verificationMail(inserted.email, 'http://localhost:3000', token, 172_800);
      await run(tx, INSERT_MAIL, [mail.to, mail.subject, mail.text]);
      return [inserted];
    });
    const json = { ...userJson({ ...user, profile: null }, { id: user.id, role: user.role }), posts: [] };
    return send(res, 201, json, { Location: `/users/${user.id}` });
  }
  if (resource === 'users' && rawId && req.method === 'PATCH') {
    const body = await readJson(req);
    await inTransaction((tx) => run(tx, UPDATE_USER, [body.name, id]));
    return send(res, 200, await userById(id, caller)); // the caller may act as this user, so sees all
  }
  if (resource === 'users' && rawId && req.method === 'DELETE') {
    await inTransaction(async (tx) => {
      const admins = await run(tx, LOCK_ADMINS, [id]);
      if (admins.length === 1 && admins[0].id === id) throw new Error('the last admin');
      await run(tx, LOCK_COMMENTS_OF_USER, [id]);
      await run(tx, DELETE_USER, [id]);
    });
    return send(res, 200, { message: 'User deleted' });
  }
  if (resource === 'posts' && rawId && sub === 'comments' && req.method === 'GET') {
    const limit = Number(url.searchParams.get('limit') ?? 20);
    // The app's commentsList scope (comments.service.ts): its cursors are bound to the post's list.
    const scope = { list: 'post-comments', keys: ['date', 'id'] as const, params: { postId: id } };
    const [afterCreatedAt, afterId] = cursors.decode(scope, url.searchParams.get('cursor') ?? ''); // the bench always sends one
    const [{ exists }] = await query(POST_EXISTS, [id]);
    if (!exists) return send(res, 404, { status: 404 });
    const rows = await query(COMMENTS_PAGE_AFTER, [id, limit + 1, afterCreatedAt, afterId]);
    const items = rows.slice(0, limit).map(commentJson);
    const last = rows.length > limit ? rows[limit - 1] : undefined;
    const next =
      last && new URLSearchParams({ limit: String(limit), cursor: cursors.encode(scope, [last.createdAt, last.id]) });
    return send(res, 200, items, next ? { Link: `<${url.pathname}?${next.toString()}>; rel="next"` } : {});
  }
  if (resource === 'posts' && rawId && req.method === 'GET') {
    const [post] = await query(POST_WITH_AUTHOR, [id]);
    if (!post) return send(res, 404, { status: 404 });
    const page = (await commentPages([post.id as number])).get(post.id as number);
    return send(res, 200, {
      ...postJson(post),
      author: { id: post.author.id, name: post.author.name },
      comments: (page?.items ?? []).map(commentJson),
      commentsNext: page?.next,
    });
  }
  send(res, 404, { status: 404 });
}

const server = createServer((req, res) => {
  handle(req, res).catch((error: unknown) => send(res, 500, { status: 500, detail: String(error) }));
});
server.listen(Number(process.env.PORT ?? 3100), '127.0.0.1', () =>
  console.log(`floor listening on ${process.env.PORT}`),
);
process.on('SIGTERM', () => server.close(() => void pool.end()));
