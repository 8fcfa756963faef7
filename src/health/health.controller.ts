import { Controller, Get, Inject, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheck, HealthCheckService, HealthIndicatorService, TypeOrmHealthIndicator } from '@nestjs/terminus';
import { ApiExcludeController } from '@nestjs/swagger';
import { SkipThrottle } from '@nestjs/throttler';
import { APP_CONFIG, type AppConfig } from '../config/app.config';
import { ReplicaSet } from '../db/replicas';
import { Draining } from './draining';

// Probes run often and from few addresses: they must never be rate limited.
@SkipThrottle()
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
  ) {}

  /** Liveness: the process answers. */
  @Get()
  @HealthCheck()
  live() {
    return this.health.check([]);
  }

  /**
   * Readiness: not shutting down, and the database answers within HEALTH_DB_TIMEOUT_MS. Each read
   * replica is listed (`replica <host:port>`) as up, or degraded when down or lagging: reads then go to
   * the primary, so a replica alone never makes the instance unready.
   */
  @Get('ready')
  @HealthCheck()
  ready() {
    if (this.draining.active) throw new ServiceUnavailableException('Shutting down');
    return this.health.check([
      () => this.database.pingCheck('database').withTimeout(this.config.healthDbTimeoutMs),
      ...this.replicas.status().map(({ name, ...status }) => () => {
        const indicator = this.indicators.check(`replica ${name}`);
        return status.state === 'up' ? indicator.up(status) : indicator.degraded(status);
      }),
    ]);
  }
}
