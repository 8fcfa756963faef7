import {
  Global,
  Inject,
  Injectable,
  Logger,
  Module,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app.config';
import { IdempotencyInterceptor } from './idempotency.interceptor';
import { IdempotencyRepository } from './idempotency.repository';

/** Rows one purge statement deletes at most, and statements one run sends at most. */
const PURGE_BATCH = 1_000;
const PURGE_BATCHES_PER_RUN = 10;

/**
 * Deletes expired keys every IDEMPOTENCY_PURGE_INTERVAL_MS, without blocking requests: each statement
 * deletes at most 1,000 rows (a short transaction of its own, skipping rows in use on PostgreSQL),
 * a run sends at most 10 of them and stops early when one deletes fewer; what is left waits for the
 * next run. A failed run is logged and retried at the next. The timer never keeps the process alive.
 */
@Injectable()
export class ExpiredKeysPurger implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Idempotency');
  private timer?: NodeJS.Timeout;
  private running?: Promise<number>;

  constructor(
    private readonly keys: IdempotencyRepository,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    const interval = this.config.idempotency.purgeIntervalMs;
    if (interval <= 0) return;
    this.timer = setInterval(() => {
      this.running ??= this.purge()
        .catch((error: unknown) => {
          this.logger.warn(`Purging expired Idempotency-Keys failed: ${(error as Error).message}`);
          return 0;
        })
        .finally(() => (this.running = undefined));
    }, interval);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /**
   * One run: deletes keys expired now, in batches (see the class), and the per-caller counters of
   * windows before the previous one (which no cap check reads any more). Returns how many keys it deleted.
   */
  async purge(now = new Date()): Promise<number> {
    const windowMs = this.config.idempotency.keyTtlSeconds * 1000;
    await this.keys.purgeCounts(now.getTime() - (now.getTime() % windowMs) - windowMs);
    let deleted = 0;
    for (let batch = 0; batch < PURGE_BATCHES_PER_RUN; batch++) {
      const count = await this.keys.purgeExpired(now, PURGE_BATCH);
      deleted += count;
      if (count < PURGE_BATCH) break;
    }
    return deleted;
  }
}

/** The Idempotency-Key header for every module's routes (@Idempotent()), and the purge of expired keys. */
@Global()
@Module({
  providers: [IdempotencyRepository, IdempotencyInterceptor, ExpiredKeysPurger],
  exports: [IdempotencyRepository, IdempotencyInterceptor, ExpiredKeysPurger],
})
export class IdempotencyModule {}
