import { once } from 'node:events';
import { connect } from 'node:net';
import { bodyOf, exchange as rawExchange, statusOf } from './setup/raw-http';
import { startTestApp, type TestApp } from './setup/test-app';

/** What a request line or Host header the app cannot serve gets: problem+json, never silence. */
describe('request targets and Host (RFC 9112 §3.2, §3.3)', () => {
  let t: TestApp;
  let port: number;
  beforeAll(async () => {
    t = await startTestApp();
    port = await t.listen();
  });
  afterAll(() => t.close());

  const exchange = (text: string) => rawExchange(port, text);

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

  it.each([
    ['userinfo', 'u@a', /userinfo/],
    ['userinfo with a port', 'user:pw@localhost:80', /userinfo/],
    ['a space', 'a b', /host name or IP address/],
    ['a port that is not digits', 'localhost:x', /host name or IP address/],
    ['two ports', 'localhost:1:2', /host name or IP address/],
    ['a port over 65535', 'localhost:65536', /at most 65535/],
    ['a path', 'localhost/users', /host name or IP address/],
    ['an unbracketed IPv6 address', '::1', /host name or IP address/],
    ['a bracketed literal that is no IPv6 address', '[not-v6]', /host name or IP address/],
    ['nothing (an http URI has a host, RFC 9110 §4.2.1)', '', /host name or IP address/],
  ])(
    'Host with %s is a 400 problem naming Host (RFC 9112 §3.2, RFC 9110 §7.2: uri-host [":" port])',
    async (_name, host, message) => {
      for (const version of ['1.1', '1.0']) {
        const answer = await exchange(`GET /health HTTP/${version}\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
        expect([version, statusOf(answer)]).toEqual([version, 400]);
        expect(answer).toMatch(/content-type: application\/problem\+json/i);
        expect(answer).toMatch(/connection: close/i);
        expect(bodyOf(answer)).toMatchObject({
          status: 400,
          errors: [{ field: 'Host', messages: [expect.stringMatching(message)] }],
        });
      }
    },
  );

  it.each([
    'localhost',
    'localhost:3000',
    'api.example.com',
    '127.0.0.1:8080',
    '[::1]:80',
    '[::1]',
    'xn--bcher-kva.example',
    'a:',
  ])('Host %p is served (RFC 9110 §7.2)', async (host) => {
    expect(statusOf(await exchange(`GET /health HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`))).toBe(200);
  });

  it('an expectation other than 100-continue is 417 problem+json naming Expect, the route never runs (RFC 9110 §10.1.1)', async () => {
    const users = await t.db.count('users');
    const body = JSON.stringify({ name: 'Ex', email: 'ex@example.com', password: 'correct horse battery staple' });
    const answer = await exchange(
      `POST /users HTTP/1.1\r\nHost: localhost\r\nExpect: bogus\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${body.length}\r\n\r\n${body}`,
    );
    expect(statusOf(answer)).toBe(417);
    expect(answer).toMatch(/content-type: application\/problem\+json/i);
    expect(answer).toMatch(/x-request-id: /i);
    expect(answer).toMatch(/x-content-type-options: nosniff/i);
    expect(answer).toMatch(/connection: close/i);
    expect(bodyOf(answer)).toMatchObject({
      status: 417,
      title: 'Expectation Failed',
      instance: '/users',
      errors: [{ field: 'Expect', messages: [expect.any(String)] }],
    });
    expect(await t.db.count('users')).toBe(users);
    const get = await exchange('GET /health HTTP/1.1\r\nHost: localhost\r\nExpect: 200-ok\r\n\r\n');
    expect(statusOf(get)).toBe(417);
  });

  it('Expect: 100-continue gets 100 Continue, then the request is served as usual (RFC 9110 §10.1.1)', async () => {
    const users = await t.db.count('users');
    const body = JSON.stringify({ name: 'Cont', email: 'cont@example.com', password: 'correct horse battery staple' });
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
    socket.write(
      `POST /users HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
    );
    while (!answer.includes('\r\n\r\n')) await once(socket, 'data');
    expect(answer).toMatch(/^HTTP\/1\.1 100 Continue\r\n/);
    socket.write(body);
    await once(socket, 'close');
    expect(answer.slice(answer.indexOf('\r\n\r\n') + 4)).toMatch(/^HTTP\/1\.1 201 Created\r\n/);
    expect(await t.db.count('users')).toBe(users + 1);
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
