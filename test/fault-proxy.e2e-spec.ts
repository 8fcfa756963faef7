import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { type FaultProxy, proxyFor, startFaultProxy, targetOf, throughProxy } from './setup/fault-proxy';
import { describeOn } from './setup/dialect';

/** What arrives on `socket` within `ms`, as text. */
async function received(socket: Socket, ms: number): Promise<string> {
  let text = '';
  const collect = (chunk: Buffer) => (text += chunk.toString());
  socket.on('data', collect);
  await sleep(ms);
  socket.off('data', collect);
  return text;
}

/** Text that arrives on `socket` until it contains `expected` (the test's timeout bounds the wait). */
async function receivedUntil(socket: Socket, expected: string): Promise<string> {
  let text = '';
  while (!text.includes(expected)) {
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    text += chunk.toString();
  }
  return text;
}

describe('the fault-injection proxy (test/setup/fault-proxy.ts)', () => {
  let echo: Server;
  let proxy: FaultProxy;
  const clients: Socket[] = [];

  const open = async () => {
    const socket = connect(proxy.port, proxy.host);
    socket.on('error', () => undefined);
    clients.push(socket);
    await once(socket, 'connect');
    return socket;
  };

  beforeEach(async () => {
    echo = createServer((socket) => {
      socket.on('error', () => undefined);
      socket.pipe(socket);
    });
    echo.listen(0, '127.0.0.1');
    await once(echo, 'listening');
    proxy = await startFaultProxy({ host: '127.0.0.1', port: (echo.address() as { port: number }).port });
  });
  afterEach(async () => {
    clients.splice(0).forEach((socket) => socket.destroy());
    await proxy.close();
    echo.close();
  });

  it('passes bytes both ways', async () => {
    const socket = await open();
    socket.write('hello');
    expect(await receivedUntil(socket, 'hello')).toBe('hello');
  });

  it('black-holes open and new connections without closing them, and delivers what it held once passing again', async () => {
    const before = await open();
    proxy.mode('blackhole');
    const after = await open(); // accepted, as by a host that is partitioned after the handshake
    before.write('one');
    after.write('two');
    expect(await received(before, 300)).toBe('');
    expect(await received(after, 1)).toBe('');
    expect(before.destroyed || after.destroyed).toBe(false);
    proxy.mode('pass');
    expect(await receivedUntil(before, 'one')).toBe('one');
    expect(await receivedUntil(after, 'two')).toBe('two');
  });

  it('delays each chunk by at least delayMs, in order', async () => {
    const socket = await open();
    proxy.mode({ delayMs: 300 });
    const started = Date.now();
    socket.write('a');
    await sleep(10);
    socket.write('b');
    expect(await receivedUntil(socket, 'ab')).toBe('ab');
    expect(Date.now() - started).toBeGreaterThanOrEqual(290); // a floor, never a ceiling
  });

  it('cut() closes every open connection; new ones still pass', async () => {
    const [first, second] = [await open(), await open()];
    expect(proxy.connections).toBe(2);
    proxy.cut();
    await Promise.all([once(first, 'close'), once(second, 'close')]);
    expect(proxy.connections).toBe(0);
    const third = await open();
    third.write('again');
    expect(await receivedUntil(third, 'again')).toBe('again');
  });

  it('rewrites database and Redis URLs to go through it, keeping credentials and database', () => {
    const at = { host: '127.0.0.1', port: 40000 };
    expect(throughProxy('postgres://app:s3cret@db.example:5432/app?sslmode=disable', at)).toBe(
      'postgres://app:s3cret@127.0.0.1:40000/app?sslmode=disable',
    );
    expect(throughProxy('redis://127.0.0.1:6379/1', at)).toBe('redis://127.0.0.1:40000/1');
    expect(targetOf('mariadb://root@127.0.0.1/t')).toEqual({ host: '127.0.0.1', port: 3306 });
  });
});

describeOn(['postgres'], 'the proxy is dialect-neutral; this checks it in front of a real PostgreSQL')(
  'the proxy in front of PostgreSQL',
  () => {
    it('a query passes, hangs while black-holed, and fails when cut', async () => {
      const { proxy, url } = await proxyFor(process.env.DATABASE_URL!);
      const client = new Client({ connectionString: url });
      const errors: Error[] = [];
      client.on('error', (error) => errors.push(error));
      try {
        await client.connect();
        expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
        proxy.mode('blackhole');
        const held = client.query('SELECT 2 AS two');
        const settled = await Promise.race([held.then(() => 'answered'), sleep(300).then(() => 'waiting')]);
        expect(settled).toBe('waiting');
        proxy.mode('pass');
        expect((await held).rows).toEqual([{ two: 2 }]);
        proxy.cut();
        await expect(client.query('SELECT 3')).rejects.toThrow();
      } finally {
        await client.end().catch(() => undefined);
        await proxy.close();
      }
    });
  },
);
