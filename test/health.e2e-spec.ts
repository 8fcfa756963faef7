import { startTestApp, useTestApp } from './setup/test-app';

describe('health', () => {
  const t = useTestApp({}, { resetEachTest: false });

  it('GET /health answers while the process is alive', async () => {
    const res = await t.api.get('/health').expect(200);
    expect(res.body.status).toBe('ok');
  });

  it('GET /health/ready reports the database as up', async () => {
    const res = await t.api.get('/health/ready').expect(200);
    expect(res.body.details.database.status).toBe('up');
  });

  it('GET /health/ready is 503 problem+json when the database is gone', async () => {
    const broken = await startTestApp({});
    await broken.dataSource.destroy(); // the pool is closed: nothing can answer
    const res = await broken.api.get('/health/ready').expect(503);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    await broken.app.close().catch(() => undefined);
  });
});
