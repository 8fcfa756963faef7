import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

/** `npm run db:psql` as a user runs it, with DATABASE_URL unset: it must find the running embedded server. */
function dbPsql(args: string[], input = '') {
  const env = { ...process.env };
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
});
