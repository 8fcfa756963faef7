import { connect, createServer, type Socket } from 'node:net';

/**
 * What the proxy does with the bytes of its connections:
 * - `'pass'`: forwards them as they come;
 * - `'blackhole'`: stops reading either side — the kernel buffers fill and TCP holds the peers, as a
 *   network partition or a paused server does: the connection stays open and nothing arrives. A new
 *   connection is accepted (the client sees it open) but the target is not contacted until the mode
 *   changes. Back to `'pass'` (or a delay), whatever was held is delivered, as TCP would retransmit it;
 * - `{ delayMs }`: delivers each chunk `delayMs` after it arrived, in order (a slow network or server).
 */
export type FaultMode = 'pass' | 'blackhole' | { delayMs: number };

/** A running proxy: connect to `host`:`port` instead of the target. */
export interface FaultProxy {
  readonly host: string;
  readonly port: number;
  /** The connections open now (client side). */
  readonly connections: number;
  /** Sets the mode for new connections and for every open one (see FaultMode). */
  mode(mode: FaultMode): void;
  /** Destroys every open connection, both sides (each peer sees its socket close or reset). */
  cut(): void;
  /** Stops listening and destroys every open connection. */
  close(): Promise<void>;
}

/**
 * A TCP proxy for fault injection in tests, in front of one target (PostgreSQL, MariaDB, Redis, …):
 * it can pass, black-hole, delay and cut connections (see FaultMode), on loopback, on a free port.
 * It never throws on a peer's error: a socket that fails closes its other side.
 *
 * ```ts
 * const proxy = await startFaultProxy({ host: '127.0.0.1', port: 6379 });
 * const app = await startTestApp({ REDIS_URL: throughProxy('redis://127.0.0.1:6379/1', proxy) });
 * proxy.mode('blackhole'); // Redis now accepts and never answers
 * ```
 */
export async function startFaultProxy(target: { host: string; port: number }): Promise<FaultProxy> {
  let current: FaultMode = 'pass';
  const links = new Set<Link>();
  const server = createServer((client) => {
    const link = new Link(client, target, () => links.delete(link));
    links.add(link);
    link.apply(current);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as { port: number };
  return {
    host: '127.0.0.1',
    port,
    get connections() {
      return links.size;
    },
    mode(mode) {
      current = mode;
      for (const link of links) link.apply(mode);
    },
    cut() {
      for (const link of [...links]) link.destroy();
    },
    close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const link of [...links]) link.destroy();
      return closed;
    },
  };
}

/**
 * `url` (postgres://, mysql://, mariadb://, redis://, rediss://) with its host and port replaced by
 * the proxy's; user, password, database and query are kept.
 */
export function throughProxy(url: string, proxy: Pick<FaultProxy, 'host' | 'port'>): string {
  const parsed = new URL(url);
  parsed.hostname = proxy.host;
  parsed.port = String(proxy.port);
  return parsed.toString();
}

const DEFAULT_PORTS: Record<string, number> = {
  'postgres:': 5432,
  'postgresql:': 5432,
  'mysql:': 3306,
  'mariadb:': 3306,
  'redis:': 6379,
  'rediss:': 6379,
};

/** The host and port a database or Redis URL points at (the scheme's default port when it names none). */
export function targetOf(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  const port = parsed.port ? Number(parsed.port) : DEFAULT_PORTS[parsed.protocol];
  if (!port) throw new Error(`targetOf: no port in ${parsed.protocol} URL and no default for the scheme`);
  return { host: parsed.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1', port };
}

/** A proxy in front of what `url` points at, and `url` rewritten to go through it. */
export async function proxyFor(url: string): Promise<{ proxy: FaultProxy; url: string }> {
  const proxy = await startFaultProxy(targetOf(url));
  return { proxy, url: throughProxy(url, proxy) };
}

/** One client connection and its connection to the target. */
class Link {
  private upstream?: Socket;
  private readonly toTarget: DelayedWriter;
  private readonly toClient: DelayedWriter;
  private mode: FaultMode = 'pass';
  private closed = false;

  constructor(
    private readonly client: Socket,
    private readonly target: { host: string; port: number },
    private readonly onClose: () => void,
  ) {
    this.toTarget = new DelayedWriter(() => this.upstream);
    this.toClient = new DelayedWriter(() => this.client);
    client.on('data', (chunk: Buffer) => this.toTarget.push(chunk, delayOf(this.mode)));
    client.on('error', () => this.destroy());
    client.on('close', () => this.destroy());
    client.on('end', () => this.upstream?.end());
  }

  apply(mode: FaultMode): void {
    if (this.closed) return;
    this.mode = mode;
    if (mode === 'blackhole') {
      this.client.pause();
      this.upstream?.pause();
      return;
    }
    this.upstream ??= this.connectUpstream();
    this.client.resume();
    this.upstream.resume();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.toTarget.clear();
    this.toClient.clear();
    this.client.destroy();
    this.upstream?.destroy();
    this.onClose();
  }

  private connectUpstream(): Socket {
    const upstream = connect(this.target.port, this.target.host);
    upstream.setNoDelay(true);
    upstream.on('data', (chunk: Buffer) => this.toClient.push(chunk, delayOf(this.mode)));
    upstream.on('error', () => this.destroy());
    upstream.on('close', () => this.destroy());
    upstream.on('end', () => this.client.end());
    return upstream;
  }
}

function delayOf(mode: FaultMode): number {
  return typeof mode === 'object' ? mode.delayMs : 0;
}

/** Writes chunks to a socket, each no sooner than its due time and never out of order. */
class DelayedWriter {
  private readonly queue: { due: number; chunk: Buffer }[] = [];
  private timer?: NodeJS.Timeout;

  constructor(private readonly socket: () => Socket | undefined) {}

  push(chunk: Buffer, delayMs: number): void {
    const socket = this.socket();
    if (delayMs === 0 && this.queue.length === 0 && socket) {
      socket.write(chunk);
      return;
    }
    this.queue.push({ due: Date.now() + delayMs, chunk });
    this.schedule();
  }

  clear(): void {
    clearTimeout(this.timer);
    this.queue.length = 0;
  }

  private schedule(): void {
    if (this.timer || this.queue.length === 0) return;
    this.timer = setTimeout(() => this.flush(), Math.max(0, this.queue[0].due - Date.now()));
  }

  private flush(): void {
    this.timer = undefined;
    const socket = this.socket();
    // No target socket yet (the link was black-holed from its start): try again shortly.
    while (socket && this.queue.length > 0 && this.queue[0].due <= Date.now()) {
      socket.write(this.queue.shift()!.chunk);
    }
    if (!socket && this.queue.length > 0) {
      this.timer = setTimeout(() => this.flush(), 5);
      return;
    }
    this.schedule();
  }
}
