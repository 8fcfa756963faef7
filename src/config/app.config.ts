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
import { dirname, join, resolve } from 'node:path';
import { IsDatabaseUrl, urlDialect } from './database-url';

/**
 * Environment variables the service reads, with their defaults. Every property needs a docstring:
 * `npm run docs:config` generates docs/configuration.md and `.env.example` from this class (CI checks
 * both are current). `@example` values become commented-out lines of `.env.example`.
 */
class Environment {
  /** `production` requires JWT_SECRET (and CURSOR_SECRET with a DATABASE_URL) and logs JSON lines. */
  @IsIn(['development', 'production', 'test'])
  NODE_ENV: 'development' | 'production' | 'test' = 'development';

  /** The HTTP port. */
  @IsInt()
  @Min(0)
  @Max(65535)
  PORT = 3000;

  /**
   * The address the HTTP server (and METRICS_PORT's listener) binds. Unset: 127.0.0.1, this machine
   * only, when no DATABASE_URL is set (the embedded PostgreSQL is a developer's setup: its data and
   * generated JWT secret are not for the network); 0.0.0.0, every IPv4 interface, with DATABASE_URL
   * (a deployment, e.g. a container, must be reachable). `::` listens on every IPv6 and IPv4 interface.
   */
  @IsOptional()
  @Matches(/^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|[0-9A-Fa-f:.]+)$/, {
    message: 'HOST must be an IP address or a host name, e.g. 127.0.0.1 or 0.0.0.0',
  })
  HOST?: string;

  /**
   * Your own database; the scheme picks the dialect (docs/databases.md; MariaDB/MySQL and SQLite need
   * `npm run drivers`). Unset: an embedded PostgreSQL is started under EMBEDDED_PG_DATA_DIR.
   * @example postgres://user:password@localhost:5432/mydb
   * @example mariadb://user:password@localhost:3306/mydb
   * @example sqlite:./.data/app.db
   */
  @IsOptional()
  @IsDatabaseUrl({ message: 'DATABASE_URL must be a postgres://, mysql://, mariadb:// or sqlite: URL' })
  DATABASE_URL?: string;

  /**
   * Comma-separated postgres:// URLs of read replicas (hot standbys streaming from DATABASE_URL): GETs may
   * read from them, and writes answer with a `Consistency-Token` a GET sends back to read its own writes
   * (docs/operations.md). Needs a PostgreSQL DATABASE_URL.
   * @example postgres://user:password@replica1:5432/mydb,postgres://user:password@replica2:5432/mydb
   */
  @IsString()
  DATABASE_REPLICA_URLS = '';

  /** A replica further behind the primary than this is skipped until it catches up. */
  @IsInt()
  @Min(0)
  DB_REPLICA_MAX_LAG_MS = 2_000;

  /**
   * Connections kept open: the guide's `create_async_engine(pool_size=10, max_overflow=20)`
   * (docs/from-sqlalchemy.md). Under load up to DB_POOL_SIZE + DB_POOL_MAX_OVERFLOW. No effect on SQLite.
   */
  @IsInt()
  @Min(1)
  @Max(1000)
  DB_POOL_SIZE = 10;

  /** Extra connections opened under load (the guide's `max_overflow`): at most 30 with the defaults. */
  @IsInt()
  @Min(0)
  @Max(1000)
  DB_POOL_MAX_OVERFLOW = 20;

  /**
   * How long a request waits for a pooled connection before it gets 503 + `Retry-After`. On SQLite: the
   * wait for its one connection, and the busy timeout when another process holds the write lock.
   */
  @IsInt()
  @Min(1)
  DB_POOL_TIMEOUT_MS = 5_000;

  /** Connections above DB_POOL_SIZE are closed after being idle this long. */
  @IsInt()
  @Min(1)
  DB_POOL_IDLE_TIMEOUT_MS = 10_000;

  /**
   * Longest a statement may run before the database cancels it (503), and longest a transaction may sit
   * idle before the server ends it, releasing its locks (a connection lost as COMMIT was sent); 0 = no
   * limit. One setting: the app's transactions are idle only between their statements, or while a handler
   * computes (password hashing in a keyed sign-up, well under a second). PostgreSQL: `statement_timeout`
   * and `idle_in_transaction_session_timeout`, the role's defaults in its database, set at startup when they
   * differ (else `SET LOCAL` in each transaction and a warning); never a startup parameter, so PgBouncer in
   * transaction mode works (docs/operations.md). MariaDB: `max_statement_time` and `idle_transaction_timeout`
   * (whole seconds, rounded up) per connection. MySQL 8 and SQLite: not applied.
   */
  @IsInt()
  @Min(0)
  DB_STATEMENT_TIMEOUT_MS = 15_000;

  /**
   * At startup, how long to keep trying to reach the database (retries with exponential backoff, one
   * log line per attempt) before giving up with one line and a non-zero exit. Each attempt waits up to
   * DB_POOL_TIMEOUT_MS for its connection; this bounds them all.
   */
  @IsInt()
  @Min(0)
  DB_STARTUP_TIMEOUT_MS = 30_000;

  /** Queries slower than this are logged as warnings. */
  @IsInt()
  @Min(1)
  DB_SLOW_QUERY_MS = 500;

  /**
   * The guide's `echo=True` (docs/from-sqlalchemy.md): log every SQL statement with its parameters. For
   * debugging only: parameters include bodies and password and token hashes.
   */
  @IsBoolean()
  DB_LOGGING = false;

  /** Apply pending migrations at startup (otherwise run `npm run migration:run`). */
  @IsBoolean()
  DB_MIGRATIONS_RUN = true;

  /** The embedded PostgreSQL's data directory (only when DATABASE_URL is unset). */
  @IsString()
  EMBEDDED_PG_DATA_DIR = '.data/postgres';

  /** The embedded PostgreSQL's port on 127.0.0.1; 0 picks a free one. */
  @IsInt()
  @Min(0)
  @Max(65535)
  EMBEDDED_PG_PORT = 0;

  /** pino's log level, also what the CLI tools (migration:*, db:seed, user:admin) print; `silent` turns logging off entirely, the per-request logger included. */
  @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
  LOG_LEVEL: LogLevel = 'info';

  /**
   * `json` (one object a line) or `pretty` (one readable line per entry); unset: json with
   * NODE_ENV=production, pretty otherwise.
   * @example pretty
   */
  @IsOptional()
  @IsIn(['json', 'pretty'])
  LOG_FORMAT?: 'json' | 'pretty';

  /** `/health/ready` answers 503 when the database (or a replica) does not answer within this time. */
  @IsInt()
  @Min(1)
  HEALTH_DB_TIMEOUT_MS = 1_000;

  /**
   * On SIGTERM: how long `/health/ready` answers 503 while requests are still served (so a load balancer
   * notices), before draining starts. The other stop signals (SIGINT from Ctrl-C, SIGHUP, SIGQUIT) skip it.
   */
  @IsInt()
  @Min(0)
  SHUTDOWN_GRACE_MS = 0;

  /** On a stop signal (SIGTERM, SIGINT, SIGHUP, SIGQUIT), in-flight requests get this long to finish before the process gives up (exit 1). */
  @IsInt()
  @Min(1)
  SHUTDOWN_TIMEOUT_MS = 10_000;

  /**
   * How long a client has to send a whole request, headers and body (Node's requestTimeout): one that
   * is not complete by then gets 408 problem+json and its connection closed (RFC 9110 §15.5.9). 0: no limit.
   */
  @IsInt()
  @Min(0)
  HTTP_REQUEST_TIMEOUT_MS = 30_000;

  /** How long a client has to send a request's headers (Node's headersTimeout); at most HTTP_REQUEST_TIMEOUT_MS. */
  @IsInt()
  @Min(1)
  HTTP_HEADERS_TIMEOUT_MS = 10_000;

  /**
   * How long an idle keep-alive connection is kept open for the client's next request. Keep it above
   * the idle timeout of a load balancer in front (it must close first), e.g. 60 s on AWS ALB.
   */
  @IsInt()
  @Min(1)
  HTTP_KEEP_ALIVE_TIMEOUT_MS = 72_000;

  /**
   * A connection on which nothing moved for this long is closed (socket inactivity, Fastify's
   * connectionTimeout): a client that stopped reading its response. Above DB_STATEMENT_TIMEOUT_MS +
   * DB_POOL_TIMEOUT_MS, so a slow answer is not cut. 0: no limit.
   */
  @IsInt()
  @Min(0)
  HTTP_CONNECTION_TIMEOUT_MS = 60_000;

  /**
   * Comma-separated origins allowed by CORS (`*` for any); empty disables CORS. The methods and headers
   * they may use are listed in docs/security.md.
   * @example https://app.example.com,https://admin.example.com
   */
  @IsString()
  CORS_ORIGINS = '';

  /**
   * Requests per client IP per RATE_LIMIT_WINDOW_MS across the whole API (health probes exempt) before
   * 429 + `Retry-After`; 0 disables rate limiting. Shared by instances only through REDIS_URL.
   */
  @IsInt()
  @Min(0)
  RATE_LIMIT_MAX = 600;

  /** The window RATE_LIMIT_MAX counts requests in. */
  @IsInt()
  @Min(1)
  RATE_LIMIT_WINDOW_MS = 60_000;

  /** Reverse proxies in front of the app (Fastify trustProxy), so rate limits key on the real client. */
  @IsInt()
  @Min(0)
  TRUST_PROXY_HOPS = 0;

  /**
   * Signs the opaque keyset cursors of paginated lists. Unset: a random key per process, so cursors stop
   * working when it restarts and are refused by other instances. Required with NODE_ENV=production and a
   * DATABASE_URL (instances must share one key).
   * @example change-me-to-a-long-random-string
   */
  @IsOptional()
  @IsString()
  @Length(16, 256)
  CURSOR_SECRET?: string;

  /**
   * Signs access tokens (HS256). Required with NODE_ENV=production. Unset on the embedded database:
   * generated once into `<EMBEDDED_PG_DATA_DIR>.jwt-secret` (`.data/postgres.jwt-secret`, mode 0600), so
   * tokens survive restarts; unset with DATABASE_URL: random per process (a warning says so; instances must
   * share one). Generate one with `node -p "require('crypto').randomBytes(48).toString('base64url')"`.
   */
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

  /**
   * Seconds after a refresh token is rotated during which presenting it again (two tabs refreshing at
   * once, a retry after a lost response) returns the same successor instead of revoking the session as
   * a reuse (RFC 9700 §4.14.2). 0: any reuse revokes. After the window, or once the successor has been
   * used itself, a reuse revokes the session as before.
   */
  @IsInt()
  @Min(0)
  @Max(300)
  REFRESH_GRACE_SECONDS = 30;

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

  /**
   * With ADMIN_PASSWORD: this account exists as an admin after every start — created with that password
   * when missing; an existing user is promoted only when ADMIN_PASSWORD is its password (a warning says
   * otherwise); the password is never changed. Alone: ignored. `npm run user:admin` does this on demand.
   * @example admin@example.com
   */
  @IsOptional()
  @IsEmail({}, { message: 'ADMIN_EMAIL must be an email address' })
  ADMIN_EMAIL?: string;

  /** The password of ADMIN_EMAIL's account, set only when the account is created. */
  @IsOptional()
  @IsString()
  ADMIN_PASSWORD?: string;

  /** The name ADMIN_EMAIL's account is created with. */
  @IsString()
  @Length(1, 100)
  ADMIN_NAME = 'Admin';

  /**
   * Redis that instances share the rate limit through; unset keeps the counters in this process's memory.
   * @example redis://127.0.0.1:6379/0
   */
  @IsOptional()
  @Matches(/^rediss?:\/\//, { message: 'REDIS_URL must be a redis:// or rediss:// URL' })
  REDIS_URL?: string;

  /**
   * How long a Redis command (the rate limit's counter) may take, connecting included, before the
   * request is answered 503 + Retry-After: a Redis that is down, partitioned or stalled never hangs
   * requests. Also bounds the Redis check of /health/ready.
   */
  @IsInt()
  @Min(1)
  REDIS_COMMAND_TIMEOUT_MS = 500;

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
   * Idempotency-Keys one signed-in caller may store per key lifetime (counted per window of
   * IDEMPOTENCY_KEY_TTL_SECONDS, the current one and the one before: docs/idempotency.md): a request
   * with a new key past it gets 429 (Retry-After) until the window moves on, so no client can fill the table.
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

  /**
   * Set: `/metrics` answers only `Authorization: Bearer <token>`; unset: only direct connections from
   * loopback.
   * @example change-me-to-a-long-random-string
   */
  @IsOptional()
  @IsString()
  @Length(16, 256)
  METRICS_TOKEN?: string;

  /**
   * Not 0: `/metrics` is served on this port only (a listener of its own, on all interfaces), and the main
   * port answers 404.
   */
  @IsInt()
  @Min(0)
  @Max(65535)
  METRICS_PORT = 0;

  /**
   * An OTLP/HTTP collector: set, it turns tracing on (OpenTelemetry's standard variable; the SDK reads it,
   * and the other OTEL_* ones, itself). Unset, the SDK is not even loaded.
   * @example http://localhost:4318
   */
  @IsOptional()
  @Matches(/^https?:\/\//, { message: 'OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s):// URL' })
  OTEL_EXPORTER_OTLP_ENDPOINT?: string;

  /** The collector's traces endpoint itself (standard variable); set, it turns tracing on too. */
  @IsOptional()
  @Matches(/^https?:\/\//, { message: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT must be an http(s):// URL' })
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?: string;

  /** `true` turns tracing off whatever the endpoints say (standard variable). */
  @IsBoolean()
  OTEL_SDK_DISABLED = false;

  /**
   * Where mail goes: an smtp:// or smtps:// URL (user and password in it, e.g.
   * smtps://user:pass@mail.example.com:465). Unset: every mail is written as an .eml file to MAIL_DIR.
   */
  @IsOptional()
  @Matches(/^smtps?:\/\//, { message: 'SMTP_URL must be an smtp:// or smtps:// URL' })
  SMTP_URL?: string;

  /** The From of every mail (RFC 5322 mailbox). */
  @IsString()
  @Length(3, 254)
  MAIL_FROM = 'nest-typeorm-users <no-reply@localhost>';

  /** Without SMTP_URL, mails are written here as .eml files. Unset: `mail/` beside EMBEDDED_PG_DATA_DIR (.data/mail). */
  @IsOptional()
  @IsString()
  MAIL_DIR?: string;

  /**
   * Base URL of the site the links in mails point to (`<PUBLIC_URL>/verify-email#token=…`); never taken
   * from a request's Host header. Unset: http://localhost:<PORT>.
   */
  @IsOptional()
  @Matches(/^https?:\/\/[^/?#\s]+(\/[^?#\s]*)?$/, {
    message: 'PUBLIC_URL must be an http(s):// URL without query or fragment',
  })
  PUBLIC_URL?: string;

  /** false: this instance only queues mail (the outbox); another instance delivers it. */
  @IsBoolean()
  MAIL_WORKER_ENABLED = true;

  /** How often the mail worker looks for due mail when nothing woke it (a commit in this process wakes it at once). */
  @IsInt()
  @Min(50)
  MAIL_POLL_INTERVAL_MS = 5_000;

  /** Delay before the first retry of a failed delivery; it doubles with every further failure (up to 1 hour). */
  @IsInt()
  @Min(10)
  MAIL_RETRY_BASE_MS = 10_000;

  /** Deliveries tried per mail before it is given up (kept in the outbox with failed_at set). */
  @IsInt()
  @Min(1)
  @Max(100)
  MAIL_MAX_ATTEMPTS = 12;

  /** How long an email verification link works, in seconds. */
  @IsInt()
  @Min(60)
  EMAIL_VERIFICATION_TTL_SECONDS = 2 * 86_400;

  /** How long a password reset link works, in seconds: short, since the mail may sit in an inbox. */
  @IsInt()
  @Min(60)
  @Max(86_400)
  PASSWORD_RESET_TTL_SECONDS = 1_800;

  /** Password reset (and verification resend) requests per email address per PASSWORD_RESET_WINDOW_MS. */
  @IsInt()
  @Min(1)
  PASSWORD_RESET_MAX_PER_ADDRESS = 5;

  /** Password reset requests per client IP per PASSWORD_RESET_WINDOW_MS, whatever the addresses. */
  @IsInt()
  @Min(1)
  PASSWORD_RESET_MAX_PER_CLIENT = 20;

  /** The window the password reset limits count requests in; a blocked address or client is free again when it ends. */
  @IsInt()
  @Min(1_000)
  PASSWORD_RESET_WINDOW_MS = 60 * 60_000;

  /**
   * true: accounts whose email is not verified may write like any other. false: their POST, PATCH and
   * DELETE get 403, except on their own account (PATCH/DELETE /users/{id}) and under /auth.
   */
  @IsBoolean()
  UNVERIFIED_MAY_WRITE = true;

  /** How stale a session's "last used" time may be: it is written at most once per this many seconds. */
  @IsInt()
  @Min(1)
  SESSION_LAST_USED_RESOLUTION_SECONDS = 60;
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
  /** At startup: how long to keep retrying to reach the database (database/startup.ts). */
  startupTimeoutMs: number;
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
  /** Where to listen (HOST, or its default: see Environment.HOST). */
  host: string;
  database: DatabaseConfig;
  embeddedPostgres: { dataDir: string; port: number };
  log: { level: LogLevel; format: 'json' | 'pretty' };
  healthDbTimeoutMs: number;
  shutdownGraceMs: number;
  shutdownTimeoutMs: number;
  cursorSecret?: string;
  corsOrigins: string[];
  /**
   * `redisUrl` set: the counters live in Redis, under keys starting with `redisKeyPrefix`, shared by all
   * instances; each command gives up after `redisCommandTimeoutMs` (503).
   */
  rateLimit: {
    max: number;
    windowMs: number;
    redisUrl?: string;
    redisKeyPrefix: string;
    redisCommandTimeoutMs: number;
  };
  /** HTTP server timeouts in ms (0: none), see the HTTP_* variables. */
  http: { requestTimeoutMs: number; headersTimeoutMs: number; keepAliveTimeoutMs: number; connectionTimeoutMs: number };
  trustProxyHops: number;
  auth: AuthConfig;
  metrics: MetricsConfig;
  idempotency: IdempotencyConfig;
  tracing: { enabled: boolean };
  mail: MailConfig;
}

export interface MailConfig {
  /** Undefined: mails are written as .eml files to `dir`. */
  smtpUrl?: string;
  from: string;
  /** Absolute path of the .eml directory (used without `smtpUrl`). */
  dir: string;
  /** Base URL of links in mails, no trailing slash. */
  publicUrl: string;
  workerEnabled: boolean;
  pollIntervalMs: number;
  retryBaseMs: number;
  maxAttempts: number;
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
  /** The address that port binds (HOST); undefined: every IPv4 interface. */
  host?: string;
}

export interface AuthConfig {
  /** Undefined until main.ts has loaded or generated one (see auth/jwt-secret.ts). */
  jwtSecret?: string;
  accessTokenTtlSeconds: number;
  sessionTtlSeconds: number;
  /** See REFRESH_GRACE_SECONDS. */
  refreshGraceSeconds: number;
  login: { maxFailuresPerAccount: number; maxFailuresPerClient: number; failureWindowMs: number };
  /** Both set: the admin account ensured at startup. */
  admin?: { email: string; password: string; name: string };
  /** Email verification, password reset, session activity (docs/accounts.md). */
  accounts: AccountsConfig;
}

export interface AccountsConfig {
  verificationTtlSeconds: number;
  resetTtlSeconds: number;
  resetMaxPerAddress: number;
  resetMaxPerClient: number;
  resetWindowMs: number;
  unverifiedMayWrite: boolean;
  lastUsedResolutionSeconds: number;
}

/** Variables whose values never appear in an error message. */
const SECRETS = new Set(['CURSOR_SECRET', 'JWT_SECRET', 'ADMIN_PASSWORD', 'METRICS_TOKEN', 'SMTP_URL']);

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
  const badReplica = replicaUrls.find((url) => urlDialect(url) !== 'postgres');
  if (badReplica !== undefined) {
    throw new ConfigError('Invalid configuration: DATABASE_REPLICA_URLS must be comma-separated postgres:// URLs');
  }
  if (replicaUrls.length > 0 && !vars.DATABASE_URL) {
    throw new ConfigError(
      'Invalid configuration: DATABASE_REPLICA_URLS needs DATABASE_URL (the primary they replicate)',
    );
  }
  // Replica routing reads PostgreSQL's WAL positions (database/reads/replicas.ts): there is no twin elsewhere.
  if (replicaUrls.length > 0 && urlDialect(vars.DATABASE_URL ?? '') !== 'postgres') {
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
  // Node refuses a headers timeout longer than the whole request's.
  if (vars.HTTP_REQUEST_TIMEOUT_MS > 0 && vars.HTTP_HEADERS_TIMEOUT_MS > vars.HTTP_REQUEST_TIMEOUT_MS) {
    throw new ConfigError('Invalid configuration: HTTP_HEADERS_TIMEOUT_MS must not exceed HTTP_REQUEST_TIMEOUT_MS');
  }
  if (vars.NODE_ENV === 'production' && !vars.JWT_SECRET) {
    throw new ConfigError('Invalid configuration: JWT_SECRET must be set when NODE_ENV=production');
  }

  return {
    env: vars.NODE_ENV,
    port: vars.PORT,
    host: vars.HOST ?? (vars.DATABASE_URL ? '0.0.0.0' : '127.0.0.1'),
    database: {
      url: vars.DATABASE_URL,
      poolSize: vars.DB_POOL_SIZE,
      poolMaxOverflow: vars.DB_POOL_MAX_OVERFLOW,
      poolTimeoutMs: vars.DB_POOL_TIMEOUT_MS,
      poolIdleTimeoutMs: vars.DB_POOL_IDLE_TIMEOUT_MS,
      statementTimeoutMs: vars.DB_STATEMENT_TIMEOUT_MS,
      startupTimeoutMs: vars.DB_STARTUP_TIMEOUT_MS,
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
      redisCommandTimeoutMs: vars.REDIS_COMMAND_TIMEOUT_MS,
    },
    http: {
      requestTimeoutMs: vars.HTTP_REQUEST_TIMEOUT_MS,
      headersTimeoutMs: vars.HTTP_HEADERS_TIMEOUT_MS,
      keepAliveTimeoutMs: vars.HTTP_KEEP_ALIVE_TIMEOUT_MS,
      connectionTimeoutMs: vars.HTTP_CONNECTION_TIMEOUT_MS,
    },
    trustProxyHops: vars.TRUST_PROXY_HOPS,
    auth: {
      jwtSecret: vars.JWT_SECRET,
      accessTokenTtlSeconds: vars.ACCESS_TOKEN_TTL_SECONDS,
      sessionTtlSeconds: vars.SESSION_TTL_SECONDS,
      refreshGraceSeconds: vars.REFRESH_GRACE_SECONDS,
      login: {
        maxFailuresPerAccount: vars.LOGIN_MAX_FAILURES_PER_ACCOUNT,
        maxFailuresPerClient: vars.LOGIN_MAX_FAILURES_PER_CLIENT,
        failureWindowMs: vars.LOGIN_FAILURE_WINDOW_MS,
      },
      admin:
        vars.ADMIN_EMAIL && vars.ADMIN_PASSWORD
          ? { email: vars.ADMIN_EMAIL, password: vars.ADMIN_PASSWORD, name: vars.ADMIN_NAME }
          : undefined,
      accounts: {
        verificationTtlSeconds: vars.EMAIL_VERIFICATION_TTL_SECONDS,
        resetTtlSeconds: vars.PASSWORD_RESET_TTL_SECONDS,
        resetMaxPerAddress: vars.PASSWORD_RESET_MAX_PER_ADDRESS,
        resetMaxPerClient: vars.PASSWORD_RESET_MAX_PER_CLIENT,
        resetWindowMs: vars.PASSWORD_RESET_WINDOW_MS,
        unverifiedMayWrite: vars.UNVERIFIED_MAY_WRITE,
        lastUsedResolutionSeconds: vars.SESSION_LAST_USED_RESOLUTION_SECONDS,
      },
    },
    metrics: {
      enabled: vars.METRICS_ENABLED,
      token: vars.METRICS_TOKEN,
      port: vars.METRICS_PORT || undefined,
      host: vars.HOST ?? (vars.DATABASE_URL ? '0.0.0.0' : '127.0.0.1'),
    },
    idempotency: {
      keyTtlSeconds: vars.IDEMPOTENCY_KEY_TTL_SECONDS,
      maxKeysPerCaller: vars.IDEMPOTENCY_MAX_KEYS_PER_CALLER,
      purgeIntervalMs: vars.IDEMPOTENCY_PURGE_INTERVAL_MS,
    },
    tracing: {
      enabled:
        !vars.OTEL_SDK_DISABLED && Boolean(vars.OTEL_EXPORTER_OTLP_ENDPOINT || vars.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
    },
    mail: {
      smtpUrl: vars.SMTP_URL,
      from: vars.MAIL_FROM,
      dir: resolve(vars.MAIL_DIR ?? join(dirname(vars.EMBEDDED_PG_DATA_DIR), 'mail')),
      publicUrl: (vars.PUBLIC_URL ?? `http://localhost:${vars.PORT}`).replace(/\/+$/, ''),
      workerEnabled: vars.MAIL_WORKER_ENABLED,
      pollIntervalMs: vars.MAIL_POLL_INTERVAL_MS,
      retryBaseMs: vars.MAIL_RETRY_BASE_MS,
      maxAttempts: vars.MAIL_MAX_ATTEMPTS,
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
