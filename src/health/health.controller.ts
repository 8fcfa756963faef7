import { Controller, Get, Inject, Optional, ServiceUnavailableException } from '@nestjs/common';
import {
  HealthCheck,
  type HealthCheckResult,
  HealthCheckService,
  HealthIndicatorService,
  TypeOrmHealthIndicator,
} from '@nestjs/terminus';
import { ApiExcludeController } from '@nestjs/swagger';
import { SkipThrottle } from '@nestjs/throttler';
import { Public } from '../auth/auth.decorators';
import { APP_CONFIG, type AppConfig } from '../config/app.config';
import { ReplicaSet } from '../database/reads/replicas';
import { ProblemException } from '../http/problem';
import { RATE_LIMIT_REDIS, type RateLimitRedis } from '../http/rate-limit.module';
import { Draining } from './draining';

// Probes run often and from few addresses: they must never be rate limited.
@SkipThrottle()
@Public({ ignoreCredentials: true })
@ApiExcludeController() // operational endpoints, not part of the API contract
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly database: TypeOrmHealthIndicator,
    private readonly indicators: HealthIndicatorService,
    private readonly replicas: ReplicaSet,
    private readonly draining: Draining,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Optional() @Inject(RATE_LIMIT_REDIS) private readonly redis: RateLimitRedis = null,
  ) {}

  /** Liveness: the process answers. */
  @Get()
  @HealthCheck()
  live() {
    return this.health.check([]);
  }

  /**
   * Readiness: not shutting down, the database answers within HEALTH_DB_TIMEOUT_MS, and — with
   * REDIS_URL — Redis answers a PING within REDIS_COMMAND_TIMEOUT_MS (every rate-limited request needs
   * it: without it they get 503, so the instance is not ready). Each read
   * replica is listed (`replica <host:port>`) as up, or degraded when down or lagging: reads then go to
   * the primary, so a replica alone never makes the instance unready.
   */
  @Get('ready')
  @HealthCheck()
  async ready() {
    if (this.draining.active) throw new ServiceUnavailableException('Shutting down');
    return this.health.check(this.readinessChecks()).catch((error: unknown) => {
      if (!(error instanceof ServiceUnavailableException)) throw error;
      // The problem's detail names what is down (terminus's own body is replaced by problem+json).
      const failed = Object.keys((error.getResponse() as HealthCheckResult).error ?? {});
      throw new ProblemException(503, `Not ready: ${failed.join(', ') || 'a check failed'} not answering`, {
        retryAfterSeconds: 1,
      });
    });
  }

  private readinessChecks() {
    return [
      () => this.database.pingCheck('database').withTimeout(this.config.healthDbTimeoutMs),
      ...(this.redis ? [() => this.redisCheck(this.redis!)] : []),
      ...this.replicas.status().map(({ name, ...status }) => () => {
        const indicator = this.indicators.check(`replica ${name}`);
        return status.state === 'up' ? indicator.up(status) : indicator.degraded(status);
      }),
    ];
  }

  /** PING, bounded by the client's commandTimeout (REDIS_COMMAND_TIMEOUT_MS): a silent Redis is down, not a hang. */
  private async redisCheck(redis: NonNullable<RateLimitRedis>) {
    const indicator = this.indicators.check('redis');
    try {
      await redis.ping();
      return indicator.up();
    } catch (error) {
      return indicator.down({ message: error instanceof Error ? error.message : String(error) });
    }
  }
}
