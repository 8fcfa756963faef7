import './node-version'; // first: refuses an old Node.js before argon2 (a native addon) can crash it
import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import type { AddressInfo } from 'node:net';
import { constants } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadOrCreateSecret } from './auth/jwt-secret';
import { DataSource } from 'typeorm';
import { type AppConfig, loadConfig, loadDotEnv } from './config/app.config';
import { type RunningPostgres, startEmbeddedPostgres } from './database/dialects/embedded-postgres';
import { describeMigrations } from './database/migrations/migration-status';
import { Draining } from './health/draining';

const logger = new Logger('Bootstrap');

/**
 * Every signal that asks this process to end: the terminal's Ctrl-C (SIGINT) and Ctrl-\\ (SIGQUIT), a
 * closed terminal (SIGHUP), a supervisor's stop (SIGTERM). Left to Node, each ends the process at once,
 * without its 'exit' event, and the embedded PostgreSQL (a process group of its own, so no terminal
 * signal reaches it) would run on, holding the data directory. SIGKILL cannot be caught: the next
 * start stops such a server (database/dialects/embedded-postgres.ts).
 */
const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT'] as const;

/** What a stop signal does: nothing until the app listens, then main.ts's drain. */
let onStopSignal: ((signal: NodeJS.Signals) => void) | undefined;

async function bootstrap(): Promise<void> {
  // Before anything starts: a stop signal while starting exits through process.exit, whose 'exit'
  // event stops an embedded PostgreSQL already spawned (embedded-postgres's exit hook).
  for (const signal of STOP_SIGNALS)
    process.on(signal, (s) => {
      if (onStopSignal) return onStopSignal(s);
      console.error(`${s} received while starting: stopped`);
      process.exit(128 + constants.signals[s]);
    });
  Logger.attachBuffer(); // lines wait for the app's logger (pino), so all come out in one format; a failed start drops them
  loadDotEnv();
  const loaded = loadConfig();
  // Tracing hooks http, pg and Nest as they load, so the app's modules are required only after it starts.
  const tracing = loaded.tracing.enabled ? loadModule<Tracer>('./tracing/tracing-sdk').startTracing() : undefined;
  const { createApp } = loadModule<typeof import('./app.setup')>('./app.setup');

  let embedded: RunningPostgres | undefined;
  if (!loaded.database.url) {
    const { dataDir, port } = loaded.embeddedPostgres;
    embedded = await startEmbeddedPostgres({ dataDir, port });
    if (embedded.tookOver)
      logger.warn(
        `The embedded PostgreSQL on ${dataDir} was still running (pid ${embedded.tookOver.pid}) for an app that is gone: stopped it`,
      );
  }
  logger.log(
    embedded
      ? `No DATABASE_URL set: started embedded PostgreSQL at ${redact(embedded.url)}, data in ${loaded.embeddedPostgres.dataDir} (npm run db:psql opens psql on it). Set DATABASE_URL to use your own server.`
      : `Database: ${redact(loaded.database.url)}`,
  );

  try {
    // The configuration as loaded is never changed: with the embedded server, a copy names its URL and
    // (unless JWT_SECRET is set) a secret that survives restarts of an unconfigured `npm start`: it lives
    // beside the data directory, named after it, so two data directories in one parent never share one.
    const config: AppConfig = embedded
      ? {
          ...loaded,
          database: { ...loaded.database, url: embedded.url },
          auth: {
            ...loaded.auth,
            jwtSecret:
              loaded.auth.jwtSecret ?? (await loadOrCreateSecret(`${loaded.embeddedPostgres.dataDir}.jwt-secret`)),
          },
        }
      : loaded;
    const app = await createApp(config).catch((error: Error) => {
      throw new Error(`cannot use the database at ${redact(config.database.url)}: ${error.message}`);
    });
    logger.log(await describeMigrations(app.get(DataSource)));
    await app.listen(config.port, config.host);
    logger.log(listeningMessage(app.getHttpServer().address() as AddressInfo));

    // The guide's `await engine.dispose()` (docs/from-sqlalchemy.md): readiness turns 503 (and stays so for SHUTDOWN_GRACE_MS on
    // SIGTERM, so a load balancer can notice while we still serve), then stop accepting, let in-flight
    // requests finish, close the pool (TypeOrmModule destroys the DataSource), stop the embedded database.
    const shutdown = async (signal: NodeJS.Signals) => {
      const grace = signal === 'SIGTERM' ? config.shutdownGraceMs : 0;
      logger.log(`${signal} received: draining${grace ? ` after ${grace} ms` : ''}`);
      const deadline = setTimeout(() => {
        logger.error(`Shutdown took longer than ${grace + config.shutdownTimeoutMs} ms; exiting`);
        process.exit(1);
      }, grace + config.shutdownTimeoutMs).unref();
      app.get(Draining).begin();
      await sleep(grace);
      await app.close();
      await tracing?.shutdown();
      await embedded?.stop();
      clearTimeout(deadline);
      logger.log('Stopped');
    };
    // Ctrl-C in a terminal reaches node twice (from the terminal and forwarded by npm): a repeated
    // signal must not take Node's default action (exit at once, mid-drain), and is no news worth a
    // line on a normal stop; the deadline bounds the drain.
    let stopping = false;
    onStopSignal = (s) => {
      if (stopping) return logger.debug(`${s} received again: still draining`);
      stopping = true;
      void shutdown(s).catch(exitWith('Shutdown failed'));
    };
  } catch (error) {
    await embedded?.stop();
    throw error;
  }
}

type Tracer = typeof import('./tracing/tracing-sdk');

/** A module of ours, required now rather than when main.ts loads. */
function loadModule<T>(path: string): T {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path) as T;
}

/**
 * Where the server listens, truthfully: the address it bound and the URL to use, plus, for a
 * wildcard address (0.0.0.0, ::), that every interface is served, and for loopback, that only this
 * machine can connect (with how to change that).
 */
function listeningMessage({ address, port }: AddressInfo): string {
  const wildcard = address === '0.0.0.0' || address === '::';
  const url = `http://${wildcard ? 'localhost' : address.includes(':') ? `[${address}]` : address}:${port}`;
  const where = wildcard
    ? `every interface (${address}) on port ${port}, from this machine at ${url}`
    : /^(127\.|::1$|::ffff:127\.)/.test(address) // loopback (RFC 6890)
      ? `${url} (this machine only; HOST=0.0.0.0 listens on every interface)`
      : url;
  return `Listening on ${where}; API docs at ${url}/docs. Stop with Ctrl-C or SIGTERM.`;
}

/** Connection URL without its password, fit for a log line. */
function redact(url = ''): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}

/** One line, no stack: a bad configuration or an unreachable database is an operator's problem. */
function exitWith(context: string) {
  return (error: unknown): never => {
    console.error(`${context}: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  };
}

bootstrap().catch(exitWith('Startup failed'));
