import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { loadConfig, loadDotEnv } from '../config/app.config';
import { resolve } from 'node:path';
import { dialectOf } from './dialects/dialect';
import { runningEmbeddedPostgres, startEmbeddedPostgres, type RunningPostgres } from './dialects/embedded-postgres';

/**
 * `npm run db:psql`: psql on the app's database — DATABASE_URL when set, else the embedded PostgreSQL:
 * the one running on EMBEDDED_PG_DATA_DIR (found by its lock file), else the one `npm start` runs on
 * another data directory (EMBEDDED_PG_DATA_DIR need not be repeated), or, when none runs, one started
 * for this session and stopped after. `npm run db:psql -- --url` prints the connection URL (with its password)
 * for another client instead. Needs `psql` on PATH; the embedded package ships only the server.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({ options: { url: { type: 'boolean', default: false } } });
  loadDotEnv();
  const config = loadConfig();
  let started: RunningPostgres | undefined;
  let url = config.database.url;
  if (!url) {
    const running = runningEmbeddedPostgres(config.embeddedPostgres.dataDir);
    if (running && running.dataDir !== resolve(config.embeddedPostgres.dataDir)) {
      console.error(
        `db:psql: the embedded PostgreSQL running on ${running.dataDir} (nothing runs on ${config.embeddedPostgres.dataDir})`,
      );
    }
    url = running?.url;
  }
  if (!url) {
    if (values.url)
      throw new Error(`no embedded PostgreSQL is running on ${config.embeddedPostgres.dataDir}: npm start first`);
    started = await startEmbeddedPostgres(config.embeddedPostgres);
    url = started.url;
  }
  if (values.url) {
    console.log(url);
    return;
  }
  if (dialectOf(url) !== 'postgres') {
    throw new Error(`npm run db:psql opens PostgreSQL only; connect your ${dialectOf(url)} client to ${url}`);
  }
  try {
    process.on('SIGINT', () => {}); // Ctrl-C cancels psql's query, not this process
    const psql = spawnSync('psql', [url], { stdio: 'inherit' });
    if (psql.error && (psql.error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error(
        `psql is not installed (it comes with any PostgreSQL client package); connect your client to ${url}`,
      );
    }
    process.exitCode = psql.status ?? 1;
  } finally {
    await started?.stop();
  }
}

main().catch((error: unknown) => {
  console.error(`db:psql failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
