import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { findFreePort } from '../src/database/dialects/embedded-postgres';
import { PASSWORD, signUp } from './setup/accounts';
import { describeOn, testDialect } from './setup/dialect';
import { startMain } from './setup/main-process';
import { openApiDocument } from './setup/openapi-document';
import { useTestApp } from './setup/test-app';

/** What a newcomer meets in their first hour: where the app listens, npm start, Node versions, user:admin, Swagger UI, Ctrl-C. */
const ROOT = join(__dirname, '..');
const MAIN = join(ROOT, 'src', 'main.ts');
const TS_NODE = ['-r', require.resolve('ts-node/register/transpile-only')];
const childEnv = (env: Record<string, string | undefined>) => ({ ...process.env, NODE_OPTIONS: '', ...env });
/** Why a test that does not depend on the database runs on one dialect only (CI runs the suite on three). */
const ONCE = 'the same on every database: run once, on PostgreSQL';
// Each test starts Node processes that compile TypeScript (ts-node): generous, for a busy machine.
jest.setTimeout(120_000);

/** Whether a TCP connection to host:port is accepted (true) or refused (false). */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

/** An address of this machine that is not loopback, if it has one. */
const externalAddress = Object.values(networkInterfaces())
  .flat()
  .find((address) => address?.family === 'IPv4' && !address.internal)?.address;

describeOn(['postgres'], ONCE)('HOST: where the app listens, and a startup log that says so', () => {
  it('HOST=127.0.0.1 listens on loopback only and says so', async () => {
    const { child, base, output } = await startMain({ HOST: '127.0.0.1', LOG_FORMAT: 'json' });
    try {
      const port = Number(new URL(base).port);
      expect(output()).toContain(`Listening on http://127.0.0.1:${port} (this machine only;`);
      if (externalAddress) expect(await accepts(externalAddress, port)).toBe(false);
    } finally {
      child.kill('SIGTERM');
      await once(child, 'close');
    }
  });

  it('with DATABASE_URL and no HOST: every interface, and the log says that rather than "localhost"', async () => {
    const { child, base, output } = await startMain({ LOG_FORMAT: 'json' });
    try {
      const port = Number(new URL(base).port);
      expect(output()).toContain(`Listening on every interface (0.0.0.0) on port ${port}, from this machine at`);
      if (externalAddress) expect(await accepts(externalAddress, port)).toBe(true);
    } finally {
      child.kill('SIGTERM');
      await once(child, 'close');
    }
  });
});

describe('a stop with Ctrl-C in a terminal looks normal (embedded PostgreSQL)', () => {
  const itOnPostgres = testDialect === 'postgres' ? it : it.skip;
  if (testDialect !== 'postgres')
    process.stdout.write(`skipped on ${testDialect}: the embedded database is PostgreSQL\n`);

  itOnPostgres(
    'SIGINT to the whole process group, then again from npm: no WARN, no "received again", exit 0',
    async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'conformance-ctrl-c-'));
      chmodSync(dataDir, 0o755); // PostgreSQL runs as the `postgres` user when we are root
      const port = await findFreePort();
      // detached: a process group of its own, as a terminal's foreground job; Ctrl-C signals all of it.
      const child: ChildProcess = spawn(process.execPath, [...TS_NODE, MAIN], {
        cwd: dataDir,
        detached: true,
        env: childEnv({
          DATABASE_URL: undefined,
          EMBEDDED_PG_DATA_DIR: join(dataDir, 'postgres'),
          PORT: String(port),
          LOG_LEVEL: 'info',
          LOG_FORMAT: 'json',
          TS_NODE_PROJECT: join(ROOT, 'tsconfig.json'), // run from the data directory, as a user's cwd
        }),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout!.on('data', (chunk) => (output += chunk));
      child.stderr!.on('data', (chunk) => (output += chunk));
      try {
        for (let waited = 0; !output.includes('Listening on'); waited += 200) {
          if (child.exitCode !== null || waited > 120_000) throw new Error(`did not start:\n${output}`);
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
        // Connections in the pool, as after a few requests.
        await Promise.all(Array.from({ length: 4 }, () => fetch(`http://127.0.0.1:${port}/health/ready`)));
        process.kill(-child.pid!, 'SIGINT'); // the terminal: node and everything it started
        process.kill(child.pid!, 'SIGINT'); // npm forwards it to node once more
        const [code] = (await once(child, 'close')) as [number];
        const lines = output
          .split('\n')
          .filter((line) => line.startsWith('{'))
          .map((line) => JSON.parse(line) as { level: number; msg: string });
        expect(lines.filter((line) => line.level >= 40).map((line) => line.msg)).toEqual([]);
        expect(output).not.toContain('received again');
        expect(lines.map((line) => line.msg)).toContain('Stopped');
        expect(code).toBe(0);
      } finally {
        if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
    180_000,
  );
});

describeOn(['postgres'], ONCE)('an older Node.js is refused with one line, before argon2 can crash it', () => {
  it.each([
    ['npm start (src/main.ts)', MAIN, []],
    ['npm run user:admin', join(ROOT, 'src', 'auth', 'user-admin.command.ts'), ['--email', 'x@example.com']],
  ])('%s under "Node 20"', (_name, entry, args) => {
    const dir = mkdtempSync(join(tmpdir(), 'conformance-node-'));
    try {
      // Pretends to be Node 20 and reports whether argon2 was ever loaded.
      const pretend = join(dir, 'pretend-node-20.cjs');
      writeFileSync(
        pretend,
        "Object.defineProperty(process, 'versions', { value: { ...process.versions, node: '20.11.1' } });\n" +
          "const Module = require('node:module'); const load = Module._load;\n" +
          "Module._load = function (request, ...rest) { if (/argon2/.test(request)) process.stderr.write('ARGON2 LOADED\\n'); return load.call(this, request, ...rest); };\n",
      );
      const run = spawnSync(process.execPath, ['-r', pretend, ...TS_NODE, entry, ...args], {
        env: childEnv({}),
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(run.status).toBe(1);
      expect(run.stderr.trim().split('\n')).toEqual([
        expect.stringMatching(/^This app needs Node\.js 24 or newer .*this is Node\.js 20\.11\.1\..*nvm use/),
      ]);
      expect(run.stdout).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('npm start checks it too, before building', () => {
    const run = spawnSync(
      process.execPath,
      [
        '-e',
        "Object.defineProperty(process, 'versions', { value: { ...process.versions, node: '20.11.1' } }); require('./scripts/fresh-build.cjs')",
      ],
      { cwd: ROOT, env: childEnv({}), encoding: 'utf8' },
    );
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/needs Node\.js 24 or newer/);
  });
});

describeOn(['postgres'], ONCE)('npm start builds only when the sources changed, and says what it does', () => {
  it('up to date: no build; after an edit: a build is due', () => {
    const copy = mkdtempSync(join(tmpdir(), 'conformance-start-'));
    try {
      for (const file of [
        'package.json',
        'package-lock.json',
        'tsconfig.json',
        'tsconfig.build.json',
        'nest-cli.json',
      ]) {
        cpSync(join(ROOT, file), join(copy, file));
      }
      cpSync(join(ROOT, 'src'), join(copy, 'src'), { recursive: true });
      cpSync(join(ROOT, 'scripts'), join(copy, 'scripts'), { recursive: true });
      const script = (...args: string[]) =>
        spawnSync(process.execPath, ['scripts/fresh-build.cjs', ...args], { cwd: copy, encoding: 'utf8' });
      expect(script('--check')).toMatchObject({ status: 1, stdout: expect.stringContaining('a build is due') });
      mkdirSync(join(copy, 'dist'));
      writeFileSync(join(copy, 'dist', 'main.js'), '');
      expect(script('--record').status).toBe(0); // what npm run build's postbuild does
      expect(script('--check')).toMatchObject({ status: 0, stdout: expect.stringContaining('up to date') });
      const start = script(); // as prestart: says it starts without a rebuild
      expect(start).toMatchObject({ status: 0, stdout: 'dist/ is up to date with src/: starting without a rebuild\n' });
      writeFileSync(join(copy, 'src', 'main.ts'), '// edited\n', { flag: 'a' });
      expect(script('--check')).toMatchObject({ status: 1, stdout: expect.stringContaining('a build is due') });
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });
});

describe('npm run user:admin without a terminal', () => {
  const t = useTestApp();
  const run = (email: string, env: Record<string, string | undefined>, input = '') =>
    spawnSync(process.execPath, [...TS_NODE, join(ROOT, 'src', 'auth', 'user-admin.command.ts'), '--email', email], {
      env: childEnv({ ADMIN_PASSWORD: undefined, ...env }),
      input, // stdin is a pipe: no terminal
      encoding: 'utf8',
      timeout: 60_000,
    });

  it('a new account without ADMIN_PASSWORD: exit 1, says what to set, creates nothing', async () => {
    const result = run('new-admin@example.com', {}, 'typed password that is long\n');
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/no account new-admin@example\.com and no terminal .*set ADMIN_PASSWORD/);
    expect(result.stdout).not.toMatch(/password/i);
    expect(await t.db.count('users')).toBe(0);
  });

  it('an existing account is promoted without asking for (or echoing) a password', async () => {
    const ada = await signUp(t.api, 'Ada');
    const result = run(ada.email, {}, 'typed password that is long\n');
    expect([result.status, result.stdout.split('\n').at(-2)]).toEqual([0, `${ada.email}: promoted`]);
    expect(result.stdout + result.stderr).not.toMatch(/password/i);
    const [row] = await t.query('SELECT role FROM users WHERE id = $1', [ada.id]);
    expect(row.role).toBe('admin');
    await t.api.post('/auth/login').send({ email: ada.email, password: PASSWORD }).expect(200);
  });

  it('prints no DEBUG lines at the default LOG_LEVEL (TypeORM listed every migration file); LOG_LEVEL=debug shows them', async () => {
    const ada = await signUp(t.api, 'Ada');
    const quiet = run(ada.email, { LOG_LEVEL: undefined });
    expect({ status: quiet.status, output: quiet.stdout + quiet.stderr }).toEqual({
      status: 0,
      output: `${ada.email}: promoted\n`,
    });
    const chatty = run(ada.email, { LOG_LEVEL: 'debug' });
    expect(chatty.stdout + chatty.stderr).toMatch(/DEBUG.*All classes found using provided glob pattern/);
  });

  it('a new account with ADMIN_PASSWORD is created as an admin', async () => {
    const result = run('root@example.com', { ADMIN_PASSWORD: 'the admin password, long enough' });
    expect([result.status, result.stdout.split('\n').at(-2)]).toEqual([0, 'root@example.com: created']);
    await t.api
      .post('/auth/login')
      .send({ email: 'root@example.com', password: 'the admin password, long enough' })
      .expect(200);
  });
});

describe('Swagger UI: padlocks where a token is needed, and "Try it out" examples that work', () => {
  const t = useTestApp();
  type Operation = { security?: Record<string, string[]>[]; requestBody?: RequestBody };
  type RequestBody = { content: Record<string, { examples?: Record<string, { value: unknown }> }> };
  const document = openApiDocument<{ paths: Record<string, Record<string, Operation>> }>();

  it('an operation has a padlock (security) exactly when it answers 401 without a token (OpenAPI 3.1 §4.8.10)', async () => {
    const ada = await t.db.user('Ada');
    const post = await t.db.post(ada.id);
    const comment = await t.db.comment(post.id, ada.id);
    const ids: Record<string, number> = { users: ada.id, posts: post.id, comments: comment.id };
    for (const [template, operations] of Object.entries(document.paths)) {
      const url = template.replace(/([a-z]+)\/\{\w+\}/g, (_, collection: string) => `${collection}/${ids[collection]}`);
      for (const [method, operation] of Object.entries(operations)) {
        const res = await t.api[method as 'get'](url).send({});
        const needsToken = res.status === 401;
        // Swagger UI: no `security` → no padlock; `[{}]` among the requirements → a closed one, as if signed in.
        expect([method, template, operation.security]).toEqual([
          method,
          template,
          needsToken ? [{ bearer: [] }] : undefined,
        ]);
      }
    }
  });

  it('PATCH /users/{id}: the example "Try it out" pre-fills succeeds for a user on their own account', async () => {
    const ada = await signUp(t.api, 'Ada');
    const [first] = Object.values(
      document.paths['/users/{id}'].patch.requestBody!.content['application/json'].examples!,
    );
    const res = await t.api
      .patch(`/users/${ada.id}`)
      .set('Authorization', `Bearer ${ada.token}`)
      .send(first.value as object);
    expect(res.status).toBe(200);
    const [row] = await t.query('SELECT name FROM users WHERE id = $1', [ada.id]);
    expect(row.name).toBe((first.value as { name: string }).name);
  });
});
