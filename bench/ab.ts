/**
 * A/B of two builds of the app by CPU per request (BENCHMARKS.md, "What was changed, and measured"):
 * `AB_A` and `AB_B` are directories holding a built `dist/` (and reaching this repository's
 * node_modules), e.g. a copy of main's `dist` and this work tree. Both run as `npm run start:prod`
 * runs them (package.json's node flags and malloc_env, NODE_ENV=production; logging off unless
 * AB_LOG_LEVEL), pinned together to one core (`taskset -c AB_APP_CORE`, 1), and are loaded **at the
 * same time** by one wrk each (this process and its wrk on the other cores: start it as
 * `taskset -c 0 npx ts-node -T bench/ab.ts`), so a shared machine's drift hits both alike. Each pair's result is B's CPU per request ÷ A's, from
 * /proc; the median of AB_PAIRS pairs is the effect (an A/A run shows the noise). Each summary line also
 * gives both apps' full garbage collections per 10,000 requests (from their /metrics), which shows a change
 * that makes requests' objects outlive the young generation.
 *
 * Settings: AB_DATABASE_URL (required: a database of your own; its public schema is dropped and
 * re-seeded unless AB_SEED=no), AB_PAIRS (6), AB_SECONDS (4), AB_WARMUP_SECONDS (2: each endpoint's
 * unmeasured first load; longer lets V8 finish compiling its hot code first), AB_ONLY (substrings of endpoint
 * names, `|` between alternatives: `AB_ONLY='GET /users?|PATCH'`),
 * AB_USERS (1000), AB_LOG_LEVEL (silent), AB_NODE_ARGS (extra node flags for both apps, e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof`), AB_A_NODE_ARGS / AB_B_NODE_ARGS (for one of them: A/B of a flag),
 * AB_SEQUENTIAL=yes (load A and B one after the other: for changes in how many threads an app keeps busy),
 * AB_A_ENV / AB_B_ENV (`NAME=value …` for one of them: A/B of a setting, e.g. `AB_B_ENV=METRICS_ENABLED=false`),
 * AB_B_IDEMPOTENCY_KEY=yes (B's writes each carry a fresh Idempotency-Key: its cost, with AB_A=AB_B=this build),
 * AB_CONNECTIONS (every endpoint's connection count instead of its own).
 *
 * AB_COUNT=instructions: instead of CPU time, **instructions per request** under Valgrind's callgrind
 * (`apt-get install valgrind`): each app runs under `valgrind --tool=callgrind --instr-atstart=no`, and
 * only the measured loads are counted (`callgrind_control`: zero, instrumentation on, load, off, read the
 * totals of every thread, libuv's password hashing included). Once both builds have settled, a 3 %
 * difference shows; they are not time (cache misses, system calls and waits are not in them). They still
 * follow V8's compiling and collecting in the background, which a busy machine delays: run on a quiet one.
 * The apps run 20–50 times slower: give a long warm-up (V8 compiles for the first ~15,000 requests of a
 * small read), the endpoints in one run (each then measured after the others' warm-ups) and few connections,
 * e.g. `AB_COUNT=instructions AB_CONNECTIONS=4 AB_WARMUP_SECONDS=300 AB_SECONDS=40 AB_PAIRS=3`; loads are
 * sequential. Source of the method, and what moved the counts: BENCHMARKS.md ("After warm-up", "Instructions
 * per request on a quiet machine").
 */
import 'reflect-metadata';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DataSource } from 'typeorm';
import { loadConfig } from '../src/config/app.config';
import { dataSourceOptions } from '../src/database/data-source.options';
import { findFreePort } from '../src/database/dialects/embedded-postgres';
import { seed } from '../src/database/seed';
import { ensureAdmin } from '../src/auth/admin-bootstrap';
import { PasswordHasher } from '../src/auth/passwords';
import { cpuSeconds, type RequestTemplate, runLoad } from './load';
import { createVictims } from './victims';

const env = process.env;
const URL = env.AB_DATABASE_URL ?? '';
const PAIRS = Number(env.AB_PAIRS ?? 6);
const SECONDS = Number(env.AB_SECONDS ?? 4);
const WARMUP_SECONDS = Number(env.AB_WARMUP_SECONDS ?? 2);
const USERS = Number(env.AB_USERS ?? 1000);
const INSTRUCTIONS = env.AB_COUNT === 'instructions';
const [UNIT, DIGITS] = INSTRUCTIONS ? ['instructions/req', 3] : ['µs/req', 2];
if (!['instructions', 'cpu', undefined].includes(env.AB_COUNT))
  throw new Error(`AB_COUNT must be cpu or instructions, not ${env.AB_COUNT}`);
const ROOT = join(__dirname, '..');
const SECRET = randomBytes(32).toString('hex');
const ADMIN = { email: 'ab-admin@example.com', name: 'AB Admin', password: 'ab-admin-password-long-enough' };

/** The words of a space-separated setting (flags, `NAME=value` pairs). */
const words = (text = ''): string[] => text.split(' ').filter(Boolean);

interface App {
  label: string;
  child: ChildProcess;
  base: string;
  log: () => string;
}

async function startApp(label: string, dir: string): Promise<App> {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    config: { node_flags: string; malloc_env?: string };
  };
  const mallocEnv = words(pkg.config.malloc_env);
  const flags = words(`${pkg.config.node_flags} ${env.AB_NODE_ARGS ?? ''} ${env[`AB_${label}_NODE_ARGS`] ?? ''}`);
  const port = await findFreePort();
  // Under callgrind the process is Valgrind's (taskset and env exec it), so the child's pid is the one
  // callgrind_control addresses.
  const valgrind = INSTRUCTIONS
    ? [
        'valgrind',
        '--tool=callgrind',
        '--instr-atstart=no',
        `--callgrind-out-file=${join(tmpdir(), 'ab-callgrind.%p')}`,
      ]
    : [];
  const child = spawn(
    'taskset',
    [
      ...['-c', env.AB_APP_CORE ?? '1', 'env', ...mallocEnv, ...valgrind],
      ...[process.execPath, ...flags, join(dir, 'dist', 'main.js')],
    ],
    {
      cwd: dir,
      env: {
        ...env,
        NODE_OPTIONS: '',
        NODE_ENV: 'production',
        PORT: String(port),
        DATABASE_URL: URL,
        DB_MIGRATIONS_RUN: 'false',
        RATE_LIMIT_MAX: '0',
        DB_POOL_SIZE: '10',
        DB_POOL_MAX_OVERFLOW: '20',
        CURSOR_SECRET: SECRET,
        JWT_SECRET: SECRET,
        ACCESS_TOKEN_TTL_SECONDS: '86400',
        // B's keyed writes all come from one caller: a run stores more keys than the default cap (429s would be cheap).
        IDEMPOTENCY_MAX_KEYS_PER_CALLER: '100000000',
        LOG_LEVEL: env.AB_LOG_LEVEL ?? 'silent',
        ...Object.fromEntries(words(env[`AB_${label}_ENV`]).map((pair) => pair.split('=') as [string, string])),
      },
      stdio: ['ignore', env.AB_LOG_LEVEL ? 'ignore' : 'pipe', 'pipe'],
    },
  );
  let log = '';
  child.stdout?.on('data', (chunk) => (log += chunk));
  child.stderr?.on('data', (chunk) => (log += chunk));
  const app = { label, child, base: `http://127.0.0.1:${port}`, log: () => log };
  for (let waited = 0; ; waited += 100) {
    if (child.exitCode !== null || waited > (INSTRUCTIONS ? 600_000 : 60_000))
      throw new Error(`${label} did not start:\n${log}`);
    if (
      await fetch(`${app.base}/health/ready`).then(
        (r) => r.ok,
        () => false,
      )
    )
      return app;
    await sleep(100);
  }
}

/**
 * How many full (mark-compact) garbage collections the app has run, from its `/metrics`
 * (prom-client's nodejs_gc_duration_seconds, kind="major"). Many more per request in B than in A means
 * B's requests keep objects alive long enough to be promoted to V8's old generation.
 */
async function majorGcs(app: App): Promise<number> {
  const text = await (await fetch(`${app.base}/metrics`)).text();
  return Number(/^nodejs_gc_duration_seconds_count\{kind="major"\} (\d+)/m.exec(text)?.[1] ?? 0);
}

/** `callgrind_control` with `args` for the app's process; its output. */
function callgrind(app: App, ...args: string[]): string {
  return execFileSync('callgrind_control', [...args, String(app.child.pid)], { encoding: 'utf8' });
}

/** The instructions the app ran since its counters were last zeroed: the sum of every thread's `Ir`. */
function instructionsRun(app: App): number {
  const threads = [...callgrind(app, '-e').matchAll(/^\s+Th \d+\s+([\d,]+)\s*$/gm)];
  if (threads.length === 0) throw new Error(`no callgrind totals for ${app.label}`);
  return threads.reduce((sum, [, count]) => sum + Number(count.replaceAll(',', '')), 0);
}

/** How many victims a DELETE load of `seconds` gets: 4,000, or 100 a second for longer loads. */
function victimCount(seconds: number): number {
  return Math.max(4000, seconds * 100);
}

async function main(): Promise<void> {
  if (!URL) throw new Error('AB_DATABASE_URL is required (a database of your own)');
  const db = new DataSource({
    ...dataSourceOptions({ ...loadConfig({}).database, url: URL, migrationsRun: false, statementTimeoutMs: 0 }),
    logger: undefined,
    logging: false,
  });
  await db.initialize();
  if (env.AB_SEED !== 'no') {
    await db.query('DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public');
    await db.runMigrations();
    await seed(db, { users: USERS, postsPerUser: 10, commentsPerPost: 5 });
    await ensureAdmin(db, new PasswordHasher(), ADMIN, 'always');
    await db.query('VACUUM ANALYZE');
  }
  const apps = [await startApp('A', env.AB_A ?? ROOT), await startApp('B', env.AB_B ?? ROOT)];
  try {
    const login = await fetch(`${apps[0].base}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: ADMIN.email, password: ADMIN.password }),
    });
    const authorization = `Bearer ${((await login.json()) as { accessToken: string }).accessToken}`;
    const cursorFile = join(tmpdir(), `ab-cursors-${process.pid}.txt`);
    const lines: string[] = [];
    for (let post = 1; post <= USERS * 10; post += 20) {
      const res = await fetch(`${apps[0].base}/posts/${post}/comments?limit=2`);
      await res.arrayBuffer();
      lines.push(/<([^>]+)>; rel="next"/.exec(res.headers.get('link') ?? '')![1]);
    }
    writeFileSync(cursorFile, `${lines.join('\n')}\n`);

    let run = 0;
    const endpoints: {
      name: string;
      connections: number;
      /** The requests of a load of `seconds`. */
      template: (seconds: number) => RequestTemplate | Promise<RequestTemplate>;
    }[] = [
      {
        name: 'GET /users/{id}',
        connections: 32,
        template: () => ({ method: 'GET', path: '/users/{u}', tokens: { u: [1, USERS, 1] } }),
      },
      {
        name: 'GET /users?limit=20',
        connections: 8,
        template: () => ({
          method: 'GET',
          path: '/users?limit=20&offset={o}',
          tokens: { o: [20, USERS - 20, 0] },
        }),
      },
      {
        name: 'POST /users',
        connections: 16,
        template: () => ({
          method: 'POST',
          path: '/users',
          body: `{"name":"AB {n}","email":"ab-${randomUUID()}-{n}@example.com","password":"correct horse battery staple"}`,
          tokens: { n: [1, 0, 0] },
        }),
      },
      {
        name: 'POST /users/{id}/posts',
        connections: 16,
        template: () => ({
          method: 'POST',
          path: '/users/{u}/posts',
          body: '{"title":"AB {n}","body":"Written by the A/B benchmark","comments":[{"body":"first"}]}',
          tokens: { u: [1, USERS, 1], n: [1, 0, 0] },
          authorization,
        }),
      },
      {
        name: 'PATCH /users/{id}',
        connections: 16,
        template: () => ({
          method: 'PATCH',
          path: '/users/{u}',
          body: `{"name":"Renamed ${++run} {n}"}`,
          tokens: { u: [1, USERS, 1], n: [1, 0, 0] },
          authorization,
        }),
      },
      {
        name: 'DELETE /users/{id}',
        connections: 16,
        template: async (seconds) => ({
          method: 'DELETE',
          path: '/users/{v}',
          // Victims enough for the load (under callgrind about 60 deletes a second), and the ids wrap
          // within this app's own: running past them would delete the other app's, which then answers 404.
          tokens: { v: [1, victimCount(seconds), await createVictims(db, victimCount(seconds))] },
          authorization,
        }),
      },
      {
        name: 'GET /posts/{id}',
        connections: 32,
        template: () => ({ method: 'GET', path: '/posts/{p}', tokens: { p: [1, USERS * 10, 1] } }),
      },
      {
        name: 'GET /posts/{id}/comments (keyset)',
        connections: 32,
        template: () => ({ method: 'GET', path: '{listed}', tokens: {}, listFile: cursorFile }),
      },
    ];
    const load = async (app: App, template: RequestTemplate, connections: number, seconds: number) => {
      const gcsBefore = await majorGcs(app);
      const before = cpuSeconds(app.child.pid!);
      if (INSTRUCTIONS) {
        callgrind(app, '--zero');
        callgrind(app, '--instr=on');
      }
      const result = await runLoad('wrk', app.base, template, connections, seconds);
      // Under callgrind: "CPU per request" is instructions per request (the requests still in flight
      // when wrk stops are counted, not in `requests`: few connections keep that small).
      const cpu = INSTRUCTIONS ? instructionsRun(app) / 1e6 : cpuSeconds(app.child.pid!) - before;
      if (INSTRUCTIONS) callgrind(app, '--instr=off'); // after reading: callgrind shows no totals while off
      const gcs = (await majorGcs(app)) - gcsBefore;
      if (result.non2xx + result.errors > 0)
        console.log(`  ! ${app.label}: ${result.non2xx} non-2xx, ${result.errors} errors`);
      const requests = Math.max(1, result.requests);
      return { rps: result.rps, cpuPerRequest: (cpu / requests) * 1e6, majorGcsPer10k: (gcs / requests) * 1e4 };
    };
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
    const summary: string[] = [];
    const only = (env.AB_ONLY ?? '').split('|');
    for (const endpoint of endpoints.filter(({ name }) => only.some((part) => name.includes(part)))) {
      // Both loads at once, or (AB_SEQUENTIAL=yes) one after the other, the order swapped every pair: for
      // a change in how many threads an app runs (e.g. password hashing), which share one core unequally.
      const both = async (seconds: number, swap: boolean) => {
        const templates = [await endpoint.template(seconds), await endpoint.template(seconds)]; // each its own victims
        if (env.AB_B_IDEMPOTENCY_KEY === 'yes' && templates[1].method !== 'GET') {
          templates[1] = { ...templates[1], idempotencyKey: `"ab-${randomUUID()}-{n}"` };
          templates[1].tokens = { n: [1, 0, 0], ...templates[1].tokens };
        }
        const connections = Number(env.AB_CONNECTIONS ?? endpoint.connections);
        const run = (i: number) => load(apps[i], templates[i], connections, seconds);
        if (env.AB_SEQUENTIAL !== 'yes' && !INSTRUCTIONS) return Promise.all([run(0), run(1)]);
        const [first, second] = swap ? [await run(1), await run(0)] : [await run(0), await run(1)];
        return swap ? [second, first] : [first, second];
      };
      await both(WARMUP_SECONDS, false); // warm-up
      const a: number[] = [];
      const b: number[] = [];
      const gcs = [0, 0];
      for (let i = 0; i < PAIRS; i++) {
        const [ra, rb] = await both(SECONDS, i % 2 === 1);
        a.push(ra.cpuPerRequest);
        b.push(rb.cpuPerRequest);
        gcs[0] += ra.majorGcsPer10k / PAIRS;
        gcs[1] += rb.majorGcsPer10k / PAIRS;
        console.log(
          `${endpoint.name} pair ${i + 1}: A ${ra.cpuPerRequest.toFixed(0)} ${UNIT} (${ra.rps.toFixed(0)}/s)  B ${rb.cpuPerRequest.toFixed(0)} ${UNIT} (${rb.rps.toFixed(0)}/s)  B/A ${(rb.cpuPerRequest / ra.cpuPerRequest).toFixed(DIGITS)}`,
        );
      }
      const ratios = a.map((value, i) => b[i] / value);
      summary.push(
        `${endpoint.name}: A ${median(a).toFixed(0)} → B ${median(b).toFixed(0)} ${UNIT}, B/A ${median(ratios).toFixed(DIGITS)} (${Math.min(...ratios).toFixed(DIGITS)}–${Math.max(...ratios).toFixed(DIGITS)}), ${PAIRS} pairs of ${SECONDS} s; full GCs per 10k requests A ${gcs[0].toFixed(1)}, B ${gcs[1].toFixed(1)}`,
      );
    }
    const peakRss = (app: App) => /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${app.child.pid}/status`, 'utf8'))?.[1];
    summary.push(
      `peak RSS (VmHWM): ${apps.map((app) => `${app.label} ${Math.round(Number(peakRss(app)) / 1024)} MB`).join(', ')}`,
    );
    console.log(`\n${summary.join('\n')}`);
  } finally {
    for (const app of apps) {
      app.child.kill('SIGTERM');
      if (app.child.exitCode === null) await once(app.child, 'exit');
    }
    await db.destroy();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
