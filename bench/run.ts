/**
 * `npm run bench`: the built app, run as `npm run start:prod` runs it, with logging off and with the
 * default request logging, against the floor (bench/floor.ts: node:http + pg, the same SQL, the same
 * bytes), on a seeded database, in interleaved rounds. Load comes from `wrk` when installed, else
 * autocannon in worker threads (bench/load.ts); each server's CPU per request is read from /proc.
 * Before measuring it checks, per endpoint, that the app and the floor send the same statements and
 * answer the same bytes (GETs; the same JSON shape for writes), and counts queries per request.
 * Reads are anonymous (public, as clients read); sign-ups send a password (argon2id on both sides);
 * PATCH and DELETE send the bearer token of one admin, created before the servers start and logged in
 * once through the app: every write pays the JWT check and the session lookup, and no extra login.
 *
 * Settings (environment): BENCH_DURATION seconds per measurement (5), BENCH_ROUNDS (3),
 * BENCH_USERS (1000; × 10 posts × 5 comments), BENCH_DATABASE_URL (default: a throwaway embedded
 * PostgreSQL), BENCH_CONNECTIONS_SCALE (1; multiplies every endpoint's connection count),
 * BENCH_ONLY (run only the endpoints whose name contains it, e.g. `GET /users/{id}`),
 * BENCH_GENERATOR (`wrk` or `autocannon`; default wrk when installed), BENCH_APP_NODE_ARGS (extra
 * node flags for the apps, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`), BENCH_METRICS (`on`, the
 * default as in production; `off`: the apps without Prometheus metrics; `compare`: a fourth server,
 * the app with metrics off, measured in the same interleaved rounds, and a column "metrics cost" =
 * req/s and CPU per request of the app (metrics on) relative to it — adjacent in time, so steadier on a
 * shared machine than two separate runs), BENCH_BASELINE (the directory of another checkout, built and
 * installed, e.g. `git worktree add /tmp/base main~3 && cd /tmp/base && npm ci && npm run build`: its
 * app runs as a further server, logging off, in the same rounds, and a column "app ÷ baseline" shows
 * whether a change made the app faster or slower; its floor runs too (**b-floor**: the baseline's SQL
 * by hand), and a column "app/floor ÷ base/b-floor" shows the app's cost over its floor now relative
 * to before, without what a change of the SQL itself gained or lost). Writes bench/results/latest.json
 * and latest.md.
 */
import 'reflect-metadata';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DataSource } from 'typeorm';
import { loadConfig } from '../src/config/app.config';
import { dataSourceOptions } from '../src/database/data-source.options';
import { findFreePort, startEmbeddedPostgres, type RunningPostgres } from '../src/database/dialects/embedded-postgres';
import { seed } from '../src/database/seed';
import { MAX_OFFSET } from '../src/http/pagination.query';
import { ensureAdmin } from '../src/auth/admin-bootstrap';
import { PasswordHasher } from '../src/auth/passwords';
import {
  cpuSeconds,
  type LoadResult,
  loadGenerator,
  nthRequest,
  type RequestTemplate,
  runLoad,
  treeCpuSeconds,
} from './load';
import { createVictims } from './victims';

const env = process.env;
const DURATION = Number(env.BENCH_DURATION ?? 5);
const ROUNDS = Number(env.BENCH_ROUNDS ?? 3);
const USERS = Number(env.BENCH_USERS ?? 1000);
const POSTS = USERS * 10;
const SCALE = Number(env.BENCH_CONNECTIONS_SCALE ?? 1);
const ONLY = env.BENCH_ONLY ?? '';
const METRICS = env.BENCH_METRICS ?? 'on';
if (!['on', 'off', 'compare'].includes(METRICS))
  throw new Error(`BENCH_METRICS must be on, off or compare, not ${METRICS}`);
const GENERATOR = (env.BENCH_GENERATOR as 'wrk' | 'autocannon' | undefined) ?? loadGenerator();
/** Seconds of unmeasured load on each server right before each of its measurements (see the rounds). */
const SETTLE = 1;
const POOL_SIZE = 10;
const POOL_OVERFLOW = 20;
/**
 * Users created for DELETE per second of load: before any measurement more than any server deletes,
 * then three times the fastest rate seen (so a run never runs out, nor writes needless rows).
 */
let victimsPerSecond = 5000;
const ROOT = join(__dirname, '..');
const WORK = join(tmpdir(), `nest-typeorm-users-bench-${randomUUID()}`);
const CURSOR_SECRET = randomBytes(16).toString('hex'); // shared by both apps and the floor
const JWT_SECRET = randomBytes(48).toString('base64url'); // likewise: a token of one is valid at all
const ADMIN = {
  email: 'bench-admin@example.com',
  name: 'Bench Admin',
  password: randomBytes(24).toString('base64url'),
};
/** `Bearer <access token>` of ADMIN, from POST /auth/login once the app is up (see main). */
let adminAuthorization = '';

const BASELINE = env.BENCH_BASELINE;
/**
 * `bare`: the app with metrics off (BENCH_METRICS=compare); `base` and `bfloor`: BENCH_BASELINE's app
 * and its floor (the baseline's SQL, by hand).
 */
type Server = 'app' | 'log' | 'floor' | 'bare' | 'base' | 'bfloor';
const LABEL: Record<Server, string> = {
  app: 'app',
  log: 'app+log',
  floor: 'floor',
  bare: 'app-met',
  base: 'base',
  bfloor: 'b-floor',
};
/**
 * The order of the first round (each further round reverses it): without a baseline, the floor between
 * the apps; with one, each pair that a ratio compares is adjacent (floor, app, base, its floor), so a drift in
 * the machine's speed within a round hits both sides of each ratio alike.
 */
const SERVERS: Server[] = BASELINE
  ? ['floor', 'app', 'base', 'bfloor', 'log', ...(METRICS === 'compare' ? (['bare'] as const) : [])]
  : ['app', ...(METRICS === 'compare' ? (['bare'] as const) : []), 'floor', 'log'];

interface Endpoint {
  name: string;
  connections: number;
  /** The requests of one load; `run` is unique per load, `victims` the first id of fresh users to delete. */
  template: (run: number, victims: number) => RequestTemplate;
  deletes?: boolean;
}

let cursorPaths = '';
const ENDPOINTS: Endpoint[] = [
  {
    name: 'GET /users/{id} (10 posts, 50 comments)',
    connections: 32,
    template: () => ({ method: 'GET', path: '/users/{user}', tokens: { user: [1, USERS, 1] } }),
  },
  {
    name: 'GET /users?limit=20 (nested)',
    connections: 8,
    template: () => ({
      method: 'GET',
      path: '/users?limit=20&offset={offset}',
      tokens: { offset: [20, Math.max(1, Math.min(USERS - 20, MAX_OFFSET)), 0] }, // beyond MAX_OFFSET: a 400
    }),
  },
  {
    name: 'POST /users',
    connections: 16,
    template: (run) => ({
      method: 'POST',
      path: '/users',
      body: '{"name":"Bench {n}","email":"bench-{run}-{n}@example.com","password":"correct horse battery staple"}',
      tokens: { n: [1, 0, 0], run: [0, 0, run] },
    }),
  },
  {
    name: 'PATCH /users/{id}',
    connections: 16,
    template: () => ({
      method: 'PATCH',
      path: '/users/{user}',
      body: '{"name":"Renamed {n}"}',
      tokens: { user: [1, USERS, 1], n: [1, 0, 0] },
      authorization: adminAuthorization,
    }),
  },
  {
    name: 'DELETE /users/{id} (profile, 1 post, 1 comment)',
    connections: 16,
    deletes: true,
    template: (_run, victims) => ({
      method: 'DELETE',
      path: '/users/{victim}',
      tokens: { victim: [1, 0, victims] },
      authorization: adminAuthorization,
    }),
  },
  {
    name: 'GET /posts/{id} (5 comments)',
    connections: 32,
    template: () => ({ method: 'GET', path: '/posts/{post}', tokens: { post: [1, POSTS, 1] } }),
  },
  {
    name: 'GET /posts/{id}/comments?limit=2&cursor= (keyset)',
    connections: 32,
    template: () => ({ method: 'GET', path: '{listed}', tokens: {}, listFile: cursorPaths }),
  },
];

interface Measurement extends LoadResult {
  /** Server CPU time per request, µs. */
  cpuPerRequest: number;
  /** Server CPU time ÷ wall time (1 = one core busy). */
  cpuUse: number;
  /** PostgreSQL's CPU time per request, µs (embedded database only). */
  dbPerRequest?: number;
}

interface Running {
  child: ChildProcess;
  base: string;
  output: () => string;
}

function start(label: string, args: string[], extraEnv: Record<string, string>, quiet = false, cwd = ROOT): Running {
  // The logging app writes its request log to /dev/null: the cost of writing it is the app's, as in
  // production, with nothing reading it here. Its startup errors still reach stderr.
  const child = spawn(process.execPath, args, {
    cwd,
    env: { ...env, NODE_OPTIONS: '', ...extraEnv },
    stdio: ['ignore', quiet ? openSync('/dev/null', 'w') : 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout?.on('data', (chunk) => (log += chunk));
  child.stderr?.on('data', (chunk) => (log += chunk));
  child.on('exit', (code) => code && console.error(`${label} exited with ${code}`));
  return { child, base: `http://127.0.0.1:${extraEnv.PORT}`, output: () => log };
}

async function waitReady(server: Running, path: string): Promise<void> {
  for (let waited = 0; waited < 60_000; waited += 100) {
    if (server.child.exitCode !== null) throw new Error(`server exited:\n${server.output()}`);
    if (
      await fetch(server.base + path).then(
        (r) => r.ok,
        () => false,
      )
    )
      return;
    await sleep(100);
  }
  throw new Error(`server not ready:\n${server.output()}`);
}

async function stop(server: Running): Promise<void> {
  if (server.child.exitCode !== null) return;
  server.child.kill('SIGTERM');
  await once(server.child, 'exit');
}

/**
 * `config.node_flags` and `config.malloc_env` of package.json, which `npm start` and `npm run start:prod`
 * pass to node: its flags, and `NAME=value` environment variables for the C library's allocator.
 */
function productionNode(root = ROOT): { flags: string[]; env: Record<string, string> } {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    config?: { node_flags?: string; malloc_env?: string };
  };
  const words = (text = '') => text.split(' ').filter(Boolean);
  return {
    flags: [...words(pkg.config?.node_flags), ...words(env.BENCH_APP_NODE_ARGS)],
    env: Object.fromEntries(words(pkg.config?.malloc_env).map((pair) => pair.split('=') as [string, string])),
  };
}

/** The floor (`bench/floor.ts`) of the checkout `cwd`, with the apps' pool size and secrets. */
async function startFloor(label: string, url: string, cwd = ROOT): Promise<Running> {
  return start(
    label,
    ['-r', 'ts-node/register/transpile-only', join('bench', 'floor.ts')],
    {
      PORT: String(await freshPort()),
      DATABASE_URL: url,
      POOL_MAX: String(POOL_SIZE + POOL_OVERFLOW),
      CURSOR_SECRET,
      JWT_SECRET,
    },
    false,
    cwd,
  );
}

/**
 * The app of the checkout `cwd` as its `npm run start:prod` runs it (NODE_ENV=production, that
 * package's node flags and malloc_env).
 */
function startApp(
  label: string,
  port: number,
  url: string,
  extraEnv: Record<string, string>,
  quiet = false,
  cwd = ROOT,
) {
  const node = productionNode(cwd);
  return start(
    label,
    [...node.flags, join('dist', 'main.js')],
    {
      ...node.env,
      NODE_ENV: 'production',
      PORT: String(port),
      DATABASE_URL: url,
      DB_MIGRATIONS_RUN: 'false',
      RATE_LIMIT_MAX: '0',
      DB_POOL_SIZE: String(POOL_SIZE),
      DB_POOL_MAX_OVERFLOW: String(POOL_OVERFLOW),
      CURSOR_SECRET,
      JWT_SECRET,
      ACCESS_TOKEN_TTL_SECONDS: '86400', // the longest allowed: the admin's one token outlasts any run
      METRICS_ENABLED: METRICS === 'off' ? 'false' : 'true',
      // Sign-ups queue their verification mail (two INSERTs in their transaction, measured); delivering
      // it would write an .eml file per sign-up into ./.data/mail, which the floor has no twin of.
      MAIL_WORKER_ENABLED: 'false',
      ...extraEnv,
    },
    quiet,
    cwd,
  );
}

/** Peak resident set size of a process (Linux VmHWM), in MB. */
function peakRssMb(pid: number): number | undefined {
  try {
    const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Math.round(Number(kb) / 1024) : undefined;
  } catch {
    return undefined;
  }
}

let runCounter = 0;
/** The template of one load (or sample) of an endpoint, with its own run id and fresh victims. */
async function templateFor(endpoint: Endpoint, db: DataSource, seconds: number): Promise<RequestTemplate> {
  const victims = endpoint.deletes ? await createVictims(db, Math.ceil(victimsPerSecond * seconds)) : 0;
  if (endpoint.deletes && env.BENCH_DEBUG) console.log(`  created users to delete from id ${victims}`);
  return endpoint.template(++runCounter, victims);
}

interface Check {
  queries: { app: number; floor: number };
  sameSql: boolean;
  sameBody: boolean;
  notes: string[];
}

/** A JSON value with every leaf replaced by its type: what writes must agree on. */
function shape(value: unknown): unknown {
  if (Array.isArray(value)) return value.length ? [shape(value[0])] : [];
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, shape(item)]));
  return value === null ? null : typeof value;
}

const normalizeSql = (sql: string) => sql.replace(/\s+/g, ' ').trim();

/**
 * Sends the same sample requests to the app (an extra instance with the query log on, each line
 * tagged with the request id) and to the floor, then compares: queries per request, the distinct
 * statements (text, parameters aside) and the bodies (bytes for GET and DELETE; JSON shape for
 * POST/PATCH, whose ids and timestamps differ).
 */
async function checkEquivalence(db: DataSource, url: string, floor: Running): Promise<Map<string, Check>> {
  const counter = startApp('app (query log)', await freshPort(), url, {
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'info',
    DB_LOGGING: 'true',
  });
  await waitReady(counter, '/health/ready');
  const samples = 5;
  const checks = new Map<string, Check>();
  const appIds = new Map<string, string[]>();
  const floorSql = new Map<string, string[]>();
  for (const endpoint of ENDPOINTS) {
    const bodies: Record<'app' | 'floor', string[]> = { app: [], floor: [] };
    const ids: string[] = [];
    let floorQueries = 0;
    for (const server of ['app', 'floor'] as const) {
      const template = await templateFor(endpoint, db, 0.001);
      const base = server === 'app' ? counter.base : floor.base;
      const before = await floorStats(floor.base);
      for (let n = 0; n < samples; n++) {
        const { method, path, body, headers } = nthRequest(template, n);
        const id = `check-${randomUUID()}`;
        ids.push(id);
        const res = await fetch(base + path, { method, body, headers: { ...headers, 'x-request-id': id } });
        const text = await res.text();
        bodies[server].push(res.ok ? text : `${res.status} ${text}`);
      }
      const after = await floorStats(floor.base);
      if (server === 'floor') {
        floorQueries = (after.queries - before.queries) / samples;
        floorSql.set(endpoint.name, after.statements);
      }
    }
    appIds.set(endpoint.name, ids);
    const compareBytes = endpoint.template(0, 0).method === 'GET' || endpoint.deletes;
    const comparable = (body: string) => (compareBytes ? body : JSON.stringify(shape(JSON.parse(body))));
    const same = bodies.app.every((body, i) => {
      try {
        return comparable(body) === comparable(bodies.floor[i]);
      } catch {
        return false; // not JSON: an error
      }
    });
    checks.set(endpoint.name, {
      queries: { app: 0, floor: floorQueries },
      sameSql: false,
      sameBody: same,
      notes: same
        ? []
        : [`body differs: app ${bodies.app[0].slice(0, 300)} … floor ${bodies.floor[0].slice(0, 300)} …`],
    });
  }
  await stop(counter);
  const statements = new Map<string, string[]>();
  for (const line of counter.output().split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { context?: string; requestId?: string; msg?: string };
    if (entry.context !== 'Database' || !entry.requestId || !entry.msg) continue;
    const list = statements.get(entry.requestId) ?? [];
    list.push(normalizeSql(entry.msg.replace(/ -- \[.*$/s, '')));
    statements.set(entry.requestId, list);
  }
  for (const [name, ids] of appIds) {
    const check = checks.get(name)!;
    const appStatements = ids.flatMap((id) => statements.get(id) ?? []);
    check.queries.app = appStatements.length / samples;
    const distinct = (list: string[]) => [...new Set(list)].sort();
    const app = distinct(appStatements);
    const floorStatements = distinct((floorSql.get(name) ?? []).map(normalizeSql));
    check.sameSql = JSON.stringify(app) === JSON.stringify(floorStatements);
    if (!check.sameSql) {
      check.notes.push(
        `statements differ:\n    app:   ${app.filter((s) => !floorStatements.includes(s)).join('\n           ')}\n    floor: ${floorStatements.filter((s) => !app.includes(s)).join('\n           ')}`,
      );
    }
  }
  return checks;
}

/** The floor's query count, and the statements it sent since the last call. */
async function floorStats(base: string): Promise<{ queries: number; statements: string[] }> {
  return (await (await fetch(`${base}/__stats`)).json()) as { queries: number; statements: string[] };
}

/** POST /auth/login as a client does; returns the access token. */
async function logIn(app: Running, { email, password }: { email: string; password: string }): Promise<string> {
  const res = await fetch(`${app.base}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  if (!res.ok) throw new Error(`login failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { accessToken: string }).accessToken;
}

/** One cursor path per sampled post: page 2 (limit 2) of its comments, from the app's own Link header. */
async function collectCursorPaths(app: Running): Promise<string> {
  const lines: string[] = [];
  for (let post = 1; post <= POSTS; post += Math.max(1, Math.floor(POSTS / 500))) {
    const res = await fetch(`${app.base}/posts/${post}/comments?limit=2`);
    await res.arrayBuffer();
    const next = /<([^>]+)>; rel="next"/.exec(res.headers.get('link') ?? '')?.[1];
    if (!next) throw new Error(`no next page for the comments of post ${post}`);
    lines.push(next);
  }
  const file = join(WORK, 'cursor-paths.txt');
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

const portsHandedOut = new Set<number>();
/**
 * A free TCP port on 127.0.0.1 that this run has not handed out before. The servers are started
 * before any of them binds, and the OS may offer a port again until one does: two servers on one port
 * would leave one of them exited and the other measured twice.
 */
async function freshPort(): Promise<number> {
  for (;;) {
    const port = await findFreePort();
    if (portsHandedOut.has(port)) continue;
    portsHandedOut.add(port);
    return port;
  }
}

/** Runs one load against a server, with its CPU (and the database's) read from /proc around it. */
async function measure(
  server: Running,
  template: RequestTemplate,
  connections: number,
  seconds: number,
  postmaster?: number,
): Promise<Measurement> {
  // A server whose port another of this run's servers answers on would be measured as that one.
  if (server.child.exitCode !== null) throw new Error(`a server exited before its load:\n${server.output()}`);
  const pid = server.child.pid!;
  const [cpuBefore, dbBefore] = [cpuSeconds(pid), postmaster ? treeCpuSeconds(postmaster) : 0];
  const started = process.hrtime.bigint();
  const load = await runLoad(GENERATOR, server.base, template, connections, seconds);
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = cpuSeconds(pid) - cpuBefore;
  const requests = Math.max(1, load.requests);
  return {
    ...load,
    cpuPerRequest: (cpu / requests) * 1e6,
    cpuUse: cpu / wall,
    dbPerRequest: postmaster ? ((treeCpuSeconds(postmaster) - dbBefore) / requests) * 1e6 : undefined,
  };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const fmt = (value: number | undefined, digits = 0) => (value === undefined ? 'n/a' : value.toFixed(digits));
const range = (values: number[], digits = 0) =>
  `${fmt(median(values), digits)} (${fmt(Math.min(...values), digits)}–${fmt(Math.max(...values), digits)})`;

async function main(): Promise<void> {
  mkdirSync(WORK, { recursive: true });
  let embedded: RunningPostgres | undefined;
  let url = env.BENCH_DATABASE_URL;
  if (!url) {
    embedded = await startEmbeddedPostgres({
      dataDir: join(WORK, 'pgdata'),
      port: 0,
      ephemeral: true,
      serverFlags: ['-c', 'max_connections=200'],
    });
    url = embedded.url;
  }
  const postmaster = embedded
    ? Number(readFileSync(join(WORK, 'pgdata', 'postmaster.pid'), 'utf8').split('\n')[0])
    : undefined;
  const servers: Running[] = [];
  const admin = new DataSource({
    ...dataSourceOptions({ ...loadConfig({}).database, url, migrationsRun: false, statementTimeoutMs: 0 }),
    logger: undefined,
    maxQueryExecutionTime: undefined,
    logging: false,
  });
  try {
    console.log(`load generator: ${GENERATOR}; seeding ${USERS} users × 10 posts × 5 comments …`);
    await admin.initialize();
    await admin.query('DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public');
    await admin.runMigrations();
    await seed(admin, { users: USERS, postsPerUser: 10, commentsPerPost: 5 });
    await ensureAdmin(admin, new PasswordHasher(), ADMIN, 'always'); // after the seed: ids 1…USERS stay ordinary users
    await admin.query('VACUUM ANALYZE');

    const running: Partial<Record<Server, Running>> & Record<'app' | 'log' | 'floor', Running> = {
      app: startApp('app', await freshPort(), url, { LOG_LEVEL: 'silent' }), // the "logging off": no request logger
      log: startApp('app+log', await freshPort(), url, {}, true), // the default: LOG_LEVEL=info, a JSON line per request
      floor: await startFloor('floor', url),
    };
    if (METRICS === 'compare') {
      running.bare = startApp('app-met', await freshPort(), url, { LOG_LEVEL: 'silent', METRICS_ENABLED: 'false' });
      await waitReady(running.bare, '/health/ready');
    }
    if (BASELINE) {
      running.base = startApp('base', await freshPort(), url, { LOG_LEVEL: 'silent' }, false, BASELINE);
      running.bfloor = await startFloor('b-floor', url, BASELINE);
      await waitReady(running.base, '/health/ready');
      await waitReady(running.bfloor, '/__stats');
    }
    servers.push(...Object.values(running));
    await waitReady(running.app, '/health/ready');
    await waitReady(running.log, '/health/ready');
    await waitReady(running.floor, '/__stats');
    adminAuthorization = `Bearer ${await logIn(running.app, ADMIN)}`;
    cursorPaths = await collectCursorPaths(running.app);
    // The same requests through every other app too: an app that alone had served them would carry
    // more varied (slower) JIT state into the rounds — it made "metrics on" look 10–20 % costlier.
    for (const server of ['log', 'bare', 'base'] as const) {
      if (!running[server]) continue;
      await logIn(running[server], ADMIN);
      await collectCursorPaths(running[server]);
    }
    const checks = await checkEquivalence(admin, url, running.floor);
    for (const [name, check] of checks) {
      console.log(
        `${name}: queries/req ${check.queries.app} / ${check.queries.floor}, same SQL ${check.sameSql ? 'yes' : 'NO'}, same body ${check.sameBody ? 'yes' : 'NO'}`,
      );
      for (const note of check.notes) console.log(`  ! ${note}`);
    }

    const rows = [];
    for (const endpoint of ENDPOINTS.filter(({ name }) => name.includes(ONLY))) {
      const check = checks.get(endpoint.name)!;
      console.log(`\n${endpoint.name}`);
      const connections = Math.max(1, Math.round(endpoint.connections * SCALE));
      const warmUp = Math.max(1, Math.round(DURATION / 2));
      let fastestDeletes = 0;
      for (const server of SERVERS) {
        const { rps } = await runLoad(
          GENERATOR,
          running[server]!.base,
          await templateFor(endpoint, admin, warmUp),
          connections,
          warmUp,
        );
        if (endpoint.deletes) fastestDeletes = Math.max(fastestDeletes, rps);
      }
      if (endpoint.deletes) victimsPerSecond = Math.max(500, 3 * fastestDeletes);
      const runs = Object.fromEntries(SERVERS.map((server) => [server, [] as Measurement[]])) as Record<
        Server,
        Measurement[]
      >;
      for (let round = 0; round < ROUNDS; round++) {
        // The floor between the two apps, the order reversed every round: a drift in the machine's
        // speed hits both sides of each ratio alike.
        const order = round % 2 === 0 ? SERVERS : SERVERS.toReversed();
        for (const server of order) {
          // The same load for a second first, not measured: a server idle since its last turn has
          // closed its pool's overflow connections (idle timeout) and would otherwise be measured
          // opening them again, which only the first server of a round escapes.
          await runLoad(
            GENERATOR,
            running[server]!.base,
            await templateFor(endpoint, admin, SETTLE),
            connections,
            SETTLE,
          );
          const template = await templateFor(endpoint, admin, DURATION);
          const m = await measure(running[server]!, template, connections, DURATION, postmaster);
          runs[server].push(m);
          console.log(
            `  round ${round + 1} ${LABEL[server].padEnd(7)} ${fmt(m.rps).padStart(5)} req/s  p50 ${fmt(m.p50, 1)} ms  p99 ${fmt(m.p99, 1)} ms  ` +
              `CPU ${fmt(m.cpuPerRequest)} µs/req, ${fmt(m.cpuUse * 100)} % of a core  db ${fmt(m.dbPerRequest)} µs/req  ` +
              `${GENERATOR} ${fmt(m.generatorCpu * 100)} %  non-2xx ${m.non2xx + m.errors}`,
          );
        }
      }
      // Ratios of measurements of the same round (adjacent in time), then their median: on a shared
      // machine far steadier than a ratio of separate medians.
      const paired = (
        server: 'app' | 'log',
        value: (m: Measurement) => number,
        invert = false,
        reference: Server = 'floor',
      ) =>
        runs[server].map((m, round) => {
          const [a, f] = [value(m), value(runs[reference][round])];
          return invert ? f / a : a / f;
        });
      const overheadNowToBefore = (value: (m: Measurement) => number) =>
        runs.app.map(
          (m, round) => value(m) / value(runs.floor[round]) / (value(runs.base[round]) / value(runs.bfloor[round])),
        );
      rows.push({
        endpoint: endpoint.name,
        connections,
        runs,
        check,
        rps: paired('app', (m) => m.rps),
        rpsLogging: paired('log', (m) => m.rps),
        cpu: paired('app', (m) => m.cpuPerRequest, true), // floor CPU ÷ app CPU
        cpuLogging: paired('log', (m) => m.cpuPerRequest, true),
        p99: paired('app', (m) => m.p99),
        // BENCH_METRICS=compare: the app with metrics on ÷ the same app without them, per round.
        metricsRps: METRICS === 'compare' ? paired('app', (m) => m.rps, false, 'bare') : undefined,
        metricsCpu: METRICS === 'compare' ? paired('app', (m) => m.cpuPerRequest, false, 'bare') : undefined,
        // BENCH_BASELINE: this checkout's app ÷ the baseline's, per round; and the app's cost over its
        // floor now ÷ the same before, which leaves out what the SQL itself gained or lost.
        baselineRps: BASELINE ? paired('app', (m) => m.rps, false, 'base') : undefined,
        baselineCpu: BASELINE ? paired('app', (m) => m.cpuPerRequest, false, 'base') : undefined,
        overheadRps: BASELINE ? overheadNowToBefore((m) => m.rps) : undefined,
        overheadCpu: BASELINE ? overheadNowToBefore((m) => m.cpuPerRequest) : undefined,
      });
    }
    const rss = { app: peakRssMb(running.app.child.pid!), log: peakRssMb(running.log.child.pid!) };
    const generatorCpu = rows.flatMap((r) =>
      Object.values(r.runs)
        .flat()
        .map((m) => m.generatorCpu),
    );

    const of = (list: Measurement[], value: (m: Measurement) => number, digits = 0) =>
      fmt(median(list.map(value)), digits);
    const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
    const table = [
      `| endpoint | conns | req/s app (min–max) | req/s app+log | req/s floor | **app/floor req/s** (min–max) | app+log/floor | p50 ms app / +log / floor | p99 ms app / +log / floor (app/floor) | CPU µs/req app / +log / floor | **floor CPU ÷ app CPU** (+log) | CPU use app / floor | db µs/req app / floor | queries/req app / floor | same SQL, same body |${METRICS === 'compare' ? ' metrics on ÷ off: req/s (min–max), CPU/req |' : ''}${BASELINE ? ' app ÷ baseline: req/s (min–max), CPU/req | app/floor ÷ base/b-floor: req/s (min–max), CPU/req |' : ''}`,
      `|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|${METRICS === 'compare' ? '---|' : ''}${BASELINE ? '---|---|' : ''}`,
      ...rows
        .map(({ runs: r, ...row }) =>
          [
            row.endpoint,
            row.connections,
            range(r.app.map((m) => m.rps)),
            of(r.log, (m) => m.rps),
            range(r.floor.map((m) => m.rps)),
            `**${range(row.rps, 2)}**`,
            fmt(median(row.rpsLogging), 2),
            `${of(r.app, (m) => m.p50, 1)} / ${of(r.log, (m) => m.p50, 1)} / ${of(r.floor, (m) => m.p50, 1)}`,
            `${of(r.app, (m) => m.p99, 1)} / ${of(r.log, (m) => m.p99, 1)} / ${of(r.floor, (m) => m.p99, 1)} (${fmt(median(row.p99), 1)}×)`,
            `${of(r.app, (m) => m.cpuPerRequest)} / ${of(r.log, (m) => m.cpuPerRequest)} / ${of(r.floor, (m) => m.cpuPerRequest)}`,
            `**${fmt(median(row.cpu), 2)}** (${fmt(median(row.cpuLogging), 2)})`,
            `${of(r.app, (m) => m.cpuUse * 100)} % / ${of(r.floor, (m) => m.cpuUse * 100)} %`,
            `${of(r.app, (m) => m.dbPerRequest ?? NaN)} / ${of(r.floor, (m) => m.dbPerRequest ?? NaN)}`,
            `${fmt(row.check.queries.app, 1)} / ${fmt(row.check.queries.floor, 1)}`,
            `${row.check.sameSql ? 'yes' : '**no**'}, ${row.check.sameBody ? 'yes' : '**no**'}`,
            ...(row.metricsRps && row.metricsCpu
              ? [`${range(row.metricsRps, 2)}, ${fmt(median(row.metricsCpu), 2)}`]
              : []),
            ...(row.baselineRps && row.baselineCpu
              ? [`${range(row.baselineRps, 2)}, ${fmt(median(row.baselineCpu), 2)}`]
              : []),
            ...(row.overheadRps && row.overheadCpu
              ? [`${range(row.overheadRps, 2)}, ${fmt(median(row.overheadCpu), 2)}`]
              : []),
          ].join(' | '),
        )
        .map((line) => `| ${line} |`),
    ].join('\n');
    const markdown =
      `${table}\n\nMetrics ${METRICS}. Peak RSS (VmHWM): app ${fmt(rss.app)} MB, app+log ${fmt(rss.log)} MB. ` +
      (generatorCpu.length
        ? `Load generator: ${GENERATOR}, its own CPU ${fmt(median(generatorCpu) * 100)} % of a core (median; max ${fmt(Math.max(...generatorCpu) * 100)} %). `
        : '') +
      `${ROUNDS} interleaved rounds of ${DURATION} s after a warm-up, each measurement after ${SETTLE} s of the same load; req/s, latency and CPU are medians over rounds, ratios the median of per-round ratios. ` +
      `Machine: ${machine}.\n`;
    mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
    writeFileSync(
      join(ROOT, 'bench', 'results', 'latest.json'),
      `${JSON.stringify({ date: new Date().toISOString(), machine, metrics: METRICS, baseline: BASELINE, generator: GENERATOR, duration: DURATION, rounds: ROUNDS, users: USERS, peakRssMb: rss, rows }, null, 2)}\n`,
    );
    writeFileSync(join(ROOT, 'bench', 'results', 'latest.md'), markdown);
    console.log(`\n${markdown}`);
    const invalid = rows.filter((r) => Object.values(r.runs).some((list) => list.some((m) => m.non2xx + m.errors > 0)));
    if (invalid.length) throw new Error(`invalid run: non-2xx answers on ${invalid.map((r) => r.endpoint).join(', ')}`);
    const unequal = [...checks].filter(([, check]) => !check.sameSql || !check.sameBody).map(([name]) => name);
    if (unequal.length) throw new Error(`invalid run: app and floor differ on ${unequal.join(', ')}`);
  } finally {
    await Promise.all(servers.map(stop));
    if (admin.isInitialized) await admin.destroy();
    await embedded?.stop();
    rmSync(WORK, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
