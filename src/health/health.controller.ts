import { Controller, Get, Inject, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TypeOrmHealthIndicator } from '@nestjs/terminus';
import { ApiExcludeController } from '@nestjs/swagger';
import { SkipThrottle } from '@nestjs/throttler';
import { Public } from '../auth/auth.decorators';
import { APP_CONFIG, type AppConfig } from '../config/app.config';
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
    private readonly draining: Draining,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Liveness: the process answers. */
  @Get()
  @HealthCheck()
  live() {
    return this.health.check([]);
  }

  /** Readiness: not shutting down, and the database answers within HEALTH_DB_TIMEOUT_MS. */
  @Get('ready')
  @HealthCheck()
  ready() {
    if (this.draining.active) throw new ServiceUnavailableException('Shutting down');
    return this.health.check([() => this.database.pingCheck('database').withTimeout(this.config.healthDbTimeoutMs)]);
  }
}
