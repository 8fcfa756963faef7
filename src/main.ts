import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createApp } from './app.factory';
import { ConfigError, loadConfig, loadDotEnv } from './config/app.config';
import { type RunningPostgres, startEmbeddedPostgres } from './database/embedded-postgres';

const logger = new Logger('Bootstrap');

async function bootstrap(): Promise<void> {
  loadDotEnv();
  const config = loadConfig();

  let embedded: RunningPostgres | undefined;
  if (!config.database.url) {
    const { dataDir, port } = config.embeddedPostgres;
    embedded = await startEmbeddedPostgres({ dataDir, port });
    config.database.url = embedded.url;
    logger.log(
      `No DATABASE_URL set: started embedded PostgreSQL at ${embedded.url} (data in ${dataDir}). Set DATABASE_URL to use your own server.`,
    );
  }

  try {
    const app = await createApp(config).catch((error: Error) => {
      throw new Error(`cannot use the database at ${redact(config.database.url)}: ${error.message}`);
    });
    await app.listen(config.port);
    logger.log(`Listening on http://localhost:${config.port}`);

    // The guide's `await engine.dispose()`: stop accepting, let in-flight requests finish, close the
    // pool (TypeOrmModule destroys the DataSource on close), then stop the embedded database.
    const shutdown = async (signal: NodeJS.Signals) => {
      logger.log(`${signal} received: draining`);
      const deadline = setTimeout(() => {
        logger.error(`Shutdown took longer than ${config.shutdownTimeoutMs} ms; exiting`);
        process.exit(1);
      }, config.shutdownTimeoutMs).unref();
      await app.close();
      await embedded?.stop();
      clearTimeout(deadline);
      logger.log('Stopped');
    };
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, (s) => void shutdown(s).catch(fail));
  } catch (error) {
    await embedded?.stop();
    throw error;
  }
}

/** Connection URL without its password, fit for a log line. */
function redact(url = ''): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}

function fail(error: unknown): never {
  // One line, no stack: a bad configuration or an unreachable database is an operator's problem.
  const reason = error instanceof ConfigError || error instanceof Error ? error.message : String(error);
  console.error(`Startup failed: ${reason}`);
  process.exit(1);
}

bootstrap().catch(fail);
