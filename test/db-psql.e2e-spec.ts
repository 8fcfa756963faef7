import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedPostgres } from '../src/database/dialects/embedded-postgres';

/** `npm run db:psql` as a user runs it, with DATABASE_URL unset: it must find the running embedded server. */
function dbPsql(args: string[], input = '', extraEnv: NodeJS.ProcessEnv = {}) {
  const env = { ...process.env, ...extraEnv };
  delete env.DATABASE_URL;
  return spawnSync(
    process.execPath,
    ['-r', 'ts-node/register/transpile-only', join(__dirname, '..', 'src', 'database', 'psql.command.ts'), ...args],
    { env: { ...env, NODE_OPTIONS: '' }, input, encoding: 'utf8', timeout: 60_000 },
  );
}

describe('npm run db:psql (the embedded database without reading the source)', () => {
  const embedded = !process.env.TEST_DATABASE_URL;

  it('--url prints the running embedded server’s URL, password included', () => {
    if (!embedded) return console.info('TEST_DATABASE_URL is set: no embedded server to find');
    const run = dbPsql(['--url']);
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe(process.env.DATABASE_URL);
    expect(run.stdout).toMatch(/^postgresql:\/\/postgres:postgres@127\.0\.0\.1:\d+\/postgres$/m);
  });

  it('opens psql on it (or, without psql, says so and gives the URL)', () => {
    if (!embedded) return console.info('TEST_DATABASE_URL is set: no embedded server to find');
    const run = dbPsql([], 'SELECT count(*) AS applied FROM migrations;\n');
    if (run.status === 1 && run.stderr.includes('psql is not installed')) {
      expect(run.stderr).toContain(process.env.DATABASE_URL);
      return console.info('no psql on PATH: checked the message instead');
    }
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/applied\s*\n-+\s*\n\s*\d+/);
  });

  it('finds the server `npm start` runs on another EMBEDDED_PG_DATA_DIR, without the variable repeated', async () => {
    // As `EMBEDDED_PG_DATA_DIR=… npm start` does: a persistent embedded server on its own data directory.
    const dataDir = join(tmpdir(), `nest-typeorm-users-psql-${randomUUID()}`);
    const started = await startEmbeddedPostgres({ dataDir, port: 0 });
    const elsewhere = { EMBEDDED_PG_DATA_DIR: join(tmpdir(), `nest-typeorm-users-nothing-${randomUUID()}`) };
    try {
      const run = dbPsql(['--url'], '', elsewhere); // its own setting names a directory where nothing runs
      expect(run.stdout.trim()).toBe(started.url);
      expect(run.stderr).toContain(`the embedded PostgreSQL running on ${dataDir}`);
    } finally {
      await started.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
    // Stopped: nothing to find any more (no stale record), and --url says so instead of starting one.
    const after = dbPsql(['--url'], '', elsewhere);
    expect(after.status).toBe(1);
    expect(after.stderr).toContain('no embedded PostgreSQL is running');
  });
});
