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

  it('listens on loopback with the embedded database, on every interface with DATABASE_URL, on HOST when set', () => {
    expect(loadConfig({}).host).toBe('127.0.0.1');
    expect(loadConfig({ DATABASE_URL: 'postgres://u@h/db' }).host).toBe('0.0.0.0');
    expect(loadConfig({ HOST: '::' }).host).toBe('::');
    expect(loadConfig({ DATABASE_URL: 'sqlite:x.db', HOST: '127.0.0.1' }).metrics.host).toBe('127.0.0.1');
    expect(() => loadConfig({ HOST: 'http://example.com' })).toThrow('HOST must be an IP address or a host name');
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

  it('turns tracing on with an OTLP endpoint (standard OTEL_* variables) unless OTEL_SDK_DISABLED, metrics on by default', () => {
    expect(loadConfig({}).tracing.enabled).toBe(false);
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }).tracing.enabled).toBe(true);
    expect(loadConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }).tracing.enabled).toBe(
      true,
    );
    expect(
      loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'true' }).tracing.enabled,
    ).toBe(false);
    expect(loadConfig({}).metrics).toEqual({ enabled: true, token: undefined, port: undefined, host: '127.0.0.1' });
    expect(loadConfig({ METRICS_PORT: '9464', METRICS_TOKEN: 'x'.repeat(16) }).metrics).toEqual({
      enabled: true,
      token: 'x'.repeat(16),
      port: 9464,
      host: '127.0.0.1',
    });
  });

  it.each([
    [{ METRICS_TOKEN: 'short' }, 'METRICS_TOKEN=***: METRICS_TOKEN must be longer'], // a secret is never echoed
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, 'OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s):// URL'],
    [{ DB_POOL_SIZE: 'abc' }, 'DB_POOL_SIZE="abc": DB_POOL_SIZE must be an integer number'],
    [{ DB_POOL_SIZE: '0' }, 'DB_POOL_SIZE=0: DB_POOL_SIZE must not be less than 1'],
    [{ PORT: '70000' }, 'PORT=70000'],
    [{ DB_LOGGING: 'maybe' }, 'DB_LOGGING="maybe": DB_LOGGING must be a boolean value'],
    [
      { DATABASE_URL: 'mssql://sa@localhost/test' },
      'DATABASE_URL must be a postgres://, mysql://, mariadb:// or sqlite: URL',
    ],
    [{ NODE_ENV: 'staging' }, 'NODE_ENV="staging"'],
  ])('rejects %j with a one-line reason naming the variable', (env, reason) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(reason);
  });
});

describe('loadConfig: identity', () => {
  it('refuses to start in production without JWT_SECRET, in one line', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(
      'Invalid configuration: JWT_SECRET must be set when NODE_ENV=production',
    );
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32) }).auth.jwtSecret).toBe('x'.repeat(32));
  });

  it('never repeats a secret in an error message', () => {
    expect(() => loadConfig({ JWT_SECRET: 'short-but-secret' })).toThrow('JWT_SECRET=***: JWT_SECRET must be');
    expect(() => loadConfig({ JWT_SECRET: 'short-but-secret' })).not.toThrow(/short-but-secret/);
  });

  it('ensures an admin only when both ADMIN_EMAIL and ADMIN_PASSWORD are set', () => {
    expect(loadConfig({ ADMIN_EMAIL: 'root@example.com' }).auth.admin).toBeUndefined();
    expect(loadConfig({ ADMIN_EMAIL: 'root@example.com', ADMIN_PASSWORD: 'p' }).auth.admin).toEqual({
      email: 'root@example.com',
      password: 'p',
      name: 'Admin',
    });
  });
});

describe('configuration for several instances', () => {
  const production = { NODE_ENV: 'production', DATABASE_URL: 'postgres://u@h/db', JWT_SECRET: 'x'.repeat(32) };

  it('refuses production on a shared database without CURSOR_SECRET, in one line naming it', () => {
    expect(() => loadConfig(production)).toThrow(ConfigError);
    expect(() => loadConfig(production)).toThrow(/^Invalid configuration: CURSOR_SECRET must be set[^\n]*$/);
    expect(loadConfig({ ...production, CURSOR_SECRET: 'a-long-enough-secret' }).cursorSecret).toBe(
      'a-long-enough-secret',
    );
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32) }).cursorSecret).toBeUndefined(); // embedded database: one instance
  });

  it('reads the replicas, their lag bound and the shared Redis', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgres://u@primary/db',
      DATABASE_REPLICA_URLS: ' postgres://u@r1/db , postgresql://u@r2/db,',
      DB_REPLICA_MAX_LAG_MS: '500',
      REDIS_URL: 'redis://127.0.0.1:6379/2',
    });
    expect(config.database.replicaUrls).toEqual(['postgres://u@r1/db', 'postgresql://u@r2/db']);
    expect(config.database.replicaMaxLagMs).toBe(500);
    expect(config.rateLimit).toEqual(
      expect.objectContaining({ redisUrl: 'redis://127.0.0.1:6379/2', redisKeyPrefix: 'nest-typeorm-users:' }),
    );
    expect(loadConfig({}).database.replicaUrls).toEqual([]);
  });

  it.each([
    [{ DATABASE_URL: 'postgres://u@h/db', DATABASE_REPLICA_URLS: 'mysql://r/db' }, 'DATABASE_REPLICA_URLS must be'],
    [{ DATABASE_REPLICA_URLS: 'postgres://r/db' }, 'DATABASE_REPLICA_URLS needs DATABASE_URL'],
    [
      { DATABASE_URL: 'mariadb://root@h/db', DATABASE_REPLICA_URLS: 'postgres://r/db' },
      'DATABASE_REPLICA_URLS works with a PostgreSQL DATABASE_URL only',
    ],
    [{ REDIS_URL: 'localhost:6379' }, 'REDIS_URL must be a redis://'],
  ])('rejects %j in one line', (env, reason) => {
    expect(() => loadConfig(env)).toThrow(reason);
  });
});

describe('loadConfig: mail and accounts', () => {
  it('writes mail beside the embedded database by default, links to localhost, and verifies nothing to write', () => {
    const config = loadConfig({ EMBEDDED_PG_DATA_DIR: '/srv/app/data/postgres', PORT: '8080' });
    expect(config.mail).toEqual(
      expect.objectContaining({ smtpUrl: undefined, dir: '/srv/app/data/mail', publicUrl: 'http://localhost:8080' }),
    );
    expect(config.auth.accounts.unverifiedMayWrite).toBe(true);
    expect(loadConfig({ MAIL_DIR: '/var/mail/app', PUBLIC_URL: 'https://app.example.com/' }).mail).toEqual(
      expect.objectContaining({ dir: '/var/mail/app', publicUrl: 'https://app.example.com' }),
    );
  });

  it.each([
    [{ PUBLIC_URL: 'app.example.com' }, 'PUBLIC_URL must be an http(s):// URL'],
    [{ PUBLIC_URL: 'https://app.example.com/?next=x' }, 'PUBLIC_URL must be an http(s):// URL'],
    [{ PASSWORD_RESET_TTL_SECONDS: '10' }, 'PASSWORD_RESET_TTL_SECONDS'],
  ])('rejects %j in one line', (env, reason) => {
    expect(() => loadConfig(env)).toThrow(reason);
  });

  it('never repeats SMTP_URL (it holds the SMTP password) in an error message', () => {
    expect(() => loadConfig({ SMTP_URL: 'http://user:hunter2hunter2@mail.example.com' })).toThrow(
      'SMTP_URL=***: SMTP_URL must be an smtp:// or smtps:// URL',
    );
  });
});
