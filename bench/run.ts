/**
 * `npm run bench`: the built app (production mode, request logs off) against the floor server
 * (bench/floor.ts: node:http + pg, same SQL, same pool), interleaved, on a seeded database.
 *
 * Settings (environment): BENCH_DURATION seconds per measurement (5), BENCH_ROUNDS (5),
 * BENCH_USERS (1000; × 10 posts × 5 comments), BENCH_DATABASE_URL (default: a throwaway embedded
 * PostgreSQL), BENCH_CONNECTIONS_SCALE (1; multiplies every endpoint's connection count),
 * BENCH_ONLY (run only the endpoints whose name contains it, e.g. `GET /users/{id}`),
 * BENCH_APP_NODE_ARGS (extra node flags for the app, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`),
 * BENCH_METRICS (`on`, the default as in production, or `off`: the app without Prometheus metrics;
 * compare the app/floor ratios of an `on` and an `off` run to see what metrics cost).
 * Writes bench/results/latest.json and latest.md.
 */
import 'reflect-metadata';
import autocannon from 'autocannon';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DataSource } from 'typeorm';
import { loadConfig } from '../src/config/app.config';
import { dataSourceOptions } from '../src/database/data-source.options';
import { startEmbeddedPostgres, type RunningPostgres } from '../src/database/embedded-postgres';
import { seed } from '../src/database/seed';

const env = process.env;
const DURATION = Number(env.BENCH_DURATION ?? 5);
const ROUNDS = Number(env.BENCH_ROUNDS ?? 5);
const USERS = Number(env.BENCH_USERS ?? 1000);
const SCALE = Number(env.BENCH_CONNECTIONS_SCALE ?? 1);
const ONLY = env.BENCH_ONLY ?? '';
const METRICS = env.BENCH_METRICS ?? 'on';
if (!['on', 'off'].includes(METRICS)) throw new Error(`BENCH_METRICS must be on or off, not ${METRICS}`);
const POOL_SIZE = 10;
const POOL_OVERFLOW = 20;
const ROOT = join(__dirname, '..');

interface Endpoint {
  name: string;
  connections: number;
  /** Builds the n-th request; `server` keeps write payloads unique per server. */
  request: (n: number, server: string) => { method: 'GET' | 'POST' | 'PATCH'; path: string; body?: string };
}

const json = (value: unknown) => JSON.stringify(value);
const ENDPOINTS: Endpoint[] = [
  {
    name: 'GET /users/{id} (10 posts, 50 comments)',
    connections: 32,
    request: (n) => ({ method: 'GET', path: `/users/${1 + (n % USERS)}` }),
  },
  {
    name: 'GET /users?limit=20 (nested)',
    connections: 8,
    request: (n) => ({ method: 'GET', path: `/users?limit=20&offset=${(n * 20) % Math.max(1, USERS - 20)}` }),
  },
  {
    name: 'POST /users',
    connections: 16,
    request: (n, server) => ({
      method: 'POST',
      path: '/users',
      body: json({ name: `Bench ${n}`, email: `bench-${server}-${randomUUID()}@example.com` }),
    }),
  },
  {
    name: 'PATCH /users/{id}',
    connections: 16,
    request: (n) => ({ method: 'PATCH', path: `/users/${1 + (n % USERS)}`, body: json({ name: `Renamed ${n}` }) }),
  },
  {
    name: 'GET /posts/{id} (5 comments)',
    connections: 32,
    request: (n) => ({ method: 'GET', path: `/posts/${1 + (n % (USERS * 10))}` }),
  },
];

interface Measurement {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

async function measure(base: string, endpoint: Endpoint, server: string, seconds: number): Promise<Measurement> {
  let n = 0;
  const result = await autocannon({
    url: base,
    connections: Math.max(1, Math.round(endpoint.connections * SCALE)),
    duration: seconds,
    requests: [
      {
        setupRequest: (req) => {
          const { method, path, body } = endpoint.request(n++, server);
          return { ...req, method, path, body, headers: { 'content-type': 'application/json' } };
        },
      },
    ],
  });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

/** Sends `samples` requests of an endpoint, each tagged with an X-Request-Id. */
async function sample(base: string, endpoint: Endpoint, server: string, samples: number): Promise<string[]> {
  const ids: string[] = [];
  for (let n = 0; n < samples; n++) {
    const { method, path, body } = endpoint.request(100_000 + n, server);
    const id = `${server}-${randomUUID()}`;
    const res = await fetch(base + path, {
      method,
      body,
      headers: { 'content-type': 'application/json', 'x-request-id': id },
    });
    await res.arrayBuffer();
    ids.push(id);
  }
  return ids;
}

/**
 * SQL statements per request. The app's are counted from its own query log (an extra instance with
 * DB_LOGGING, each log line carrying the request id); the floor counts its pool.query calls.
 */
async function countQueries(url: string, floorBase: string): Promise<Map<string, { app: number; floor: number }>> {
  const counter = start('app (query log)', [join('dist', 'main.js')], {
    NODE_ENV: 'production',
    CURSOR_SECRET: 'bench-only-cursor-secret', // production with a DATABASE_URL requires one
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'info',
    DB_LOGGING: 'true',
    PORT: '3203',
    DATABASE_URL: url,
    DB_MIGRATIONS_RUN: 'false',
    RATE_LIMIT_MAX: '0',
  });
  await waitReady('http://127.0.0.1:3203/health/ready', counter.child, counter.output);
  const samples = 10;
  const counts = new Map<string, { app: number; floor: number }>();
  const appIds = new Map<string, string[]>();
  for (const endpoint of ENDPOINTS) {
    appIds.set(endpoint.name, await sample('http://127.0.0.1:3203', endpoint, 'count-app', samples));
    const before = ((await (await fetch(`${floorBase}/__stats`)).json()) as { queries: number }).queries;
    await sample(floorBase, endpoint, 'count-floor', samples);
    const after = ((await (await fetch(`${floorBase}/__stats`)).json()) as { queries: number }).queries;
    counts.set(endpoint.name, { app: 0, floor: (after - before) / samples });
  }
  counter.child.kill('SIGTERM');
  await new Promise((resolve) => counter.child.once('exit', resolve));
  const perRequest = new Map<string, number>();
  for (const line of counter.output().split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { context?: string; requestId?: string };
    if (entry.context === 'Database' && entry.requestId)
      perRequest.set(entry.requestId, (perRequest.get(entry.requestId) ?? 0) + 1);
  }
  for (const [name, ids] of appIds)
    counts.get(name)!.app = ids.reduce((sum, id) => sum + (perRequest.get(id) ?? 0), 0) / ids.length;
  return counts;
}

async function waitReady(url: string, child: ChildProcess, output: () => string): Promise<void> {
  for (let waited = 0; waited < 60_000; waited += 100) {
    if (child.exitCode !== null) throw new Error(`server exited:\n${output()}`);
    if (
      await fetch(url).then(
        (r) => r.ok,
        () => false,
      )
    )
      return;
    await sleep(100);
  }
  throw new Error(`server not ready:\n${output()}`);
}

function start(
  label: string,
  args: string[],
  extraEnv: Record<string, string>,
): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...env, NODE_OPTIONS: '', ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.on('data', (chunk) => (log += chunk));
  child.stderr.on('data', (chunk) => (log += chunk));
  child.on('exit', (code) => code && console.error(`${label} exited with ${code}`));
  return { child, output: () => log };
}

/** `config.node_flags` of package.json, which `npm start` and `npm run start:prod` pass to node. */
function productionNodeFlags(): string {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { config?: { node_flags?: string } };
  return pkg.config?.node_flags ?? '';
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

/** Median (and range) of app/floor per round, for req/s and p99. */
function pairedRatios(runs: Record<'app' | 'floor', Measurement[]>) {
  const rps = runs.app.map((app, round) => app.rps / Math.max(1, runs.floor[round].rps));
  const p99 = runs.app.map((app, round) => app.p99 / Math.max(1, runs.floor[round].p99));
  return { ratio: median(rps), ratioMin: Math.min(...rps), ratioMax: Math.max(...rps), p99Ratio: median(p99) };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const fmt = (value: number | undefined, digits = 0) => (value === undefined ? 'n/a' : value.toFixed(digits));

async function main(): Promise<void> {
  let embedded: RunningPostgres | undefined;
  let url = env.BENCH_DATABASE_URL;
  if (!url) {
    embedded = await startEmbeddedPostgres({
      dataDir: join(tmpdir(), `nest-typeorm-users-bench-${randomUUID()}`),
      port: 0,
      ephemeral: true,
      serverFlags: ['-c', 'max_connections=200'],
    });
    url = embedded.url;
  }
  const children: ChildProcess[] = [];
  try {
    console.log(`seeding ${USERS} users × 10 posts × 5 comments …`);
    const admin = new DataSource({
      ...dataSourceOptions({ ...loadConfig({}).database, url, migrationsRun: false }),
      logger: undefined,
      maxQueryExecutionTime: undefined,
      logging: false,
    });
    await admin.initialize();
    await admin.query('DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public');
    await admin.runMigrations();
    await seed(admin, { users: USERS, postsPerUser: 10, commentsPerPost: 5 });
    await admin.query('VACUUM ANALYZE');

    // The app runs as `npm run start:prod` runs it: with the package's node flags (heap sizing).
    const nodeArgs = [productionNodeFlags(), env.BENCH_APP_NODE_ARGS ?? ''].join(' ').split(' ').filter(Boolean);
    const app = start('app', [...nodeArgs, join('dist', 'main.js')], {
      NODE_ENV: 'production',
      CURSOR_SECRET: 'bench-only-cursor-secret',
      LOG_LEVEL: 'silent', // the "logging off": no request logger either
      PORT: '3201',
      DATABASE_URL: url,
      DB_MIGRATIONS_RUN: 'false',
      RATE_LIMIT_MAX: '0',
      DB_POOL_SIZE: String(POOL_SIZE),
      DB_POOL_MAX_OVERFLOW: String(POOL_OVERFLOW),
      METRICS_ENABLED: METRICS === 'on' ? 'true' : 'false',
    });
    const floor = start('floor', ['-r', 'ts-node/register/transpile-only', join('bench', 'floor.ts')], {
      PORT: '3202',
      DATABASE_URL: url,
      POOL_MAX: String(POOL_SIZE + POOL_OVERFLOW),
    });
    children.push(app.child, floor.child);
    await waitReady('http://127.0.0.1:3201/health/ready', app.child, app.output);
    await waitReady('http://127.0.0.1:3202/__stats', floor.child, floor.output);
    const servers = { app: 'http://127.0.0.1:3201', floor: 'http://127.0.0.1:3202' } as const;
    const queryCounts = await countQueries(url, servers.floor);

    const rows = [];
    for (const endpoint of ENDPOINTS.filter(({ name }) => name.includes(ONLY))) {
      console.log(`\n${endpoint.name}`);
      const queries = queryCounts.get(endpoint.name)!;
      for (const server of ['app', 'floor'] as const)
        await measure(servers[server], endpoint, server, Math.max(1, Math.round(DURATION / 2))); // warm-up
      const runs: Record<'app' | 'floor', Measurement[]> = { app: [], floor: [] };
      for (let round = 0; round < ROUNDS; round++) {
        // app, floor, then floor, app: a drift in the machine's speed hits both sides alike.
        const order = round % 2 === 0 ? (['app', 'floor'] as const) : (['floor', 'app'] as const);
        for (const server of order) {
          const m = await measure(servers[server], endpoint, server, DURATION);
          runs[server].push(m);
          console.log(
            `  round ${round + 1} ${server.padEnd(5)} ${fmt(m.rps)} req/s  p50 ${m.p50} ms  p99 ${m.p99} ms  non-2xx ${m.non2xx}`,
          );
        }
      }
      const summary = (list: Measurement[]) => ({
        rpsMedian: median(list.map((m) => m.rps)),
        rpsMin: Math.min(...list.map((m) => m.rps)),
        rpsMax: Math.max(...list.map((m) => m.rps)),
        p50: median(list.map((m) => m.p50)),
        p99: median(list.map((m) => m.p99)),
        non2xx: list.reduce((sum, m) => sum + m.non2xx + m.errors, 0),
      });
      const appSummary = summary(runs.app);
      const floorSummary = summary(runs.floor);
      rows.push({
        endpoint: endpoint.name,
        connections: Math.round(endpoint.connections * SCALE),
        app: { ...appSummary, queries: queries.app },
        floor: { ...floorSummary, queries: queries.floor },
        // Ratios of the app and floor measurements of the same round (adjacent in time), then their
        // median: on a shared machine that is far steadier than a ratio of separate medians.
        ...pairedRatios(runs),
      });
    }
    const rss = peakRssMb(app.child.pid!);

    const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
    const table = [
      `| endpoint | conns | app req/s (min–max) | floor req/s (min–max) | app/floor req/s (min–max) | p50 app/floor ms | p99 app/floor ms | queries/req app/floor | non-2xx |`,
      `|---|---|---|---|---|---|---|---|---|`,
      ...rows.map(
        (r) =>
          `| ${r.endpoint} | ${r.connections} | ${fmt(r.app.rpsMedian)} (${fmt(r.app.rpsMin)}–${fmt(r.app.rpsMax)}) | ${fmt(r.floor.rpsMedian)} (${fmt(r.floor.rpsMin)}–${fmt(r.floor.rpsMax)}) | **${fmt(r.ratio, 2)}** (${fmt(r.ratioMin, 2)}–${fmt(r.ratioMax, 2)}) | ${r.app.p50} / ${r.floor.p50} | ${r.app.p99} / ${r.floor.p99} (${fmt(r.p99Ratio, 1)}×) | ${fmt(r.app.queries, 1)} / ${fmt(r.floor.queries, 1)} | ${r.app.non2xx + r.floor.non2xx} |`,
      ),
    ].join('\n');
    const markdown = `${table}\n\nApp (metrics ${METRICS}) peak RSS: ${fmt(rss)} MB. ${ROUNDS} interleaved rounds of ${DURATION} s after a warm-up; req/s and latency are medians over rounds, app/floor the median of per-round ratios. Machine: ${machine}.\n`;
    mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
    writeFileSync(
      join(ROOT, 'bench', 'results', 'latest.json'),
      `${JSON.stringify({ date: new Date().toISOString(), machine, metrics: METRICS, duration: DURATION, rounds: ROUNDS, users: USERS, peakRssMb: rss, rows }, null, 2)}\n`,
    );
    writeFileSync(join(ROOT, 'bench', 'results', 'latest.md'), markdown);
    console.log(`\n${markdown}`);
    const invalid = rows.filter((r) => r.app.non2xx + r.floor.non2xx > 0);
    if (invalid.length) throw new Error(`invalid run: non-2xx answers on ${invalid.map((r) => r.endpoint).join(', ')}`);
    await admin.destroy();
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await Promise.all(children.filter((child) => child.exitCode === null).map((child) => once(child, 'exit')));
    await embedded?.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
