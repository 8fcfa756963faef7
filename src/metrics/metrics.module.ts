import {
  type DynamicModule,
  Inject,
  Injectable,
  Module,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import type { Server } from 'node:http';
import { DataSource } from 'typeorm';
import type { MetricsConfig } from '../config/app.config';
import type { SqlDialect } from '../database/dialects/dialect';
import { SQL_DIALECT } from '../database/dialects/sql-dialect.module';
import { type PoolProbe, probePool, QueryMetricsSubscriber } from './database-metrics';
import { recordHttpMetrics } from './http-metrics';
import { serveMetricsOnMainPort, serveMetricsOnOwnPort } from './metrics-exposure';
import { collectProcessMetrics, observePool, stopObservingPool } from './metrics';

const METRICS_CONFIG = Symbol('METRICS_CONFIG');

/** Wires the metrics of metrics.ts to this app: HTTP hooks, the DataSource and pool, the /metrics endpoint. */
@Injectable()
class MetricsWiring implements OnModuleInit, OnApplicationBootstrap, OnApplicationShutdown {
  private readonly subscriber = new QueryMetricsSubscriber();
  private pool?: PoolProbe;
  private ownPortServer?: Server;

  constructor(
    @Inject(METRICS_CONFIG) private readonly config: MetricsConfig,
    private readonly adapterHost: HttpAdapterHost,
    private readonly dataSource: DataSource,
    @Inject(SQL_DIALECT) private readonly dialect: SqlDialect,
  ) {}

  onModuleInit(): void {
    collectProcessMetrics();
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    recordHttpMetrics(fastify);
    if (!this.config.port) serveMetricsOnMainPort(fastify, this.config);
    this.dataSource.subscribers.push(this.subscriber);
    this.pool = probePool(this.dataSource, this.dialect);
    if (this.pool) observePool(this.pool.stats);
  }

  async onApplicationBootstrap(): Promise<void> {
    if (this.config.port) this.ownPortServer = await serveMetricsOnOwnPort({ ...this.config, port: this.config.port });
  }

  async onApplicationShutdown(): Promise<void> {
    const subscribers = this.dataSource.subscribers;
    if (subscribers.includes(this.subscriber)) subscribers.splice(subscribers.indexOf(this.subscriber), 1);
    if (this.pool) {
      this.pool.stop();
      stopObservingPool(this.pool.stats);
    }
    if (this.ownPortServer) await new Promise((resolve) => this.ownPortServer!.close(resolve));
  }
}

/**
 * Prometheus metrics (prom-client) at GET /metrics: HTTP RED by route, pool saturation and acquire
 * time, query latency and errors, transactions, and Node's own. Imported only when METRICS_ENABLED.
 */
@Module({})
export class MetricsModule {
  static forRoot(config: MetricsConfig): DynamicModule {
    return { module: MetricsModule, providers: [{ provide: METRICS_CONFIG, useValue: config }, MetricsWiring] };
  }
}
