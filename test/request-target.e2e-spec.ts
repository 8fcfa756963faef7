import { once } from 'node:events';
import { connect } from 'node:net';
import { startTestApp, type TestApp } from './setup/test-app';

/** What a request line or Host header the app cannot serve gets: problem+json, never silence. */
describe('request targets and Host (RFC 9112 §3.2, §3.3)', () => {
  let t: TestApp;
  let port: number;
  beforeAll(async () => {
    t = await startTestApp();
    await t.app.listen(0, '127.0.0.1');
    port = (t.app.getHttpServer().address() as { port: number }).port;
  });
  afterAll(() => t.close());

  /** Sends `text` on a fresh connection; the answer once the server closes it (or 5 s passed). */
  const exchange = async (text: string): Promise<string> => {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
    socket.write(text);
    await Promise.race([once(socket, 'close'), new Promise((resolve) => setTimeout(resolve, 5_000))]);
    socket.destroy();
    return answer;
  };

  const statusOf = (answer: string) => Number(/^HTTP\/1\.[01] (\d{3}) /.exec(answer)?.[1]);
  const bodyOf = (answer: string) =>
    JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;

  it.each([
    ['without Host', 'GET /users HTTP/1.1\r\n\r\n', 'An HTTP/1.1 request must have a Host header'],
    [
      'with two Host headers',
      'GET /users HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n',
      'A request must have one Host header',
    ],
  ])('an HTTP/1.1 request %s is a 400 problem naming Host (RFC 9112 §3.2)', async (_name, text, message) => {
    const answer = await exchange(text);
    expect(statusOf(answer)).toBe(400);
    expect(answer).toMatch(/content-type: application\/problem\+json/i);
    expect(answer).toMatch(/x-request-id: /i);
    expect(answer).toMatch(/connection: close/i);
    expect(bodyOf(answer)).toMatchObject({ status: 400, errors: [{ field: 'Host', messages: [message] }] });
  });

  it('an HTTP/1.0 request may omit Host (RFC 9112 §3.2 applies to HTTP/1.1)', async () => {
    expect(statusOf(await exchange('GET /health HTTP/1.0\r\n\r\n'))).toBe(200);
  });

  it('CONNECT gets 501 problem+json and the connection closed, not silence (RFC 9110 §9.3.6, §15.6.2)', async () => {
    const answer = await exchange('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    expect(statusOf(answer)).toBe(501);
    expect(answer).toMatch(/content-type: application\/problem\+json/i);
    expect(answer).toMatch(/connection: close/i);
    expect(bodyOf(answer)).toMatchObject({ status: 501, title: 'Not Implemented' });
  });

  it('the absolute-form of a target is accepted as its path (RFC 9112 §3.2.2: a server MUST accept it)', async () => {
    const answer = await exchange(
      'GET http://localhost/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n',
    );
    expect(statusOf(answer)).toBe(200);
  });

  it('the asterisk-form outside OPTIONS names no resource: 404 problem+json (RFC 9112 §3.2.4)', async () => {
    const answer = await exchange('GET * HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    expect(statusOf(answer)).toBe(404);
    expect(answer).toMatch(/content-type: application\/problem\+json/i);
  });

  it.each([
    ['authority-form outside CONNECT', 'GET localhost:80 HTTP/1.1\r\nHost: localhost\r\n\r\n'],
    ['a path without its leading slash', 'GET users HTTP/1.1\r\nHost: localhost\r\n\r\n'],
    ['a space in the target', 'GET /us ers HTTP/1.1\r\nHost: localhost\r\n\r\n'],
  ])("%s: Node's parser refuses it, still 400 problem+json (RFC 9112 §3.2)", async (_name, text) => {
    const answer = await exchange(text);
    expect(statusOf(answer)).toBe(400);
    expect(answer).toMatch(/content-type: application\/problem\+json/i);
  });
});
