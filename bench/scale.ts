/**
 * `npm run bench:scale`: is every endpoint as fast on a large database as on a small one? Seeds (or
 * reuses) one database per size — `npm run db:seed`'s data, N users × 3 posts × 2 comments, plus a
 * post with many comments (its own author's, mid-list) and, per delete, a user with many posts and comments — starts the built
 * app (production mode, logging off) on each, and drives every read and write endpoint on both in
 * interleaved rounds (small, large / large, small …) with wrk, 4 connections. It reports p50/p99,
 * req/s, the app's CPU per request and PostgreSQL's (the backends of that database, from /proc when
 * the server runs on this machine), and p99 large ÷ p99 small against the target of 2×.
 *
 * Settings (environment): SCALE_SIZES (users per database, `10000,1000000`), SCALE_DATABASE_URLS (one
 * postgres:// URL per size, comma-separated, e.g. …/t_scale_10k,…/t_scale_1m: those databases are
 * reused, migrated and topped up by the seed; default: a throwaway embedded PostgreSQL, seeded each
 * run — about 16 min for 1M users), SCALE_DURATION (5 s per load), SCALE_ROUNDS (3),
 * SCALE_ONLY (a substring of the endpoints' names). Writes bench/results/scale.md and .json, and the
 * table into BENCHMARKS.md and docs/scale.md between their `scale-bench` markers.
 */
import 'reflect-metadata';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DataSource } from 'typeorm';
import { ensureAdmin } from '../src/auth/admin-bootstrap';
import { PasswordHasher } from '../src/auth/passwords';
import { commentsList } from '../src/comments/comments.service';
import { loadConfig } from '../src/config/app.config';
import { dataSourceOptions } from '../src/database/data-source.options';
import { findFreePort, startEmbeddedPostgres, type RunningPostgres } from '../src/database/dialects/embedded-postgres';
import { seed } from '../src/database/seed';
import { CursorCodec } from '../src/http/cursor';
import { MAX_OFFSET } from '../src/http/pagination.query';
import { postsList } from '../src/posts/posts.service';
import { USERS_LIST } from '../src/users/users.service';
import { createVictims } from './victims';
import { cpuSeconds, type LoadResult, loadGenerator, type RequestTemplate, runLoad } from './load';

const env = process.env;
const SIZES = (env.SCALE_SIZES ?? '10000,1000000').split(',').map(Number);
const DURATION = Number(env.SCALE_DURATION ?? 5);
const ROUNDS = Number(env.SCALE_ROUNDS ?? 3);
const ONLY = env.SCALE_ONLY ?? '';
/** Users created per second of a round for the small DELETE to remove: more than an app can delete. */
const VICTIMS_PER_SECOND = 5000;
const CONNECTIONS = 4;
const GENERATOR = loadGenerator();
/** Comments on the one "hot" post that comment inserts and comment pages use. */
const HOT_COMMENTS = Number(env.SCALE_HOT_COMMENTS ?? 10_000);
/** Posts of the user that the "big delete" deletes, each with 2 comments, plus as many comments elsewhere. */
const BIG_POSTS = Number(env.SCALE_BIG_POSTS ?? 1000);
const ROOT = join(__dirname, '..');
const WORK = join(tmpdir(), `nest-typeorm-users-scale-${randomUUID()}`);
const CURSOR_SECRET = randomBytes(16).toString('hex');
const JWT_SECRET = randomBytes(48).toString('base64url');
// A new admin per run: the databases are reused, and an existing account keeps its password.
const ADMIN = {
  email: `scale-admin-${randomUUID()}@example.com`,
  name: 'Scale Admin',
  password: randomBytes(24).toString('base64url'),
};
const cursors = new CursorCodec(CURSOR_SECRET);

if (!SIZES.every((n) => Number.isInteger(n) && n >= 100) || SIZES.length !== 2) {
  throw new Error('SCALE_SIZES takes two user counts of at least 100, e.g. 10000,1000000');
}

/** One database of one size, with the app running on it. */
interface Side {
  users: number;
  url: string;
  db: DataSource;
  app?: ChildProcess;
  base: string;
  authorization: string;
  hotPost: number;
  lists: Map<string, string>;
}

interface Endpoint {
  name: string;
  /** The requests of one load on `side`; `run` is unique per load. */
  template: (side: Side, run: number) => RequestTemplate | Promise<RequestTemplate>;
}

/** A file of request paths, used round-robin by the generator (`{listed}`). */
function listFile(side: Side, name: string, lines: string[]): string {
  const file = join(WORK, `${side.users}-${name.replace(/\W+/g, '_')}.txt`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

/** `count` evenly spread integers from 1 to `max`, in a scattered order. */
function spread(count: number, max: number): number[] {
  return Array.from({ length: count }, (_, i) => 1 + ((i * 7919 + 13) % max));
}

const listed = (file: string): RequestTemplate => ({ method: 'GET', path: '{listed}', tokens: {}, listFile: file });

/** Deep keyset positions of a list, as cursors the app would have issued. */
async function userCursors(side: Side): Promise<string[]> {
  const rows = await side.db.query<{ name: string; id: number }[]>('SELECT name, id FROM users WHERE id = ANY($1)', [
    spread(200, side.users),
  ]);
  return rows.map((row) => cursors.encode(USERS_LIST, [row.name, row.id]));
}

async function postCursors(side: Side, sort: 'title' | '-createdAt'): Promise<string[]> {
  const rows = await side.db.query<{ title: string; createdAt: Date; id: number }[]>(
    'SELECT title, created_at AS "createdAt", id FROM posts WHERE id = ANY($1)',
    [spread(200, side.users * 3)],
  );
  const scope = postsList('posts', { sort });
  return rows.map((row) => cursors.encode(scope, [sort === 'title' ? row.title : row.createdAt, row.id]));
}

const ENDPOINTS: Endpoint[] = [
  {
    name: 'GET /users/{id}',
    template: (s) =>
      listed(
        listFile(
          s,
          'user',
          spread(500, s.users).map((id) => `/users/${id}`),
        ),
      ),
  },
  { name: 'GET /users?limit=20', template: () => ({ method: 'GET', path: '/users?limit=20', tokens: {} }) },
  {
    name: 'GET /users?limit=20&cursor= (deep)',
    template: async (s) =>
      listed(
        listFile(
          s,
          'users-cursor',
          (await userCursors(s)).map((c) => `/users?limit=20&cursor=${c}`),
        ),
      ),
  },
  {
    name: `GET /users?limit=20&offset=${MAX_OFFSET} (the largest offset)`,
    template: () => ({ method: 'GET', path: `/users?limit=20&offset=${MAX_OFFSET}`, tokens: {} }),
  },
  { name: 'GET /posts?limit=20', template: () => ({ method: 'GET', path: '/posts?limit=20', tokens: {} }) },
  {
    name: 'GET /posts?limit=20&sort=title',
    template: () => ({ method: 'GET', path: '/posts?limit=20&sort=title', tokens: {} }),
  },
  {
    name: 'GET /posts?limit=20&cursor= (deep, -createdAt)',
    template: async (s) =>
      listed(
        listFile(
          s,
          'posts-cursor',
          (await postCursors(s, '-createdAt')).map((c) => `/posts?limit=20&cursor=${c}`),
        ),
      ),
  },
  {
    name: 'GET /posts?limit=20&sort=title&cursor= (deep)',
    template: async (s) =>
      listed(
        listFile(
          s,
          'posts-title-cursor',
          (await postCursors(s, 'title')).map((c) => `/posts?limit=20&sort=title&cursor=${c}`),
        ),
      ),
  },
  {
    name: 'GET /posts?limit=20&q=Linus (no match)',
    template: () => ({ method: 'GET', path: '/posts?limit=20&q=Linus', tokens: {} }),
  },
  {
    name: 'GET /posts?limit=20&q=indexes (a fifth of all posts)',
    template: () => ({ method: 'GET', path: '/posts?limit=20&q=indexes', tokens: {} }),
  },
  {
    name: 'GET /posts?limit=20&sort=title&q=haystack (one match)',
    template: () => ({ method: 'GET', path: '/posts?limit=20&sort=title&q=haystack', tokens: {} }),
  },
  {
    name: 'GET /posts?limit=20&q=s (1 character: a 1,000-post window per request)',
    template: () => ({ method: 'GET', path: '/posts?limit=20&q=s', tokens: {} }),
  },
  {
    name: 'GET /posts?limit=20&sort=title&q=es%20%233 (many matches, clustered late in title order)',
    template: () => ({ method: 'GET', path: '/posts?limit=20&sort=title&q=es%20%233', tokens: {} }),
  },
  {
    name: 'GET /posts?limit=20&authorId=',
    template: (s) =>
      listed(
        listFile(
          s,
          'posts-author',
          spread(500, s.users).map((id) => `/posts?limit=20&authorId=${id}`),
        ),
      ),
  },
  {
    name: 'GET /users/{id}/posts',
    template: (s) =>
      listed(
        listFile(
          s,
          'user-posts',
          spread(500, s.users).map((id) => `/users/${id}/posts`),
        ),
      ),
  },
  {
    name: 'GET /posts/{id}',
    template: (s) =>
      listed(
        listFile(
          s,
          'post',
          spread(500, s.users * 3).map((id) => `/posts/${id}`),
        ),
      ),
  },
  {
    name: `GET /posts/{hot}/comments?limit=20&cursor= (${HOT_COMMENTS} comments)`,
    template: async (s) => {
      const rows = await s.db.query<{ createdAt: Date; id: number }[]>(
        'SELECT created_at AS "createdAt", id FROM comments WHERE post_id = $1 ORDER BY created_at, id',
        [s.hotPost],
      );
      const scope = commentsList(s.hotPost);
      const paths = spread(200, rows.length).map((i) => {
        const row = rows[i - 1];
        return `/posts/${s.hotPost}/comments?limit=20&cursor=${cursors.encode(scope, [row.createdAt, row.id])}`;
      });
      return listed(listFile(s, 'hot-comments', paths));
    },
  },
  {
    name: 'GET /comments/{id}',
    template: (s) =>
      listed(
        listFile(
          s,
          'comment',
          spread(500, s.users * 6).map((id) => `/comments/${id}`),
        ),
      ),
  },
  {
    name: 'POST /users',
    template: (_s, run) => ({
      method: 'POST',
      path: '/users',
      body: '{"name":"Scale {n}","email":"scale-{run}-{n}@example.com","password":"correct horse battery staple"}',
      tokens: { n: [1, 0, 0], run: [0, 0, run] },
    }),
  },
  {
    name: 'PATCH /users/{id}',
    template: (s) => ({
      method: 'PATCH',
      path: '/users/{user}',
      body: '{"name":"Renamed {n}"}',
      tokens: { user: [7919, s.users, 1], n: [1, 0, 0] },
      authorization: s.authorization,
    }),
  },
  {
    name: 'POST /users/{id}/posts',
    template: (s) => ({
      method: 'POST',
      path: '/users/{user}/posts',
      body: '{"title":"Scale post {n}","body":"Written by the scale bench."}',
      tokens: { user: [7919, s.users, 1], n: [1, 0, 0] },
      authorization: s.authorization,
    }),
  },
  {
    name: `POST /posts/{hot}/comments (a post with ${HOT_COMMENTS}+ comments)`,
    template: (s) => ({
      method: 'POST',
      path: `/posts/${s.hotPost}/comments`,
      body: '{"body":"Comment {n}"}',
      tokens: { n: [1, 0, 0] },
      authorization: s.authorization,
    }),
  },
  {
    name: 'DELETE /users/{id} (profile, 1 post, 1 comment)',
    template: async (s) => ({
      method: 'DELETE',
      path: '/users/{victim}',
      // More victims than a round can delete: one app answers ~1,200 deletes a second on this machine.
      tokens: { victim: [1, 0, await createVictims(s.db, VICTIMS_PER_SECOND * DURATION)] },
      authorization: s.authorization,
    }),
  },
];

/**
 * A user with BIG_POSTS posts, 2 comments on each (by others) and BIG_POSTS comments on others'
 * posts: what DELETE /users/{id} cascades through. Returns its id.
 */
async function createBigUser(side: Side): Promise<number> {
  const [{ id }] = await side.db.query<{ id: number }[]>(
    `INSERT INTO users (name, email) VALUES ('Prolific', 'prolific-' || $1 || '@example.com') RETURNING id`,
    [randomUUID()],
  );
  await side.db.query(
    `INSERT INTO posts (author_id, title, body) SELECT $1, 'Prolific #' || n, 'Much to say' FROM generate_series(1, $2::int) AS n`,
    [id, BIG_POSTS],
  );
  await side.db.query(
    `INSERT INTO comments (post_id, author_id, body)
     SELECT p.id, 1 + (p.id * 7 + c) % $2::int, 'Reply' FROM posts p, generate_series(1, 2) AS c WHERE p.author_id = $1`,
    [id, side.users],
  );
  await side.db.query(
    `INSERT INTO comments (post_id, author_id, body) SELECT 1 + (n * 7919) % $3::int, $1, 'Elsewhere' FROM generate_series(1, $2::int) AS n`,
    [id, BIG_POSTS, side.users * 3],
  );
  return id;
}

/** CPU seconds of PostgreSQL's backends serving `database` (0 when the server's /proc is not readable). */
async function dbCpuSeconds(side: Side): Promise<number> {
  const rows = await side.db.query<{ pid: number }[]>(
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'",
  );
  return rows.reduce((sum, { pid }) => sum + cpuSeconds(pid), 0);
}

interface Measurement extends LoadResult {
  cpuPerRequest: number;
  dbPerRequest: number;
}

async function measure(side: Side, template: RequestTemplate, seconds: number): Promise<Measurement> {
  const pid = side.app!.pid!;
  const [cpuBefore, dbBefore] = [cpuSeconds(pid), await dbCpuSeconds(side)];
  const load = await runLoad(GENERATOR, side.base, template, CONNECTIONS, seconds);
  const requests = Math.max(1, load.requests);
  return {
    ...load,
    cpuPerRequest: ((cpuSeconds(pid) - cpuBefore) / requests) * 1e6,
    dbPerRequest: (((await dbCpuSeconds(side)) - dbBefore) / requests) * 1e6,
  };
}

async function prepare(users: number, url: string): Promise<Side> {
  const db = new DataSource({
    ...dataSourceOptions({ ...loadConfig({}).database, url, migrationsRun: false, statementTimeoutMs: 0 }),
    logger: undefined,
    maxQueryExecutionTime: undefined,
    logging: false,
  });
  await db.initialize();
  await db.runMigrations();
  const started = Date.now();
  const added = await seed(db, { users, postsPerUser: 3, commentsPerPost: 2 }, (done, total) =>
    console.log(
      `  ${url.replace(/\/\/[^@]*@/, '//')}: ${done}/${total} users after ${Math.round((Date.now() - started) / 1000)} s`,
    ),
  );
  if (added.users) console.log(`  seeded ${added.users} users in ${Math.round((Date.now() - started) / 1000)} s`);
  // The post that comment inserts and comment pages use: a user and a post of their own, dated and
  // titled mid-list, so no first page of any list carries its comments.
  await db.query(
    `INSERT INTO users (name, email) SELECT 'Hot Author', 'hot-author@example.com'
     WHERE NOT EXISTS (SELECT 1 FROM users WHERE email = 'hot-author@example.com')`,
  );
  await db.query(
    `INSERT INTO posts (author_id, title, body, created_at)
     SELECT (SELECT id FROM users WHERE email = 'hot-author@example.com'), 'Notes on hotness', 'Much discussed',
            now()
     WHERE NOT EXISTS (SELECT 1 FROM posts WHERE title = 'Notes on hotness')`,
  );
  const [{ hotPost }] = await db.query<{ hotPost: number }[]>(
    `SELECT id AS "hotPost" FROM posts WHERE title = 'Notes on hotness'`,
  );
  // Dated as the posts of the seed's middle user: ids (and so a max(id) / 2) also count rows a run deleted.
  await db.query(
    `UPDATE posts SET created_at = (SELECT min(p.created_at) FROM posts p JOIN users u ON u.id = p.author_id WHERE u.email = $2)
     WHERE id = $1`,
    [hotPost, `seed-${Math.floor(users / 2)}@example.com`],
  );
  await db.query(
    `INSERT INTO comments (post_id, author_id, body)
     SELECT $1, 1 + n % $3::int, 'Hot ' || n FROM generate_series(1, $2::int - (SELECT count(*)::int FROM comments WHERE post_id = $1)) AS n`,
    [hotPost, HOT_COMMENTS, users],
  );
  await db.query(
    `INSERT INTO posts (author_id, title, body) SELECT min(id), 'Needle in the haystack', 'Found it'
     FROM users HAVING NOT EXISTS (SELECT 1 FROM posts WHERE title = 'Needle in the haystack')`,
  );
  await ensureAdmin(db, new PasswordHasher(), ADMIN, 'always');
  await db.query('VACUUM ANALYZE');
  return { users, url, db, base: '', authorization: '', hotPost, lists: new Map() };
}

async function startApp(side: Side): Promise<void> {
  const port = await findFreePort();
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    config: { node_flags: string; malloc_env: string };
  };
  const child = spawn(process.execPath, [...pkg.config.node_flags.split(' '), join('dist', 'main.js')], {
    cwd: ROOT,
    env: {
      ...env,
      ...Object.fromEntries(pkg.config.malloc_env.split(' ').map((pair) => pair.split('='))),
      NODE_OPTIONS: '',
      NODE_ENV: 'production',
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: side.url,
      DB_MIGRATIONS_RUN: 'false',
      LOG_LEVEL: 'silent',
      RATE_LIMIT_MAX: '0',
      CURSOR_SECRET,
      JWT_SECRET,
      ACCESS_TOKEN_TTL_SECONDS: '86400',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.on('data', (chunk) => (log += chunk));
  child.stderr.on('data', (chunk) => (log += chunk));
  side.app = child;
  side.base = `http://127.0.0.1:${port}`;
  for (let waited = 0; ; waited += 200) {
    if (child.exitCode !== null || waited > 60_000) throw new Error(`the app did not start:\n${log}`);
    if (
      await fetch(`${side.base}/health/ready`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    await sleep(200);
  }
  const res = await fetch(`${side.base}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: ADMIN.email, password: ADMIN.password }),
  });
  if (!res.ok) throw new Error(`login failed: ${res.status} ${await res.text()}`);
  side.authorization = `Bearer ${((await res.json()) as { accessToken: string }).accessToken}`;
}

/** DELETE of a user with many posts and comments, timed one at a time: how long its transaction holds the locks. */
async function bigDeletes(side: Side, times: number): Promise<number[]> {
  const durations: number[] = [];
  for (let i = 0; i < times; i++) {
    const id = await createBigUser(side);
    const started = process.hrtime.bigint();
    const res = await fetch(`${side.base}/users/${id}`, {
      method: 'DELETE',
      headers: { authorization: side.authorization },
    });
    await res.arrayBuffer();
    durations.push(Number(process.hrtime.bigint() - started) / 1e6);
    if (!res.ok) throw new Error(`big delete answered ${res.status}`);
  }
  return durations;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const fmt = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : 'n/a');

/** Replaces what lies between `<!-- scale-bench:begin -->` and `<!-- scale-bench:end -->` in `file`. */
function writeSection(file: string, markdown: string): void {
  if (!existsSync(file)) return;
  const text = readFileSync(file, 'utf8');
  const [begin, end] = ['<!-- scale-bench:begin -->', '<!-- scale-bench:end -->'];
  const from = text.indexOf(begin);
  const to = text.indexOf(end);
  if (from < 0 || to < from) return;
  writeFileSync(file, `${text.slice(0, from + begin.length)}\n${markdown}\n${text.slice(to)}`);
}

async function main(): Promise<void> {
  mkdirSync(WORK, { recursive: true });
  let embedded: RunningPostgres | undefined;
  let urls = env.SCALE_DATABASE_URLS?.split(',');
  if (urls && urls.length !== SIZES.length)
    throw new Error('SCALE_DATABASE_URLS takes one URL per size of SCALE_SIZES');
  if (!urls) {
    embedded = await startEmbeddedPostgres({ dataDir: join(WORK, 'pgdata'), port: 0, ephemeral: true });
    const admin = new DataSource({ type: 'postgres', url: embedded.url });
    await admin.initialize();
    for (const users of SIZES) await admin.query(`CREATE DATABASE scale_${users}`);
    await admin.destroy();
    urls = SIZES.map((users) => embedded!.url.replace(/\/[^/?]*(\?|$)/, `/scale_${users}$1`));
  }
  const sides: Side[] = [];
  try {
    console.log(
      `scale bench: ${SIZES.join(' and ')} users × 3 posts × 2 comments; ${GENERATOR}, ${CONNECTIONS} connections`,
    );
    for (const [i, users] of SIZES.entries()) sides.push(await prepare(users, urls[i]));
    for (const side of sides) await startApp(side);
    const [small, large] = sides;
    const rows: { name: string; runs: Record<'small' | 'large', Measurement[]> }[] = [];
    let run = 0;
    for (const endpoint of ENDPOINTS.filter(({ name }) => name.includes(ONLY))) {
      console.log(`\n${endpoint.name}`);
      const templates = new Map<Side, RequestTemplate>();
      for (const side of sides) {
        templates.set(side, await endpoint.template(side, ++run));
        await runLoad(GENERATOR, side.base, await endpoint.template(side, ++run), CONNECTIONS, 1); // warm-up
      }
      const runs = { small: [] as Measurement[], large: [] as Measurement[] };
      for (let round = 0; round < ROUNDS; round++) {
        const order = round % 2 === 0 ? [small, large] : [large, small];
        for (const side of order) {
          const t = endpoint.name.startsWith('GET') ? templates.get(side)! : await endpoint.template(side, ++run);
          const m = await measure(side, t, DURATION);
          (side === small ? runs.small : runs.large).push(m);
          console.log(
            `  round ${round + 1} ${String(side.users).padStart(8)} users: ${fmt(m.rps, 0)} req/s  p50 ${fmt(m.p50)} ms  p99 ${fmt(m.p99)} ms  ` +
              `app ${fmt(m.cpuPerRequest, 0)} µs/req  db ${fmt(m.dbPerRequest, 0)} µs/req  non-2xx ${m.non2xx + m.errors}`,
          );
        }
      }
      rows.push({ name: endpoint.name, runs });
    }
    // The big delete once the loads are done (SCALE_ONLY skips it): three per size, one at a time.
    const deletes = ONLY ? undefined : { small: await bigDeletes(small, 3), large: await bigDeletes(large, 3) };

    const of = (list: Measurement[], value: (m: Measurement) => number, digits = 1) =>
      fmt(median(list.map(value)), digits);
    // A round in which a side completed no request (a short SCALE_DURATION for a slow write) has no
    // latency: it gives no ratio, rather than dividing by zero. No round with both: NaN, shown n/a.
    const measured = (m: Measurement) => m.requests > 0;
    const ratio = (r: Record<'small' | 'large', Measurement[]>, value: (m: Measurement) => number) => {
      const ratios = r.large.flatMap((m, i) =>
        measured(m) && measured(r.small[i]) ? [value(m) / Math.max(value(r.small[i]), 1e-9)] : [],
      );
      return ratios.length ? median(ratios) : NaN;
    };
    const [s, l] = SIZES.map((n) => n.toLocaleString('en-US'));
    const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
    const table = [
      `| endpoint | p50 ms ${s} / ${l} | p99 ms ${s} / ${l} | **p99 ${l} ÷ ${s}** (≤ 2) | req/s ${s} / ${l} | app CPU µs/req ${s} / ${l} | db CPU µs/req ${s} / ${l} |`,
      '|---|---|---|---|---|---|---|',
      ...rows.map(({ name, runs: r }) => {
        const p99 = ratio(r, (m) => m.p99);
        return `| ${name} | ${of(r.small, (m) => m.p50)} / ${of(r.large, (m) => m.p50)} | ${of(r.small, (m) => m.p99)} / ${of(r.large, (m) => m.p99)} | **${fmt(p99, 2)}**${p99 > 2 ? ' ✗' : ''} | ${of(r.small, (m) => m.rps, 0)} / ${of(r.large, (m) => m.rps, 0)} | ${of(r.small, (m) => m.cpuPerRequest, 0)} / ${of(r.large, (m) => m.cpuPerRequest, 0)} | ${of(r.small, (m) => m.dbPerRequest, 0)} / ${of(r.large, (m) => m.dbPerRequest, 0)} |`;
      }),
      ...(deletes
        ? [
            `| DELETE /users/{id} of a user with ${BIG_POSTS} posts, ${2 * BIG_POSTS} comments on them and ${BIG_POSTS} elsewhere (one at a time; = how long its transaction holds the locks) | ${fmt(median(deletes.small))} / ${fmt(median(deletes.large))} | max ${fmt(Math.max(...deletes.small))} / ${fmt(Math.max(...deletes.large))} | **${fmt(median(deletes.large) / median(deletes.small), 2)}** (medians) | | | |`,
          ]
        : []),
    ].join('\n');
    const failures = rows.filter(({ runs: r }) => ratio(r, (m) => m.p99) > 2).map(({ name }) => name);
    const unmeasured = rows.filter(({ runs: r }) => Number.isNaN(ratio(r, (m) => m.p99))).map(({ name }) => name);
    const invalid = rows.filter(({ runs: r }) => [...r.small, ...r.large].some((m) => m.non2xx + m.errors > 0));
    const markdown =
      `${table}\n\n` +
      `${new Date().toISOString().slice(0, 10)}, \`SCALE_SIZES=${SIZES.join(',')} SCALE_ROUNDS=${ROUNDS} SCALE_DURATION=${DURATION} npm run bench:scale\`` +
      `${env.SCALE_DATABASE_URLS ? ' on a PostgreSQL server of this machine' : ' on the embedded PostgreSQL'}: ` +
      `${SIZES.map((n) => `${n.toLocaleString('en-US')} users × 3 posts × 2 comments`).join(' and ')}, one app (production mode, logging off) per database, ` +
      `${GENERATOR} with ${CONNECTIONS} connections, ${ROUNDS} interleaved rounds of ${DURATION} s; medians over rounds, the ratio the median of per-round ratios. ` +
      `db CPU: PostgreSQL's backends of that database (/proc). Machine: ${machine}. ` +
      (failures.length ? `Over the 2× target: ${failures.join('; ')}.` : 'Every endpoint within the 2× target.') +
      (unmeasured.length
        ? ` No request completed in a round on both sizes (raise SCALE_DURATION): ${unmeasured.join('; ')}.`
        : '') +
      (invalid.length ? ` Non-2xx answers on: ${invalid.map((r) => r.name).join('; ')}.` : '') +
      '\n';
    mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
    writeFileSync(join(ROOT, 'bench', 'results', 'scale.md'), markdown);
    writeFileSync(
      join(ROOT, 'bench', 'results', 'scale.json'),
      `${JSON.stringify({ date: new Date().toISOString(), machine, sizes: SIZES, rounds: ROUNDS, duration: DURATION, rows, deletes }, null, 2)}\n`,
    );
    if (!env.SCALE_NO_DOCS) {
      writeSection(join(ROOT, 'BENCHMARKS.md'), markdown);
      writeSection(join(ROOT, 'docs', 'scale.md'), markdown);
    }
    console.log(`\n${markdown}`);
    if (invalid.length) throw new Error(`invalid run: non-2xx answers on ${invalid.map((r) => r.name).join(', ')}`);
  } finally {
    for (const side of sides) {
      if (side.app && side.app.exitCode === null) {
        side.app.kill('SIGTERM');
        await once(side.app, 'exit');
      }
      if (side.db.isInitialized) {
        // What the run wrote goes, so a reused database keeps its size (DELETE cascades).
        await side.db.query(
          `DELETE FROM users WHERE email LIKE 'victim-%' OR email LIKE 'scale-%' OR email LIKE 'prolific-%'`,
        );
        await side.db.query(`DELETE FROM posts WHERE title LIKE 'Scale post %'`);
        await side.db.destroy();
      }
    }
    await embedded?.stop();
    rmSync(WORK, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
