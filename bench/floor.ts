/**
 * The floor: what the API costs with no framework at all. Plain node:http + pg, the same SQL the app
 * sends for each benchmarked endpoint (user rows, then posts by `author_id = ANY($1)`, then comments
 * by `post_id = ANY($1)`; writes in BEGIN/COMMIT then read back), JSON of the same shape built by
 * hand, the same pool size. No validation, no error handling beyond 401/403/404/500: it is a yardstick.
 * It does the same identity work as the app: sign-up hashes the password with argon2id (same
 * parameters), a write verifies the bearer JWT (HS256, iss, aud, exp) and looks its session up, and
 * anonymous reads leave out the private `email`.
 */
import * as argon2 from 'argon2';
import { verify } from 'jsonwebtoken';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Pool } from 'pg';
import { ARGON2_OPTIONS } from '../src/auth/passwords';
import { TOKEN_ALGORITHM, TOKEN_AUDIENCE, TOKEN_ISSUER } from '../src/auth/tokens';

const JWT_SECRET = process.env.JWT_SECRET ?? '';

const pool = new Pool({ connectionString: process.env.DATABASE_URL, min: 10, max: Number(process.env.POOL_MAX ?? 30) });
let queries = 0;
const query = <T>(sql: string, params: unknown[] = []) => {
  queries++;
  return pool.query(sql, params).then((result) => result.rows as T[]);
};

type Row = Record<string, any>;
const USER_SQL = `SELECT u.id, u.name, u.email, u.created_at, u.updated_at, u.version, p.user_id AS profile_user_id, p.bio, p.avatar_url
  FROM users u LEFT JOIN profiles p ON p.user_id = u.id`;
// The app's batch loaders (PostsService, CommentsService) run these very statements.
const POSTS_OF_AUTHORS_SQL =
  'SELECT id, author_id AS "authorId", title, body, created_at AS "createdAt", updated_at AS "updatedAt", version ' +
  'FROM posts WHERE author_id = ANY($1) ORDER BY author_id, created_at DESC, id DESC';
const COMMENTS_OF_POSTS_SQL =
  'SELECT id, post_id AS "postId", author_id AS "authorId", body, created_at AS "createdAt" ' +
  'FROM comments WHERE post_id = ANY($1) ORDER BY post_id, created_at, id';
const commentJson = (c: Row) => ({
  id: c.id,
  postId: c.postId,
  authorId: c.authorId,
  body: c.body,
  createdAt: c.createdAt,
});

async function usersWithGraph(users: Row[], showEmail = false) {
  const posts = users.length ? await query<Row>(POSTS_OF_AUTHORS_SQL, [users.map((u) => u.id)]) : [];
  const comments = posts.length ? await query<Row>(COMMENTS_OF_POSTS_SQL, [posts.map((p) => p.id)]) : [];
  const commentsByPost = new Map<number, Row[]>();
  for (const c of comments) {
    const list = commentsByPost.get(c.postId) ?? [];
    list.push(commentJson(c));
    commentsByPost.set(c.postId, list);
  }
  const postsByAuthor = new Map<number, Row[]>();
  for (const p of posts) {
    const list = postsByAuthor.get(p.authorId) ?? [];
    list.push({
      id: p.id,
      authorId: p.authorId,
      title: p.title,
      body: p.body,
      createdAt: p.createdAt,
      updatedAt: p.updatedAt,
      comments: commentsByPost.get(p.id) ?? [],
    });
    postsByAuthor.set(p.authorId, list);
  }
  return users.map((u) => ({
    id: u.id,
    name: u.name,
    ...(showEmail && { email: u.email }),
    createdAt: u.created_at,
    updatedAt: u.updated_at,
    profile: u.profile_user_id === null ? null : { bio: u.bio, avatarUrl: u.avatar_url },
    posts: postsByAuthor.get(u.id) ?? [],
  }));
}

async function userById(id: number, showEmail = false) {
  const rows = await query<Row>(`${USER_SQL} WHERE u.id = $1`, [id]);
  return rows.length ? (await usersWithGraph(rows, showEmail))[0] : undefined;
}

/** The app's AuthGuard, by hand: the bearer JWT verified, then its session looked up (the app's SQL). */
async function callerOf(req: IncomingMessage): Promise<{ id: number; role: string } | undefined> {
  const token = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
  if (!token) return undefined;
  try {
    const claims = verify(token, JWT_SECRET, {
      algorithms: [TOKEN_ALGORITHM],
      issuer: TOKEN_ISSUER,
      audience: TOKEN_AUDIENCE,
    }) as { sub: string; sid: string };
    const [session] = await query<{ userId: number; role: string }>(
      'SELECT u.id AS "userId", u.role FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > now()',
      [claims.sid],
    );
    return session && session.userId === Number(claims.sub) ? { id: session.userId, role: session.role } : undefined;
  } catch {
    return undefined;
  }
}

async function inTransaction(
  work: (client: { query: (sql: string, params: unknown[]) => Promise<Row[]> }) => Promise<void>,
) {
  const client = await pool.connect();
  const run = (sql: string, params: unknown[] = []) => {
    queries++;
    return client.query(sql, params).then((r) => r.rows as Row[]);
  };
  try {
    await run('BEGIN');
    await work({ query: run });
    await run('COMMIT');
  } catch (error) {
    await run('ROLLBACK');
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
  const [, resource, rawId] = url.pathname.split('/');
  const id = Number(rawId);
  if (url.pathname === '/__stats') return send(res, 200, { queries });
  if (resource === 'users' && !rawId && req.method === 'GET') {
    const limit = Number(url.searchParams.get('limit') ?? 20);
    const offset = Number(url.searchParams.get('offset') ?? 0);
    const rows = await query<Row>(`${USER_SQL} ORDER BY u.name, u.id LIMIT $1 OFFSET $2`, [limit + 1, offset]);
    const headers: Record<string, string> =
      rows.length > limit ? { Link: `</users?limit=${limit}&offset=${offset + limit}>; rel="next"` } : {};
    return send(res, 200, await usersWithGraph(rows.slice(0, limit)), headers);
  }
  if (resource === 'users' && rawId && req.method === 'GET') {
    const user = await userById(id);
    return user ? send(res, 200, user) : send(res, 404, { status: 404 });
  }
  if (resource === 'users' && !rawId && req.method === 'POST') {
    const body = await readJson(req);
    let newId = 0;
    const passwordHash = await argon2.hash(String(body.password).normalize('NFKC'), ARGON2_OPTIONS);
    await inTransaction(async (tx) => {
      [{ id: newId }] = await tx.query(
        'INSERT INTO users (name, email, password_hash) VALUES ($1, $2, $3) RETURNING id, created_at, updated_at, version',
        [body.name, body.email, passwordHash],
      );
    });
    return send(res, 201, await userById(newId, true), { Location: `/users/${newId}` });
  }
  if (resource === 'users' && rawId && req.method === 'PATCH') {
    const caller = await callerOf(req);
    if (!caller) return send(res, 401, { status: 401 });
    if (caller.role !== 'admin' && caller.id !== id) return send(res, 403, { status: 403 });
    const body = await readJson(req);
    await inTransaction((tx) =>
      tx
        .query('UPDATE users SET name = $1, updated_at = CURRENT_TIMESTAMP, version = version + 1 WHERE id = $2', [
          body.name,
          id,
        ])
        .then(() => undefined),
    );
    return send(res, 200, await userById(id, true));
  }
  if (resource === 'posts' && rawId && req.method === 'GET') {
    const [post] = await query<Row>(
      'SELECT p.id, p.author_id, p.title, p.body, p.created_at, p.updated_at, p.version, a.id AS a_id, a.name AS a_name FROM posts p LEFT JOIN users a ON a.id = p.author_id WHERE p.id = $1',
      [id],
    );
    if (!post) return send(res, 404, { status: 404 });
    const comments = await query<Row>(COMMENTS_OF_POSTS_SQL, [[post.id]]);
    return send(res, 200, {
      id: post.id,
      authorId: post.author_id,
      title: post.title,
      body: post.body,
      createdAt: post.created_at,
      updatedAt: post.updated_at,
      author: { id: post.a_id, name: post.a_name },
      comments: comments.map(commentJson),
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
