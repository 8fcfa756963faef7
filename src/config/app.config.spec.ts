import { ConfigError, loadConfig } from './app.config';

describe('loadConfig', () => {
  // the guide: docs/from-sqlalchemy.md
  it('defaults to the guide’s engine: pool of 10 plus 20 overflow, embedded database', () => {
    const config = loadConfig({});
    expect(config.port).toBe(3000);
    expect(config.database).toEqual(
      expect.objectContaining({
        url: undefined,
        poolSize: 10,
        poolMaxOverflow: 20,
        logging: false,
        migrationsRun: true,
      }),
    );
    expect(config.embeddedPostgres).toEqual({ dataDir: '.data/postgres', port: 0 });
  });

  it('reads numbers, booleans and the database URL from the environment', () => {
    const config = loadConfig({
      PORT: '8080',
      DB_POOL_SIZE: '4',
      DB_LOGGING: 'true',
      DATABASE_URL: 'postgres://u@h/db',
      DB_MIGRATIONS_RUN: '0',
    });
    expect(config.port).toBe(8080);
    expect(config.database).toEqual(
      expect.objectContaining({ url: 'postgres://u@h/db', poolSize: 4, logging: true, migrationsRun: false }),
    );
  });

  it.each([
    [{ DB_POOL_SIZE: 'abc' }, 'DB_POOL_SIZE="abc": DB_POOL_SIZE must be an integer number'],
    [{ DB_POOL_SIZE: '0' }, 'DB_POOL_SIZE=0: DB_POOL_SIZE must not be less than 1'],
    [{ PORT: '70000' }, 'PORT=70000'],
    [{ DB_LOGGING: 'maybe' }, 'DB_LOGGING="maybe": DB_LOGGING must be a boolean value'],
    [{ DATABASE_URL: 'mysql://root@localhost/test' }, 'DATABASE_URL must be a postgres:// URL'],
    [{ NODE_ENV: 'staging' }, 'NODE_ENV="staging"'],
  ])('rejects %j with a one-line reason naming the variable', (env, reason) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(reason);
  });
});
