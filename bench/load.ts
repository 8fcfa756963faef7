/**
 * Load generation and CPU accounting for bench/run.ts. Load comes from `wrk` (a C program, far lighter
 * than the servers it drives) when it is installed, else from autocannon in worker threads. Each
 * server's own CPU time is read from /proc/<pid>/stat around every load, so the output shows what a
 * request cost the server and how busy the load generator itself was.
 */
import autocannon from 'autocannon';
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

/** `{name}` in a template becomes add + (n × mul) % mod (mod 0: no modulo) for the n-th request. */
export type Token = [mul: number, mod: number, add: number];

/** The requests of one load: method, path and body templates (see bench/wrk.lua for the rule). */
export interface RequestTemplate {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  body?: string;
  tokens: Record<string, Token>;
  /** A file of lines for `{listed}` (e.g. paths with cursors), used round-robin. */
  listFile?: string;
  /** The Authorization header of every request (`Bearer <access token>`), if any. */
  authorization?: string;
  /** A template (tokens expanded per request, like `path`) for each request's Idempotency-Key header, if any. */
  idempotencyKey?: string;
}

/** What one load measured: throughput and latency (ms) from the generator, CPU from /proc. */
export interface LoadResult {
  requests: number;
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  /** The load generator's CPU time ÷ wall time (1 = one core busy). */
  generatorCpu: number;
}

const expandModule = createRequire(__filename)('./autocannon-request.cjs') as {
  expand: (template: string, n: number, tokens: Record<string, Token>, listed: string[]) => string;
};

/** The n-th request of a template, as the load generators build it. */
export function nthRequest(
  template: RequestTemplate,
  n: number,
): { method: string; path: string; body?: string; headers: Record<string, string> } {
  const listed = template.listFile ? readFileSync(template.listFile, 'utf8').split('\n').filter(Boolean) : [];
  const expand = (text: string) => expandModule.expand(text, n, template.tokens, listed);
  const headers: Record<string, string> = {
    ...(template.body && { 'content-type': 'application/json' }),
    ...(template.authorization && { authorization: template.authorization }),
    ...(template.idempotencyKey && { 'idempotency-key': expand(template.idempotencyKey) }),
  };
  return {
    method: template.method,
    path: expand(template.path),
    body: template.body && expand(template.body),
    headers,
  };
}

/** `wrk` when it is on the PATH, else autocannon. */
export function loadGenerator(): 'wrk' | 'autocannon' {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
  } catch (error) {
    // wrk --version exits 1 after printing its banner; only a missing binary is ENOENT.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'autocannon';
  }
  return 'wrk';
}

const THREADS = 2;

/** Drives `base` with `connections` for `seconds`. */
export function runLoad(
  generator: 'wrk' | 'autocannon',
  base: string,
  template: RequestTemplate,
  connections: number,
  seconds: number,
): Promise<LoadResult> {
  return generator === 'wrk'
    ? runWrk(base, template, connections, seconds)
    : runAutocannon(base, template, connections, seconds);
}

async function runWrk(base: string, t: RequestTemplate, connections: number, seconds: number): Promise<LoadResult> {
  const threads = Math.min(THREADS, connections);
  const tokens = Object.entries(t.tokens).map(([name, [mul, mod, add]]) => `${name}=${mul}:${mod}:${add}`);
  const args = [
    ...['-t', String(threads), '-c', String(connections), '-d', `${seconds}s`, '--timeout', '10s'],
    ...['-s', join(__dirname, 'wrk.lua'), base, '--', String(threads), t.method, t.path, t.body ?? '-'],
    ...[t.listFile ?? '-', t.authorization ?? '-', t.idempotencyKey ?? '-', ...tokens],
  ];
  // bash's `times` prints the CPU time of its finished children: wrk's own cost, exactly.
  const child = spawn('bash', ['-c', 'wrk "$@"; rc=$?; times; exit $rc', 'wrk', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const started = process.hrtime.bigint();
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  const line = /^BENCH_RESULT (.*)$/m.exec(output)?.[1];
  if (code !== 0 || !line) throw new Error(`wrk failed (exit ${code}):\n${output}`);
  const r = JSON.parse(line) as Record<'requests' | 'durationUs' | 'non2xx' | 'errors' | 'p50Us' | 'p99Us', number>;
  const [user, system] = [
    ...output
      .trim()
      .split('\n')
      .at(-1)!
      .matchAll(/(\d+)m([\d.]+)s/g),
  ].map(([, min, sec]) => Number(min) * 60 + Number(sec));
  return {
    requests: r.requests,
    rps: r.requests / (r.durationUs / 1e6),
    p50: r.p50Us / 1000,
    p99: r.p99Us / 1000,
    non2xx: r.non2xx,
    errors: r.errors,
    generatorCpu: (user + system) / wall,
  };
}

async function runAutocannon(base: string, t: RequestTemplate, connections: number, seconds: number) {
  const workers = Math.min(THREADS, connections);
  process.env.BENCH_REQUEST = JSON.stringify({ ...t, workers }); // read by the workers' setupRequest
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  const result = await autocannon({
    url: base,
    connections,
    duration: seconds,
    workers,
    requests: [{ setupRequest: join(__dirname, 'autocannon-request.cjs') }],
  });
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  const { user, system } = process.cpuUsage(cpu);
  return {
    requests: result.requests.total,
    rps: result.requests.total / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    generatorCpu: (user + system) / 1e6 / wall,
  };
}

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/**
 * CPU time (user + system, all threads) of a process, in seconds, with `reaped` also that of its
 * children that have exited and been waited for; 0 once it is gone.
 */
export function cpuSeconds(pid: number, reaped = false): number {
  try {
    // Fields after the `(comm)`: utime, stime, cutime, cstime are the 14th to 17th of the line.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    const own = Number(fields[11]) + Number(fields[12]);
    return (own + (reaped ? Number(fields[13]) + Number(fields[14]) : 0)) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/**
 * CPU time of a process and all its descendants, those that exited included (e.g. PostgreSQL's
 * postmaster, its backends, and backends whose connection closed meanwhile).
 */
export function treeCpuSeconds(rootPid: number): number {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1].split(' ');
      parents.set(Number(entry), Number(fields[1]));
    } catch {
      // the process exited meanwhile
    }
  }
  const inTree = (pid: number): boolean => pid === rootPid || (pid > 1 && inTree(parents.get(pid) ?? 0));
  return [...parents.keys()].filter(inTree).reduce((sum, pid) => sum + cpuSeconds(pid, true), 0);
}
