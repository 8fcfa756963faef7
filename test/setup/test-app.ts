import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { createApp } from '../../src/app.factory';
import { loadConfig } from '../../src/config/app.config';

export interface TestApp {
  app: NestFastifyApplication;
  api: ReturnType<typeof request>;
  dataSource: DataSource;
  /** Runs `action` and returns the SQL statements it sent, as seen by the real DataSource's logger. */
  queriesDuring(action: () => Promise<unknown>): Promise<string[]>;
  /** Empties every table between tests. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

/** The app exactly as main.ts builds it, on the database prepared by global-setup.ts. */
export async function startTestApp(env: NodeJS.ProcessEnv = {}): Promise<TestApp> {
  const app = await createApp(loadConfig({ ...process.env, ...env }));
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
  const dataSource = app.get(DataSource);
  return {
    app,
    api: request(app.getHttpServer()),
    dataSource,
    async queriesDuring(action) {
      const spy = jest.spyOn(dataSource.logger, 'logQuery');
      try {
        await action();
        return spy.mock.calls.map(([sql]) => sql);
      } finally {
        spy.mockRestore();
      }
    },
    reset: () => dataSource.query('TRUNCATE users, profiles, posts, comments RESTART IDENTITY CASCADE'),
    close: () => app.close(),
  };
}
