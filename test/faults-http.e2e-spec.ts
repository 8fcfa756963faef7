import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { holdEveryConnection } from './setup/pool';
import { startTestApp, type TestApp } from './setup/test-app';

const REQUEST_TIMEOUT_MS = 1_000;

/** Everything the server sends on `socket` until it closes the connection, and how long that took. */
async function answerAndClose(socket: Socket): Promise<{ text: string; ms: number }> {
  const started = Date.now();
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
  await once(socket, 'close');
  return { text, ms: Date.now() - started };
}

describe('a client that does not send its whole request in time (HTTP_REQUEST_TIMEOUT_MS)', () => {
  let t: TestApp;
  let port: number;

  beforeAll(async () => {
    t = await startTestApp({
      HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
      HTTP_HEADERS_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
      DB_POOL_SIZE: '1',
      DB_POOL_MAX_OVERFLOW: '0',
    });
    port = await t.listen();
  });
  afterAll(() => t.close());

  const open = async () => {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    return socket;
  };
  const head = (length: number) =>
    `POST /users HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;

  it('Content-Length 27 with 26 bytes sent: 408 problem+json and the connection closed, not a hang (RFC 9112 §6.3, RFC 9110 §15.5.9)', async () => {
    const socket = await open();
    const body = '{"name":"A","email":"a@b"}';
    expect(Buffer.byteLength(body)).toBe(26);
    socket.write(head(27) + body);
    const { text, ms } = await answerAndClose(socket);
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(text).toMatch(/content-type: application\/problem\+json/i);
    expect(text).toMatch(/connection: close/i);
    expect(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))).toMatchObject({ status: 408 });
    expect(ms).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 100); // it did wait for the rest; no upper bound asserted
  });

  it('a body dripping one byte every 200 ms: 408 once the request timeout has passed, connection closed', async () => {
    const socket = await open();
    socket.write(head(200));
    let dripping = true;
    const drip = (async () => {
      while (dripping && !socket.destroyed) {
        socket.write(' ');
        await sleep(200);
      }
    })();
    const { text } = await answerAndClose(socket);
    dripping = false;
    await drip;
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(text).toMatch(/application\/problem\+json/);
  });

  it('headers that never end: 408 and the connection closed (RFC 9112 §9.6)', async () => {
    const socket = await open();
    socket.write('GET /users HTTP/1.1\r\nHost: localhost\r\n');
    const { text } = await answerAndClose(socket);
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('does not cut a request that arrived whole but takes longer than the timeout to answer', async () => {
    const { released } = await holdEveryConnection(t.dataSource, 1, (REQUEST_TIMEOUT_MS * 1.5) / 1000);
    const res = await fetch(`http://127.0.0.1:${port}/users`);
    expect(res.status).toBe(200);
    await released;
  });
});
