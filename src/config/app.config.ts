import { plainToInstance } from 'class-transformer';
import {
  IsBoolean,
  IsEmail,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Length,
  Matches,
  Max,
  Min,
  validateSync,
} from 'class-validator';

/** Environment variables the service reads, with their defaults. `.env.example` documents each one. */
class Environment {
  @IsIn(['development', 'production', 'test'])
  NODE_ENV: 'development' | 'production' | 'test' = 'development';

  @IsInt()
  @Min(0)
  @Max(65535)
  PORT = 3000;

  /**
   * postgres://, mysql:// / mariadb:// or sqlite: (database/dialect.ts); unset: an embedded PostgreSQL
   * is started under EMBEDDED_PG_DATA_DIR.
   */
  @IsOptional()
  @Matches(/^(postgres(ql)?|mysql|mariadb):\/\/|^sqlite:/, {
    message: 'DATABASE_URL must be a postgres://, mysql://, mariadb:// or sqlite: URL',
  })
  DATABASE_URL?: string;

  /** Comma-separated postgres:// URLs of read replicas (hot standbys streaming from DATABASE_URL). */
  @IsString()
  DATABASE_REPLICA_URLS = '';

  /** A replica further behind the primary than this is skipped until it catches up. */
  @IsInt()
  @Min(0)
  DB_REPLICA_MAX_LAG_MS = 2_000;

  // The guide's create_async_engine(pool_size=10, max_overflow=20) (docs/from-sqlalchemy.md): 10 kept, up to 30 under load.
  @IsInt()
  @Min(1)
  @Max(1000)
  DB_POOL_SIZE = 10;

  @IsInt()
  @Min(0)
  @Max(1000)
  DB_POOL_MAX_OVERFLOW = 20;

  /** How long a request waits for a pooled connection before it gets 503. */
  @IsInt()
  @Min(1)
  DB_POOL_TIMEOUT_MS = 5_000;

  /** Connections above DB_POOL_SIZE are closed after being idle this long. */
  @IsInt()
  @Min(1)
  DB_POOL_IDLE_TIMEOUT_MS = 10_000;

  @IsInt()
  @Min(0)
  DB_STATEMENT_TIMEOUT_MS = 15_000;

  /** Queries slower than this are logged as warnings. */
  @IsInt()
  @Min(1)
  DB_SLOW_QUERY_MS = 500;

  /** The guide's `echo=True` (docs/from-sqlalchemy.md): log every SQL statement. */
  @IsBoolean()
  DB_LOGGING = false;

  @IsBoolean()
  DB_MIGRATIONS_RUN = true;

  @IsString()
  EMBEDDED_PG_DATA_DIR = '.data/postgres';

  /** 0 picks a free port. */
  @IsInt()
  @Min(0)
  @Max(65535)
  EMBEDDED_PG_PORT = 0;

  @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
  LOG_LEVEL: LogLevel = 'info';

  /** `json` (one object a line) or `pretty`; unset: json in production, pretty otherwise. */
  @IsOptional()
  @IsIn(['json', 'pretty'])
  LOG_FORMAT?: 'json' | 'pretty';

  @IsInt()
  @Min(1)
  HEALTH_DB_TIMEOUT_MS = 1_000;

  /** On SIGTERM: how long /health/ready reports 503 while requests are still served, before draining. */
  @IsInt()
  @Min(0)
  SHUTDOWN_GRACE_MS = 0;

  /** In-flight requests get this long to finish on SIGTERM before the process gives up. */
  @IsInt()
  @Min(1)
  SHUTDOWN_TIMEOUT_MS = 10_000;

  /** Comma-separated origins allowed by CORS (`*` for any); empty disables CORS. */
  @IsString()
  CORS_ORIGINS = '';

  /** Requests per client IP per RATE_LIMIT_WINDOW_MS before 429; 0 disables rate limiting. */
  @IsInt()
  @Min(0)
  RATE_LIMIT_MAX = 600;

  @IsInt()
  @Min(1)
  RATE_LIMIT_WINDOW_MS = 60_000;

  /** Reverse proxies in front of the app (Fastify trustProxy), so rate limits key on the real client. */
  @IsInt()
  @Min(0)
  TRUST_PROXY_HOPS = 0;

  /** Signs pagination cursors. Unset: a random key, so cursors expire when the process restarts. */
  @IsOptional()
  @IsString()
  @Length(16, 256)
  CURSOR_SECRET?: string;

  /** Signs access tokens (HS256). Unset: generated once next to the embedded database; required in production. */
  @IsOptional()
  @IsString()
  @Length(32, 512, { message: 'JWT_SECRET must be 32 to 512 characters long' })
  JWT_SECRET?: string;

  /** Access token lifetime in seconds: short, since a refresh token renews it. */
  @IsInt()
  @Min(30)
  @Max(86_400)
  ACCESS_TOKEN_TTL_SECONDS = 900;

  /** How long a session (its refresh token chain) lives at most, in seconds, however often it is refreshed. */
  @IsInt()
  @Min(60)
  SESSION_TTL_SECONDS = 30 * 86_400;

  /** Failed logins allowed per account per LOGIN_FAILURE_WINDOW_MS, from all clients together. */
  @IsInt()
  @Min(1)
  LOGIN_MAX_FAILURES_PER_ACCOUNT = 10;

  /** Failed logins allowed per client IP per LOGIN_FAILURE_WINDOW_MS, whatever the accounts. */
  @IsInt()
  @Min(1)
  LOGIN_MAX_FAILURES_PER_CLIENT = 100;

  /** The window failed logins are counted in; a blocked account or client is free again when it ends. */
  @IsInt()
  @Min(1_000)
  LOGIN_FAILURE_WINDOW_MS = 15 * 60_000;

  /** With ADMIN_PASSWORD: this account exists as an admin after startup (created if missing). Alone: ignored. */
  @IsOptional()
  @IsEmail({}, { message: 'ADMIN_EMAIL must be an email address' })
  ADMIN_EMAIL?: string;

  @IsOptional()
  @IsString()
  ADMIN_PASSWORD?: string;

  @IsString()
  @Length(1, 100)
  ADMIN_NAME = 'Admin';

  /** Redis that instances share the rate limit through; unset keeps the counters in this process's memory. */
  @IsOptional()
  @Matches(/^rediss?:\/\//, { message: 'REDIS_URL must be a redis:// or rediss:// URL' })
  REDIS_URL?: string;

  /** Prefix of every key this service writes to Redis, so it can share a Redis with others. */
  @IsString()
  REDIS_KEY_PREFIX = 'nest-typeorm-users:';

  /**
   * How long an Idempotency-Key and its stored response are kept (docs/idempotency.md): a retry within
   * it gets the stored response, after it the key is forgotten and a request with it runs anew.
   * Published in the OpenAPI description of the header.
   */
  @IsInt()
  @Min(60)
  @Max(30 * 86_400)
  IDEMPOTENCY_KEY_TTL_SECONDS = 86_400;

  /**
   * Live Idempotency-Keys one signed-in caller may hold: a request with a new key past it gets 429
   * (Retry-After) until older keys expire, so no client can fill the table.
   */
  @IsInt()
  @Min(1)
  IDEMPOTENCY_MAX_KEYS_PER_CALLER = 10_000;

  /** How often each instance deletes expired keys (at most 10 batches of 1,000 per run); 0: never (another instance does). */
  @IsInt()
  @Min(0)
  IDEMPOTENCY_PURGE_INTERVAL_MS = 60_000;

  /** Prometheus metrics: recorded and served at GET /metrics (see metrics/metrics-exposure.ts). */
  @IsBoolean()
  METRICS_ENABLED = true;

  /** Set: /metrics on the main port answers only `Authorization: Bearer <token>` (else from loopback only). */
  @IsOptional()
  @IsString()
  @Length(16, 256)
  METRICS_TOKEN?: string;

  /** Not 0: /metrics is served on this port only (a listener of its own), and the main port answers 404. */
  @IsInt()
  @Min(0)
  @Max(65535)
  METRICS_PORT = 0;

  /**
   * OpenTelemetry's standard variables: either one set turns tracing on (the SDK reads them, and the
   * other OTEL_EXPORTER_OTLP_* ones, itself); OTEL_SDK_DISABLED=true turns it off again.
   */
  @IsOptional()
  @Matches(/^https?:\/\//, { message: 'OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s):// URL' })
  OTEL_EXPORTER_OTLP_ENDPOINT?: string;

  @IsOptional()
  @Matches(/^https?:\/\//, { message: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT must be an http(s):// URL' })
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?: string;

  @IsBoolean()
  OTEL_SDK_DISABLED = false;
}

type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface DatabaseConfig {
  /** Undefined until an embedded database has been started for it. */
  url?: string;
  poolSize: number;
  poolMaxOverflow: number;
  poolTimeoutMs: number;
  poolIdleTimeoutMs: number;
  statementTimeoutMs: number;
  slowQueryMs: number;
  logging: boolean;
  migrationsRun: boolean;
  /** Read replicas' URLs; empty: every query goes to `url`. */
  replicaUrls: string[];
  replicaMaxLagMs: number;
}

export interface AppConfig {
  env: Environment['NODE_ENV'];
  port: number;
  database: DatabaseConfig;
  embeddedPostgres: { dataDir: string; port: number };
  log: { level: LogLevel; format: 'json' | 'pretty' };
  healthDbTimeoutMs: number;
  shutdownGraceMs: number;
  shutdownTimeoutMs: number;
  cursorSecret?: string;
  corsOrigins: string[];
  /** `redisUrl` set: the counters live in Redis, under keys starting with `redisKeyPrefix`, shared by all instances. */
  rateLimit: { max: number; windowMs: number; redisUrl?: string; redisKeyPrefix: string };
  trustProxyHops: number;
  auth: AuthConfig;
  metrics: MetricsConfig;
  idempotency: IdempotencyConfig;
  tracing: { enabled: boolean };
}

/** The Idempotency-Key header's settings (see idempotency/). */
export interface IdempotencyConfig {
  keyTtlSeconds: number;
  maxKeysPerCaller: number;
  /** 0: this instance does not purge expired keys. */
  purgeIntervalMs: number;
}

export interface MetricsConfig {
  enabled: boolean;
  /** Bearer token a scrape must present; undefined: scrapes are accepted from loopback only. */
  token?: string;
  /** A port of its own for /metrics; undefined: the main port. */
  port?: number;
}

export interface AuthConfig {
  /** Undefined until main.ts has loaded or generated one (see auth/jwt-secret.ts). */
  jwtSecret?: string;
  accessTokenTtlSeconds: number;
  sessionTtlSeconds: number;
  login: { maxFailuresPerAccount: number; maxFailuresPerClient: number; failureWindowMs: number };
  /** Both set: the admin account ensured at startup. */
  admin?: { email: string; password: string; name: string };
}

/** Variables whose values never appear in an error message. */
const SECRETS = new Set(['CURSOR_SECRET', 'JWT_SECRET', 'ADMIN_PASSWORD', 'METRICS_TOKEN']);

/** Thrown for invalid configuration; main.ts prints its message alone, without a stack. */
export class ConfigError extends Error {}

const booleanStrings: Record<string, boolean> = {
  true: true,
  '1': true,
  yes: true,
  false: false,
  '0': false,
  no: false,
};

/** Reads and validates the environment once. The only place in the code that reads process.env. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const defaults = new Environment();
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(defaults) as (keyof Environment)[]) {
    const value = env[key];
    if (value === undefined || value === '') continue;
    const fallback = defaults[key];
    if (typeof fallback === 'number') raw[key] = /^-?\d+$/.test(value) ? Number(value) : value;
    else if (typeof fallback === 'boolean') raw[key] = booleanStrings[value.toLowerCase()] ?? value;
    else raw[key] = value;
  }

  const vars = Object.assign(new Environment(), plainToInstance(Environment, raw));
  const errors = validateSync(vars, { forbidUnknownValues: true });
  if (errors.length > 0) {
    const reasons = errors.map(
      (e) =>
        `${e.property}=${SECRETS.has(e.property) ? '***' : JSON.stringify(e.value)}: ${firstReason(e.constraints ?? {})}`,
    );
    throw new ConfigError(`Invalid configuration: ${reasons.join('; ')}`);
  }
  const replicaUrls = vars.DATABASE_REPLICA_URLS.split(',')
    .map((url) => url.trim())
    .filter(Boolean);
  const badReplica = replicaUrls.find((url) => !/^postgres(ql)?:\/\//.test(url));
  if (badReplica !== undefined) {
    throw new ConfigError('Invalid configuration: DATABASE_REPLICA_URLS must be comma-separated postgres:// URLs');
  }
  if (replicaUrls.length > 0 && !vars.DATABASE_URL) {
    throw new ConfigError(
      'Invalid configuration: DATABASE_REPLICA_URLS needs DATABASE_URL (the primary they replicate)',
    );
  }
  // Replica routing reads PostgreSQL's WAL positions (db/replicas.ts): there is no twin elsewhere.
  if (replicaUrls.length > 0 && !/^postgres(ql)?:\/\//.test(vars.DATABASE_URL ?? '')) {
    throw new ConfigError(
      'Invalid configuration: DATABASE_REPLICA_URLS works with a PostgreSQL DATABASE_URL only: unset it for MariaDB, MySQL or SQLite',
    );
  }
  // Several production instances on one database must verify each other's cursors.
  if (vars.NODE_ENV === 'production' && vars.DATABASE_URL && !vars.CURSOR_SECRET) {
    throw new ConfigError(
      'Invalid configuration: CURSOR_SECRET must be set when NODE_ENV=production and DATABASE_URL is set (every instance must sign cursors with the same key)',
    );
  }
  if (vars.NODE_ENV === 'production' && !vars.JWT_SECRET) {
    throw new ConfigError('Invalid configuration: JWT_SECRET must be set when NODE_ENV=production');
  }

  return {
    env: vars.NODE_ENV,
    port: vars.PORT,
    database: {
      url: vars.DATABASE_URL,
      poolSize: vars.DB_POOL_SIZE,
      poolMaxOverflow: vars.DB_POOL_MAX_OVERFLOW,
      poolTimeoutMs: vars.DB_POOL_TIMEOUT_MS,
      poolIdleTimeoutMs: vars.DB_POOL_IDLE_TIMEOUT_MS,
      statementTimeoutMs: vars.DB_STATEMENT_TIMEOUT_MS,
      slowQueryMs: vars.DB_SLOW_QUERY_MS,
      logging: vars.DB_LOGGING,
      migrationsRun: vars.DB_MIGRATIONS_RUN,
      replicaUrls,
      replicaMaxLagMs: vars.DB_REPLICA_MAX_LAG_MS,
    },
    log: { level: vars.LOG_LEVEL, format: vars.LOG_FORMAT ?? (vars.NODE_ENV === 'production' ? 'json' : 'pretty') },
    embeddedPostgres: {
      dataDir: vars.EMBEDDED_PG_DATA_DIR,
      port: vars.EMBEDDED_PG_PORT,
    },
    healthDbTimeoutMs: vars.HEALTH_DB_TIMEOUT_MS,
    shutdownGraceMs: vars.SHUTDOWN_GRACE_MS,
    shutdownTimeoutMs: vars.SHUTDOWN_TIMEOUT_MS,
    cursorSecret: vars.CURSOR_SECRET,
    corsOrigins: vars.CORS_ORIGINS.split(',')
      .map((origin) => origin.trim())
      .filter(Boolean),
    rateLimit: {
      max: vars.RATE_LIMIT_MAX,
      windowMs: vars.RATE_LIMIT_WINDOW_MS,
      redisUrl: vars.REDIS_URL,
      redisKeyPrefix: vars.REDIS_KEY_PREFIX,
    },
    trustProxyHops: vars.TRUST_PROXY_HOPS,
    auth: {
      jwtSecret: vars.JWT_SECRET,
      accessTokenTtlSeconds: vars.ACCESS_TOKEN_TTL_SECONDS,
      sessionTtlSeconds: vars.SESSION_TTL_SECONDS,
      login: {
        maxFailuresPerAccount: vars.LOGIN_MAX_FAILURES_PER_ACCOUNT,
        maxFailuresPerClient: vars.LOGIN_MAX_FAILURES_PER_CLIENT,
        failureWindowMs: vars.LOGIN_FAILURE_WINDOW_MS,
      },
      admin:
        vars.ADMIN_EMAIL && vars.ADMIN_PASSWORD
          ? { email: vars.ADMIN_EMAIL, password: vars.ADMIN_PASSWORD, name: vars.ADMIN_NAME }
          : undefined,
    },
    idempotency: {
      keyTtlSeconds: vars.IDEMPOTENCY_KEY_TTL_SECONDS,
      maxKeysPerCaller: vars.IDEMPOTENCY_MAX_KEYS_PER_CALLER,
      purgeIntervalMs: vars.IDEMPOTENCY_PURGE_INTERVAL_MS,
    },
    metrics: { enabled: vars.METRICS_ENABLED, token: vars.METRICS_TOKEN, port: vars.METRICS_PORT || undefined },
    tracing: {
      enabled:
        !vars.OTEL_SDK_DISABLED && Boolean(vars.OTEL_EXPORTER_OTLP_ENDPOINT || vars.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
    },
  };
}

/** The type check's message when the value has the wrong type, else the first range check's. */
function firstReason(constraints: Record<string, string>): string {
  return constraints.isInt ?? constraints.isBoolean ?? constraints.isString ?? Object.values(constraints)[0];
}

/** Loads `.env` from the working directory into process.env if present (real env vars win). */
export function loadDotEnv(file = '.env'): void {
  try {
    process.loadEnvFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** Injection token for the AppConfig. */
export const APP_CONFIG = Symbol('APP_CONFIG');
