import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { setTimeout as sleep } from 'node:timers/promises';
import { DataSource } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../../config/app.config';
import { dataSourceOptions } from '../data-source.options';

/**
 * A WAL position (PostgreSQL's `pg_lsn`, written `16/B374D848`) as a number, so positions compare.
 * Returns undefined for anything that is not one.
 */
export function parseLsn(text: string): bigint | undefined {
  const match = /^([0-9A-F]{1,8})\/([0-9A-F]{1,8})$/i.exec(text);
  return match ? (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`) : undefined;
}

/** `up`: serves reads; `lagging`: further behind than DB_REPLICA_MAX_LAG_MS; `down`: does not answer. */
export type ReplicaState = 'up' | 'lagging' | 'down';

/** What /health/ready reports for each replica. */
export interface ReplicaStatus {
  /** host:port of the replica (its URL without credentials). */
  name: string;
  state: ReplicaState;
  /** How far behind the primary it was at the last check, in ms (0 when it had replayed everything). */
  lagMs?: number;
  /** The last WAL position it had replayed at the last check. */
  replayedLsn?: string;
}

/** One read replica: its own TypeORM DataSource (pool), and what the last check found. */
export class Replica {
  state: ReplicaState = 'down';
  replayed?: bigint;
  lagMs?: number;
  dataSource?: DataSource;
  connecting?: Promise<DataSource>;

  constructor(
    readonly url: string,
    readonly name: string,
  ) {}
}

/** How often each replica's position and lag are checked. */
const CHECK_INTERVAL_MS = 1_000;
/** Primary positions remembered for the lag estimate: 10 minutes of checks. Older lag is "lagging" anyway. */
const MAX_SAMPLES = 600;

/**
 * The read replicas of DATABASE_REPLICA_URLS, each checked every second: a replica that does not
 * answer is `down`, one further behind the primary than DB_REPLICA_MAX_LAG_MS is `lagging`; reads
 * skip both until a later check finds them well. Nothing here ever fails a request: no healthy
 * replica means the primary serves the read.
 *
 * Lag is estimated from the primary's WAL position sampled at each check: a replica that has not
 * yet replayed the position the primary had at time t is at least now − t behind (PostgreSQL's
 * `now() − pg_last_xact_replay_timestamp()` would instead grow while the primary is idle).
 */
@Injectable()
export class ReplicaSet implements OnApplicationBootstrap, OnApplicationShutdown {
  readonly replicas: Replica[];
  private readonly logger = new Logger(ReplicaSet.name);
  private readonly primarySamples: { at: number; lsn: bigint }[] = [];
  private next = 0;
  private stopped = false;
  private loop?: Promise<void>;

  constructor(
    @InjectDataSource() private readonly primary: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    this.replicas = config.database.replicaUrls.map((url) => new Replica(url, hostAndPort(url)));
  }

  get enabled(): boolean {
    return this.replicas.length > 0;
  }

  /** The first check runs before the app listens (replicas that answer serve reads at once); then every second. */
  async onApplicationBootstrap(): Promise<void> {
    if (!this.enabled) return;
    await this.check();
    this.loop = this.checkForever();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    await this.loop;
    const open = this.replicas.flatMap(({ dataSource }) => (dataSource?.isInitialized ? [dataSource] : []));
    await Promise.all(open.map((dataSource) => dataSource.destroy().catch(() => undefined)));
  }

  /**
   * The replica to serve a read from, or undefined for the primary. Without `token`, any `up` replica
   * (round robin). With one, only a replica that has replayed at least that WAL position: the positions
   * found by the last check first, else one replica is asked for its position now (one short query).
   */
  async pick(token?: bigint): Promise<Replica | undefined> {
    const healthy = this.replicas.filter((replica) => replica.state === 'up');
    if (healthy.length === 0) return undefined;
    if (token === undefined) return healthy[this.next++ % healthy.length];
    const caughtUp = healthy.filter((replica) => replica.replayed !== undefined && replica.replayed >= token);
    if (caughtUp.length > 0) return caughtUp[this.next++ % caughtUp.length];
    const candidate = healthy[this.next++ % healthy.length];
    try {
      const replayed = await this.replayedPosition(candidate);
      return replayed !== undefined && replayed >= token ? candidate : undefined;
    } catch (error) {
      this.markDown(candidate, error);
      return undefined;
    }
  }

  /** A read failed because the replica went away: skip it until a check finds it answering again. */
  markDown(replica: Replica, error: unknown): void {
    if (replica.state !== 'down') {
      this.logger.warn(`Replica ${replica.name} is down: ${error instanceof Error ? error.message : String(error)}`);
    }
    replica.state = 'down';
  }

  /** The primary's current WAL position (`pg_current_wal_lsn()`), as PostgreSQL writes it. */
  async primaryPosition(): Promise<string> {
    const rows = await this.primary.query<{ lsn: string }[]>('SELECT pg_current_wal_lsn()::text AS lsn');
    return rows[0].lsn;
  }

  status(): ReplicaStatus[] {
    return this.replicas.map(({ name, state, lagMs, replayed }) => ({
      name,
      state,
      ...(lagMs !== undefined && { lagMs }),
      ...(replayed !== undefined && { replayedLsn: formatLsn(replayed) }),
    }));
  }

  /** One round: the primary's position, then every replica's, each bounded by HEALTH_DB_TIMEOUT_MS. */
  async check(): Promise<void> {
    try {
      const lsn = parseLsn(await withTimeout(this.primaryPosition(), this.config.healthDbTimeoutMs));
      if (lsn !== undefined) this.primarySamples.push({ at: Date.now(), lsn });
      if (this.primarySamples.length > MAX_SAMPLES) this.primarySamples.shift();
    } catch {
      // The primary is the app's own problem (readiness reports it); replicas are still checked.
    }
    await Promise.all(this.replicas.map((replica) => this.checkReplica(replica)));
  }

  private async checkForever(): Promise<void> {
    while (!this.stopped) {
      await sleep(CHECK_INTERVAL_MS, undefined, { ref: false });
      if (!this.stopped) await this.check();
    }
  }

  private async checkReplica(replica: Replica): Promise<void> {
    const before = replica.state;
    try {
      if (!replica.dataSource) {
        // A connection attempt that outlives the timeout is awaited again by the next check, not repeated.
        replica.connecting ??= this.connect(replica)
          .then((dataSource) => (replica.dataSource = dataSource))
          .finally(() => (replica.connecting = undefined));
        await withTimeout(replica.connecting, this.config.healthDbTimeoutMs);
      }
      const replayed = await withTimeout(this.replayedPosition(replica), this.config.healthDbTimeoutMs);
      if (replayed === undefined) throw new Error('it is not a standby (pg_last_wal_replay_lsn() is null)');
      replica.lagMs = this.lagOf(replayed);
      replica.state = replica.lagMs > this.config.database.replicaMaxLagMs ? 'lagging' : 'up';
    } catch (error) {
      this.markDown(replica, error);
      replica.lagMs = undefined;
    }
    if (replica.state !== before && replica.state !== 'down') {
      this.logger.log(`Replica ${replica.name} is ${replica.state} (lag ${replica.lagMs} ms)`);
    }
  }

  /** Reads at most one check interval old: the position is monotonic, so a stale value only under-reports. */
  private async replayedPosition(replica: Replica): Promise<bigint | undefined> {
    if (!replica.dataSource) return undefined;
    const rows = await replica.dataSource.query<{ lsn: string | null }[]>(
      'SELECT pg_last_wal_replay_lsn()::text AS lsn',
    );
    const replayed = rows[0].lsn === null ? undefined : parseLsn(rows[0].lsn);
    if (replayed !== undefined && (replica.replayed === undefined || replayed > replica.replayed)) {
      replica.replayed = replayed;
    }
    return replayed;
  }

  /** 0 if `replayed` reaches the newest sampled primary position, else the age of the oldest one it does not reach. */
  private lagOf(replayed: bigint): number {
    const oldestUnreached = this.primarySamples.find((sample) => sample.lsn > replayed);
    return oldestUnreached ? Date.now() - oldestUnreached.at : 0;
  }

  /** A DataSource of its own per replica, for its pool; created once the replica first answers. */
  private async connect(replica: Replica): Promise<DataSource> {
    const dataSource = new DataSource({
      ...dataSourceOptions({ ...this.config.database, url: replica.url, migrationsRun: false }),
      migrations: [],
    });
    try {
      await dataSource.initialize();
      if (this.stopped) await dataSource.destroy();
      return dataSource;
    } catch (error) {
      await dataSource.destroy().catch(() => undefined);
      throw error;
    }
  }
}

function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

function hostAndPort(url: string): string {
  const { hostname, port } = new URL(url);
  return `${hostname}:${port || 5432}`;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([
    promise,
    sleep(ms, undefined, { ref: false }).then(() => {
      throw new Error(`no answer within ${ms} ms`);
    }),
  ]);
}
